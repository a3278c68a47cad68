// Interest: edges' announcements in, aggregated announcements to owner regions out,
// and other regions' interest in this region's channels and users.
#include "bridge/bridge_internal.h"

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

using namespace bridge_detail;

// ---- interest ----

void Bridge::onEdgeInterest(const NatsInbound& message) {
  auto doc = parser_.parse(message.data);
  if (!doc) return metrics_->dropped("malformed_interest").inc();
  std::string_view source;
  if ((*doc)["source"].get(source) != simdjson::SUCCESS || source.empty()) {
    return metrics_->dropped("malformed_interest").inc();
  }
  const int64_t now = nowMonoMs();
  const bool bye = boolField(*doc, "bye", false);
  if (bye) return local_interest_.forget(std::string(source), now);
  const bool snapshot = boolField(*doc, "snapshot", false);
  int64_t refresh = 0;
  if ((*doc)["refresh_ms"].get(refresh) != simdjson::SUCCESS || refresh <= 0) {
    return metrics_->dropped("malformed_interest").inc();
  }
  auto add = keyArray(*doc, "add");
  auto del = keyArray(*doc, "del");
  if (!add || !del) return metrics_->dropped("malformed_interest").inc();
  // Only channels of known other regions: an owner that is this region or unknown would
  // announce interest nowhere (and is a bug or a stale topology on the edge).
  // Users are announced to their home region, which may be this one; channels of this
  // region are the unsequenced ones its edges have subscribers for (see onLiveIn).
  auto known = [this](const LocalInterest::Key& key) {
    return remotes_.count(key.first) != 0 || key.first == region_;
  };
  const size_t before = add->size() + del->size();
  add->erase(std::remove_if(add->begin(), add->end(), [&](auto& k) { return !known(k); }),
             add->end());
  del->erase(std::remove_if(del->begin(), del->end(), [&](auto& k) { return !known(k); }),
             del->end());
  if (add->size() + del->size() != before) metrics_->dropped("interest_unknown_owner").inc();
  auto broken = [](const LocalInterest::Key& key) { return !isChannelTail(key.second); };
  const size_t known_count = add->size() + del->size();
  add->erase(std::remove_if(add->begin(), add->end(), broken), add->end());
  del->erase(std::remove_if(del->begin(), del->end(), broken), del->end());
  if (add->size() + del->size() != known_count) metrics_->dropped("malformed_channel").inc();
  local_interest_.apply(std::string(source), snapshot, *add, *del,
                        now + kInterestTtlPeriods * refresh, now);
  announceInterest(now, false);
}

void Bridge::sendInterest(const std::string& owner, const char* kind, bool snapshot,
                          const std::vector<std::string>& add,
                          const std::vector<std::string>& del) {
  const int64_t ttl = kInterestTtlPeriods * static_cast<int64_t>(config_.links.interest_refresh_ms);
  // A set too large for one message (NATS' default max payload is 1 MB) goes out as a
  // snapshot of its first part followed by additions.
  size_t a = 0;
  size_t d = 0;
  bool first = true;
  do {
    std::string body;
    JsonWriter w(body);
    w.beginObject()
        .field("region", region_)
        .field("instance", instance_)
        .field("kind", kind)
        .fieldInt("ttl_ms", ttl)
        .fieldBool("snapshot", snapshot && first)
        .key("add")
        .beginArray();
    const size_t a0 = a;
    const size_t d0 = d;
    for (; a < add.size() && body.size() < kMaxInterestMessageBytes; ++a) w.string(add[a]);
    w.endArray().key("del").beginArray();
    for (; d < del.size() && body.size() < kMaxInterestMessageBytes; ++d) w.string(del[d]);
    w.endArray().endObject();
    if (owner == region_) {
      // This region's users, for itself as their home: the link never echoes a bridge's
      // own messages back to it, so it applies them here (its peers hear them).
      users_.apply(region_, snapshot && first,
                   std::vector<std::string>(add.begin() + static_cast<std::ptrdiff_t>(a0),
                                            add.begin() + static_cast<std::ptrdiff_t>(a)),
                   std::vector<std::string>(del.begin() + static_cast<std::ptrdiff_t>(d0),
                                            del.begin() + static_cast<std::ptrdiff_t>(d)),
                   nowMonoMs() + ttl);
      users_.takeChanges();
    } else {
      metrics_->control(owner).inc();
    }
    link_->publish("wsfx." + owner + ".interest", std::move(body));
    first = false;
  } while (a < add.size() || d < del.size());
}

void Bridge::announceInterest(int64_t now_ms, bool snapshot) {
  // One bridge of the region speaks for it to each owner (the others would announce the
  // same set, and a snapshot from a bridge that just started and has not heard every
  // edge yet would withdraw what the others announced).
  auto speaks_for = [this](const std::string& owner) {
    return peers_.isSelfChosen("interest/" + owner);
  };
  auto split = [](const std::vector<std::string>& tails, std::vector<std::string>& channels,
                  std::vector<std::string>& users) {
    for (const std::string& tail : tails) {
      if (isUserTail(tail)) {
        users.push_back(tail.substr(1));
      } else {
        channels.push_back(tail);
      }
    }
  };
  LocalInterest::Changes changes = local_interest_.takeChanges();
  // This region's own unsequenced channels: every bridge keeps its relay subscriptions.
  for (const auto* side : {&changes.added, &changes.removed}) {
    if (auto it = side->find(region_); it != side->end()) {
      for (const std::string& tail : it->second) {
        if (!isUserTail(tail)) updateLiveSubscription(tail);
      }
    }
  }
  if (snapshot) {
    // Snapshots wait until the edges have all been heard once since this bridge started.
    if (now_ms < warm_until_ms_) return;
    std::set<std::string> owners = local_interest_.owners();
    for (const std::string& owner : announced_owners_) owners.insert(owner);
    std::set<std::string> still;
    for (const std::string& owner : owners) {
      if (!speaks_for(owner)) continue;
      std::vector<std::string> channels, users;
      split(local_interest_.channelsOwnedBy(owner), channels, users);
      if (owner != region_) sendInterest(owner, "channel", true, channels, {});
      sendInterest(owner, "user", true, users, {});
      // An owner whose set became empty hears it once, then no more (no traffic for
      // regions this one wants nothing from).
      if (!channels.empty() || !users.empty()) still.insert(owner);
    }
    announced_owners_ = std::move(still);
    return;
  }
  std::set<std::string> touched;
  for (const auto& [owner, tails] : changes.added) touched.insert(owner);
  for (const auto& [owner, tails] : changes.removed) touched.insert(owner);
  for (const std::string& owner : touched) {
    if (!speaks_for(owner)) continue;
    std::vector<std::string> add_channels, add_users, del_channels, del_users;
    if (auto it = changes.added.find(owner); it != changes.added.end()) {
      split(it->second, add_channels, add_users);
    }
    if (auto it = changes.removed.find(owner); it != changes.removed.end()) {
      split(it->second, del_channels, del_users);
    }
    if (owner != region_ && (!add_channels.empty() || !del_channels.empty())) {
      sendInterest(owner, "channel", false, add_channels, del_channels);
    }
    if (!add_users.empty() || !del_users.empty()) {
      sendInterest(owner, "user", false, add_users, del_users);
    }
    announced_owners_.insert(owner);
  }
}

void Bridge::onRemoteInterest(const NatsInbound& message) {
  auto doc = parser_.parse(message.data);
  if (!doc) return metrics_->dropped("malformed_control").inc();
  std::string_view region;
  int64_t ttl = 0;
  if ((*doc)["region"].get(region) != simdjson::SUCCESS ||
      (*doc)["ttl_ms"].get(ttl) != simdjson::SUCCESS || ttl <= 0) {
    return metrics_->dropped("malformed_control").inc();
  }
  std::string_view kind;
  if ((*doc)["kind"].get(kind) != simdjson::SUCCESS || (kind != "channel" && kind != "user")) {
    return metrics_->dropped("malformed_control").inc();
  }
  // This region's own bridges announce its users to it (it may be their home region).
  const bool users = kind == "user";
  if (remote(std::string(region)) == nullptr && !(users && region == region_)) {
    return metrics_->dropped("unknown_region").inc();
  }
  const bool snapshot = boolField(*doc, "snapshot", false);
  auto add = stringArray(*doc, "add");
  auto del = stringArray(*doc, "del");
  if (!add || !del) return metrics_->dropped("malformed_control").inc();
  // A tail that is not one channel or user (a wildcard, an empty or a third token) would
  // subscribe to other channels, or all of them, and send them across the gateway.
  const size_t before = add->size() + del->size();
  auto broken = [](const std::string& tail) { return !isChannelTail(tail); };
  add->erase(std::remove_if(add->begin(), add->end(), broken), add->end());
  del->erase(std::remove_if(del->begin(), del->end(), broken), del->end());
  if (add->size() + del->size() != before) metrics_->dropped("malformed_channel").inc();
  if (users) {
    users_.apply(std::string(region), snapshot, *add, *del, nowMonoMs() + ttl);
    users_.takeChanges();  // looked up per message; nothing to subscribe
    return;
  }
  remote_interest_.apply(std::string(region), snapshot, *add, *del, nowMonoMs() + ttl);
  applyRemoteInterestChanges();
}

void Bridge::applyRemoteInterestChanges() {
  RemoteInterest::Changes changes = remote_interest_.takeChanges();
  for (const auto& c : changes.added) {
    if (owned_subs_.count(c.tail) == 0) {
      const uint64_t id = next_sub_id_++;
      owned_subs_.emplace(c.tail, id);
      owned_sub_tails_.emplace(id, c.tail);
      link_->subscribe(id, "wsf." + region_ + ".ch." + c.tail);
    }
    // What was stored before the subscription took effect: the new region's edges
    // learn from the tail whether they have it.
    resendTail(c.tail, c.region);
    updateLiveSubscription(c.tail);
  }
  for (const auto& c : changes.removed) {
    updateLiveSubscription(c.tail);
    if (remote_interest_.regionsOf(c.tail) != nullptr) continue;
    auto it = owned_subs_.find(c.tail);
    if (it == owned_subs_.end()) continue;
    link_->unsubscribe(it->second);
    owned_sub_tails_.erase(it->second);
    owned_subs_.erase(it);
  }
}

}  // namespace wsfleet
