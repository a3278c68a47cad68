#include "bridge/bridge.h"

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

namespace {

constexpr uint64_t kSubEdgeInterest = 1;
constexpr uint64_t kSubForwardPublish = 2;
constexpr uint64_t kSubForwardApi = 3;
constexpr uint64_t kSubPeerHeartbeat = 4;
constexpr uint64_t kSubRemoteHeartbeat = 5;
constexpr uint64_t kSubRemoteInterest = 6;
constexpr uint64_t kSubForwardedIn = 7;

// Requests for one region's work go to one bridge of the region, whichever.
constexpr const char* kQueueGroup = "wsf-bridge";
constexpr int64_t kRetryBackoffMs = 100;
// An edge's interest lives this many of its own refresh periods without news.
constexpr int64_t kInterestTtlPeriods = 3;

// An optional field: `fallback` when absent or of another type.
bool boolField(simdjson::dom::element doc, const char* field, bool fallback) {
  bool v = fallback;
  return doc[field].get(v) == simdjson::SUCCESS ? v : fallback;
}
int64_t intField(simdjson::dom::element doc, const char* field, int64_t fallback) {
  int64_t v = fallback;
  return doc[field].get(v) == simdjson::SUCCESS ? v : fallback;
}

bool startsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// The strings of a JSON array field; nullopt when it is there but not an array of strings.
std::optional<std::vector<std::string>> stringArray(simdjson::dom::element doc,
                                                    const char* field) {
  std::vector<std::string> out;
  simdjson::dom::array array;
  auto e = doc[field].get(array);
  if (e == simdjson::NO_SUCH_FIELD) return out;
  if (e != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element item : array) {
    std::string_view s;
    if (item.get(s) != simdjson::SUCCESS) return std::nullopt;
    out.emplace_back(s);
  }
  return out;
}

// [[owner, tail], ...]
std::optional<std::vector<LocalInterest::Key>> keyArray(simdjson::dom::element doc,
                                                        const char* field) {
  std::vector<LocalInterest::Key> out;
  simdjson::dom::array array;
  auto e = doc[field].get(array);
  if (e == simdjson::NO_SUCH_FIELD) return out;
  if (e != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element item : array) {
    simdjson::dom::array pair;
    if (item.get(pair) != simdjson::SUCCESS || pair.size() != 2) return std::nullopt;
    std::string_view owner, tail;
    if (pair.at(0).get(owner) != simdjson::SUCCESS || pair.at(1).get(tail) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    out.emplace_back(std::string(owner), std::string(tail));
  }
  return out;
}

std::string errorJson(int code, std::string_view description) {
  std::string out;
  JsonWriter(out)
      .beginObject()
      .key("error")
      .beginObject()
      .fieldInt("code", code)
      .fieldInt("err_code", 0)
      .field("description", description)
      .endObject()
      .endObject();
  return out;
}

}  // namespace

struct Bridge::Metrics {
  MetricsRegistry& registry;
  Counter& dropped(const std::string& reason) {
    return registry.counter("wsfleet_bridge_dropped_total",
                            "Messages the bridge did not forward or answer, by reason",
                            {{"reason", reason}});
  }
  Counter& forwardedMessages(const std::string& region, const char* direction) {
    return registry.counter("wsfleet_bridge_forwarded_messages_total",
                            "Channel messages sent to (out) or received from (in) a region",
                            {{"region", region}, {"direction", direction}});
  }
  Counter& forwardedBytes(const std::string& region, const char* direction) {
    return registry.counter("wsfleet_bridge_forwarded_bytes_total",
                            "Payload bytes of the forwarded channel messages",
                            {{"region", region}, {"direction", direction}});
  }
  Counter& publishes(const std::string& owner, const char* result) {
    return registry.counter("wsfleet_bridge_publishes_total",
                            "Durable publishes forwarded to their owner region, by outcome",
                            {{"region", owner}, {"result", result}});
  }
  Counter& control(const std::string& region) {
    return registry.counter("wsfleet_bridge_control_messages_total",
                            "Heartbeats and interest announcements sent to a region",
                            {{"region", region}});
  }
  Counter& tailResends(const std::string& region) {
    return registry.counter("wsfleet_bridge_tail_resends_total",
                            "Last messages of channels sent again after a link or bridge change",
                            {{"region", region}});
  }
  Gauge& linkUp(const std::string& region) {
    return registry.gauge("wsfleet_bridge_link_up",
                          "1 while a bridge of the region is heard, else 0",
                          {{"region", region}});
  }
  Gauge& localInterest() {
    return registry.gauge("wsfleet_bridge_interest_entries",
                          "Channels this region wants from others (local) and channel-region "
                          "pairs other regions want from this one (remote)",
                          {{"side", "local"}});
  }
  Gauge& remoteInterest() {
    return registry.gauge("wsfleet_bridge_interest_entries",
                          "Channels this region wants from others (local) and channel-region "
                          "pairs other regions want from this one (remote)",
                          {{"side", "remote"}});
  }
  Gauge& peers() {
    return registry.gauge("wsfleet_bridge_peers", "Live bridges of this region, itself included");
  }
  Gauge& pendingPublishes() {
    return registry.gauge("wsfleet_bridge_pending_publishes",
                          "Forwarded publishes waiting for their owner region's answer");
  }
};

struct Bridge::RemoteRegion {
  std::string name;
  PeerSet bridges;  // its bridges we hear
  bool up = false;
  Gauge* link_up = nullptr;
};

struct Bridge::PendingPublish {
  std::string owner;
  std::string store_subject;
  std::string reply;
  std::string data;
  std::vector<NatsHeader> headers;
  uint64_t attempts = 0;
  int64_t deadline_ms = 0;  // of the whole forward: answered by then
};

Bridge::Bridge(const BridgeConfig& config, MetricsRegistry& registry)
    : config_(config),
      region_(config.region),
      instance_(config.instance),
      metrics_(std::make_unique<Metrics>(Metrics{registry})),
      peers_(config.instance),
      local_interest_(static_cast<int64_t>(config.links.interest_linger_ms)) {
  for (const RegionSpec& spec : config.topology->regions) {
    if (spec.name == region_) continue;
    auto r = std::make_unique<RemoteRegion>();
    r->name = spec.name;
    r->link_up = &metrics_->linkUp(spec.name);
    r->link_up->set(0);
    metrics_->forwardedMessages(spec.name, "out");
    metrics_->forwardedMessages(spec.name, "in");
    remotes_.emplace(spec.name, std::move(r));
  }
  metrics_->peers().set(1);
  metrics_->localInterest().set(0);
  metrics_->remoteInterest().set(0);
}

Bridge::~Bridge() = default;

Result<std::unique_ptr<Bridge>> Bridge::start(const BridgeConfig& config,
                                              MetricsRegistry& registry) {
  NatsLinkOptions options = natsLinkOptions(config.nats);
  options.name = "wsfleet-bridge " + config.region + " " + config.instance;
  std::unique_ptr<Bridge> bridge(new Bridge(config, registry));
  WSF_ASSIGN_OR_RETURN(bridge->link_, NatsLink::start(std::move(options), registry));
  bridge->subscribeFixed();
  return bridge;
}

void Bridge::subscribeFixed() {
  const std::string r = "wsf." + region_;
  const std::string x = "wsfx." + region_;
  link_->subscribe(kSubEdgeInterest, r + ".interest.>");
  link_->subscribe(kSubForwardPublish, r + ".xpub.>", kQueueGroup);
  link_->subscribe(kSubForwardApi, r + ".xapi.>", kQueueGroup);
  link_->subscribe(kSubPeerHeartbeat, r + ".bridge.hb");
  link_->subscribe(kSubRemoteHeartbeat, x + ".hb");
  link_->subscribe(kSubRemoteInterest, x + ".interest");
  link_->subscribe(kSubForwardedIn, x + ".b." + instance_ + ".ch.>");
}

Bridge::RemoteRegion* Bridge::remote(const std::string& name) {
  auto it = remotes_.find(name);
  return it == remotes_.end() ? nullptr : it->second.get();
}

bool Bridge::linkUp(const std::string& region) const {
  auto it = remotes_.find(region);
  return it != remotes_.end() && it->second->up;
}

// ---- the loop ----

void Bridge::onWake() {
  std::vector<NatsInbound> items;
  link_->takeInbound(items);
  for (NatsInbound& item : items) {
    switch (item.kind) {
      case NatsInbound::Kind::kMessage:
        onMessage(item);
        break;
      case NatsInbound::Kind::kReply:
        requests_.onReply(item);
        break;
      case NatsInbound::Kind::kState:
        logInfo("nats_link", {{"state", natsLinkStateName(item.state)}});
        if (item.state == NatsLinkState::kConnected) {
          if (was_connected_) {
            // What the owner side sent meanwhile never reached this region: every remote
            // region sends its tails again once it hears us (and we resend ours).
            resendAllTails(nullptr);
          }
          was_connected_ = true;
          next_heartbeat_ms_ = 0;
          next_snapshot_ms_ = 0;
        }
        break;
    }
  }
}

void Bridge::onMessage(NatsInbound& message) {
  switch (message.sub_id) {
    case kSubEdgeInterest:
      return onEdgeInterest(message);
    case kSubForwardPublish:
      return onForwardPublish(message);
    case kSubForwardApi:
      return onForwardApi(message);
    case kSubPeerHeartbeat:
      return onPeerHeartbeat(message);
    case kSubRemoteHeartbeat:
      return onRemoteHeartbeat(message);
    case kSubRemoteInterest:
      return onRemoteInterest(message);
    case kSubForwardedIn: {
      const std::string prefix = "wsfx." + region_ + ".b." + instance_ + ".ch.";
      if (!startsWith(message.subject, prefix)) return;
      return onForwardedIn(message.subject.substr(prefix.size()), message);
    }
    default: {
      auto it = owned_sub_tails_.find(message.sub_id);
      if (it == owned_sub_tails_.end()) return;  // unsubscribed meanwhile
      const std::string tail = it->second;
      return onOwnedChannelMessage(tail, message);
    }
  }
}

void Bridge::tick(int64_t now_ms) {
  requests_.expire(now_ms);
  while (!publish_retries_.empty() && publish_retries_.begin()->first <= now_ms) {
    auto publish = std::move(publish_retries_.begin()->second);
    publish_retries_.erase(publish_retries_.begin());
    tryForwardPublish(publish);
  }
  if (!ready()) return;
  if (now_ms >= next_heartbeat_ms_) {
    next_heartbeat_ms_ = now_ms + static_cast<int64_t>(config_.links.heartbeat_interval_ms);
    sendHeartbeats(now_ms);
  }
  if (peers_.expire(now_ms)) {
    metrics_->peers().set(static_cast<int64_t>(peers_.size()));
    logInfo("bridge_peers_changed", {{"peers", peers_.size()}});
    resendAllTails(nullptr);  // channels this bridge forwards now
  }
  updateLinks(now_ms);
  local_interest_.expire(now_ms);
  if (now_ms >= next_snapshot_ms_) {
    next_snapshot_ms_ = now_ms + static_cast<int64_t>(config_.links.interest_refresh_ms);
    announceInterest(now_ms, true);
  } else {
    announceInterest(now_ms, false);
  }
  remote_interest_.expire(now_ms);
  applyRemoteInterestChanges();
  metrics_->localInterest().set(static_cast<int64_t>(local_interest_.size()));
  metrics_->remoteInterest().set(static_cast<int64_t>(remote_interest_.size()));
  metrics_->pendingPublishes().set(static_cast<int64_t>(publishes_in_flight_));
}

void Bridge::sayGoodbye() {
  std::string bye;
  JsonWriter(bye).beginObject().field("instance", instance_).fieldBool("bye", true).endObject();
  link_->publish("wsf." + region_ + ".bridge.hb", bye);
  std::string remote_bye;
  JsonWriter(remote_bye)
      .beginObject()
      .field("region", region_)
      .field("instance", instance_)
      .fieldBool("bye", true)
      .endObject();
  for (const auto& [name, r] : remotes_) link_->publish("wsfx." + name + ".hb", remote_bye);
}

// ---- heartbeats and links ----

void Bridge::sendHeartbeats(int64_t /*now_ms*/) {
  const int64_t ttl = static_cast<int64_t>(config_.links.down_after_ms);
  std::string local;
  JsonWriter(local).beginObject().field("instance", instance_).fieldInt("ttl_ms", ttl).endObject();
  link_->publish("wsf." + region_ + ".bridge.hb", local);
  std::string remote_hb;
  JsonWriter(remote_hb)
      .beginObject()
      .field("region", region_)
      .field("instance", instance_)
      .fieldInt("ttl_ms", ttl)
      .endObject();
  for (const auto& [name, r] : remotes_) {
    link_->publish("wsfx." + name + ".hb", remote_hb);
    metrics_->control(name).inc();
  }
}

void Bridge::onPeerHeartbeat(const NatsInbound& message) {
  auto doc = parser_.parse(message.data);
  if (!doc) return metrics_->dropped("malformed_control").inc();
  std::string_view instance;
  if ((*doc)["instance"].get(instance) != simdjson::SUCCESS || instance.empty()) {
    return metrics_->dropped("malformed_control").inc();
  }
  const bool bye = boolField(*doc, "bye", false);
  const int64_t ttl = intField(*doc, "ttl_ms", static_cast<int64_t>(config_.links.down_after_ms));
  const std::string name(instance);
  const bool changed = bye ? peers_.forget(name) : peers_.heard(name, nowMonoMs() + ttl);
  if (changed) {
    metrics_->peers().set(static_cast<int64_t>(peers_.size()));
    logInfo("bridge_peers_changed",
            {{"peers", peers_.size()}, {"instance", name}, {"joined", !bye}});
    // The channels this bridge serves changed: whatever it takes over starts with the
    // channel's tail, so receivers notice what fell between the two bridges.
    resendAllTails(nullptr);
  }
}

void Bridge::onRemoteHeartbeat(const NatsInbound& message) {
  auto doc = parser_.parse(message.data);
  if (!doc) return metrics_->dropped("malformed_control").inc();
  std::string_view region, instance;
  if ((*doc)["region"].get(region) != simdjson::SUCCESS ||
      (*doc)["instance"].get(instance) != simdjson::SUCCESS) {
    return metrics_->dropped("malformed_control").inc();
  }
  RemoteRegion* r = remote(std::string(region));
  if (r == nullptr) return metrics_->dropped("unknown_region").inc();
  const bool bye = boolField(*doc, "bye", false);
  const int64_t ttl = intField(*doc, "ttl_ms", static_cast<int64_t>(config_.links.down_after_ms));
  const std::string name(instance);
  const bool changed = bye ? r->bridges.forget(name) : r->bridges.heard(name, nowMonoMs() + ttl);
  updateLinks(nowMonoMs());
  // Its bridges changed: channels it receives may have a new receiving bridge there.
  if (changed && r->up) resendAllTails(&r->name);
}

void Bridge::updateLinks(int64_t now_ms) {
  for (auto& [name, r] : remotes_) {
    r->bridges.expire(now_ms);
    const bool up = !r->bridges.empty();
    if (up == r->up) continue;
    r->up = up;
    r->link_up->set(up ? 1 : 0);
    if (up) {
      logInfo("bridge_link_up", {{"region", name}, {"bridges", r->bridges.size()}});
      // Back after a partition (or at start): it missed what was forwarded meanwhile,
      // and may have lost the interest it announced.
      next_snapshot_ms_ = 0;
      resendAllTails(&r->name);
    } else {
      logWarn("bridge_link_down",
              {{"region", name}, {"silent_ms", static_cast<int64_t>(config_.links.down_after_ms)}});
    }
  }
}

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
  auto known = [this](const LocalInterest::Key& key) { return remotes_.count(key.first) != 0; };
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

void Bridge::announceInterest(int64_t /*now_ms*/, bool snapshot) {
  const int64_t ttl =
      kInterestTtlPeriods * static_cast<int64_t>(config_.links.interest_refresh_ms);
  auto send = [&](const std::string& owner, bool is_snapshot, const std::vector<std::string>& add,
                  const std::vector<std::string>& del) {
    std::string body;
    JsonWriter w(body);
    w.beginObject()
        .field("region", region_)
        .field("instance", instance_)
        .fieldInt("ttl_ms", ttl)
        .fieldBool("snapshot", is_snapshot)
        .key("add")
        .beginArray();
    for (const std::string& tail : add) w.string(tail);
    w.endArray().key("del").beginArray();
    for (const std::string& tail : del) w.string(tail);
    w.endArray().endObject();
    link_->publish("wsfx." + owner + ".interest", std::move(body));
    metrics_->control(owner).inc();
  };
  LocalInterest::Changes changes = local_interest_.takeChanges();
  if (snapshot) {
    std::set<std::string> owners = local_interest_.owners();
    for (const std::string& owner : owners) {
      send(owner, true, local_interest_.channelsOwnedBy(owner), {});
    }
    // An owner whose set became empty hears it once, then no more (no traffic for
    // regions this one wants nothing from).
    for (const std::string& owner : announced_owners_) {
      if (owners.count(owner) == 0) send(owner, true, {}, {});
    }
    announced_owners_ = std::move(owners);
    return;
  }
  std::set<std::string> touched;
  for (const auto& [owner, tails] : changes.added) touched.insert(owner);
  for (const auto& [owner, tails] : changes.removed) touched.insert(owner);
  for (const std::string& owner : touched) {
    static const std::vector<std::string> kNone;
    auto a = changes.added.find(owner);
    auto d = changes.removed.find(owner);
    send(owner, false, a == changes.added.end() ? kNone : a->second,
         d == changes.removed.end() ? kNone : d->second);
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
  if (remote(std::string(region)) == nullptr) return metrics_->dropped("unknown_region").inc();
  const bool snapshot = boolField(*doc, "snapshot", false);
  auto add = stringArray(*doc, "add");
  auto del = stringArray(*doc, "del");
  if (!add || !del) return metrics_->dropped("malformed_control").inc();
  // A tail that is not one channel (a wildcard, an empty or a third token) would
  // subscribe to other channels, or all of them, and send them across the gateway.
  const size_t before = add->size() + del->size();
  auto broken = [](const std::string& tail) { return !isChannelTail(tail); };
  add->erase(std::remove_if(add->begin(), add->end(), broken), add->end());
  del->erase(std::remove_if(del->begin(), del->end(), broken), del->end());
  if (add->size() + del->size() != before) metrics_->dropped("malformed_channel").inc();
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
  }
  for (const auto& c : changes.removed) {
    if (remote_interest_.regionsOf(c.tail) != nullptr) continue;
    auto it = owned_subs_.find(c.tail);
    if (it == owned_subs_.end()) continue;
    link_->unsubscribe(it->second);
    owned_sub_tails_.erase(it->second);
    owned_subs_.erase(it);
  }
}

// ---- channel traffic ----

void Bridge::onOwnedChannelMessage(const std::string& tail, NatsInbound& message) {
  if (!peers_.isSelfChosen(tail)) return;  // another bridge of this region forwards it
  const auto* regions = remote_interest_.regionsOf(tail);
  if (regions == nullptr) return;
  std::vector<NatsHeader> headers = message.headers;
  headers.push_back({"Wsf-Origin-Region", region_});
  for (const auto& [name, expires] : *regions) {
    RemoteRegion* r = remote(name);
    if (r == nullptr) continue;
    if (!r->up) {
      // Its edges fetch it from the history once the link is back (resendAllTails).
      metrics_->dropped("link_down").inc();
      continue;
    }
    const std::string target = r->bridges.choose(tail);
    link_->publish("wsfx." + name + ".b." + target + ".ch." + tail, message.data, headers);
    metrics_->forwardedMessages(name, "out").inc();
    metrics_->forwardedBytes(name, "out").inc(message.data.size());
  }
}

void Bridge::onForwardedIn(const std::string& tail, NatsInbound& message) {
  // Republished on a subject made of the tail: it must name one channel.
  if (!isChannelTail(tail)) return metrics_->dropped("malformed_forward").inc();
  const std::string* origin = message.header("Wsf-Origin-Region");
  const std::string from = origin != nullptr && remote(*origin) != nullptr ? *origin : "unknown";
  metrics_->forwardedMessages(from, "in").inc();
  metrics_->forwardedBytes(from, "in").inc(message.data.size());
  link_->publish("wsf." + region_ + ".ch." + tail, std::move(message.data),
                 std::move(message.headers));
}

void Bridge::resendAllTails(const std::string* only_region) {
  for (const auto& [tail, regions] : remote_interest_.all()) {
    for (const auto& [name, expires] : regions) {
      if (only_region == nullptr || *only_region == name) resendTail(tail, name);
    }
  }
}

void Bridge::resendTail(const std::string& tail, const std::string& region) {
  if (!peers_.isSelfChosen(tail) || !linkUp(region)) return;
  const std::string subject = "wsf." + region_ + ".hist." + tail;
  requests_.send(
      *link_, msgGetSubject(historyStreamName(region_)), msgGetLastBySubject(subject), {},
      nowMonoMs() + static_cast<int64_t>(config_.nats.request_timeout_ms),
      [this, tail, region, subject](const NatsInbound* reply) {
        if (reply == nullptr || !reply->status.empty()) {
          return metrics_->dropped("tail_unreadable").inc();
        }
        JsError error;
        auto got = parseMsgGet(parser_, reply->data, &error);
        if (!got.isOk()) {
          if (error.err_code != kJsNoMessageFound) metrics_->dropped("tail_unreadable").inc();
          return;
        }
        RemoteRegion* r = remote(region);
        if (r == nullptr || !r->up || got->subject != subject) return;
        // Marked as a tail: receivers compare its offset with theirs and fetch what they
        // lack from the history; it is never delivered as a live message.
        std::vector<NatsHeader> headers = {{"Nats-Sequence", std::to_string(got->seq)},
                                           {"Wsf-Tail", "1"},
                                           {"Wsf-Origin-Region", region_}};
        link_->publish("wsfx." + region + ".b." + r->bridges.choose(tail) + ".ch." + tail,
                       std::move(got->data), std::move(headers));
        metrics_->tailResends(region).inc();
      });
}

// ---- publishes and history reads for other regions ----

void Bridge::replyError(const std::string& reply, int code, const std::string& description) {
  if (!reply.empty()) link_->publish(reply, errorJson(code, description));
}

void Bridge::onForwardPublish(NatsInbound& message) {
  // wsf.<region>.xpub.<owner>.<tenant>.<channel>
  const std::string prefix = "wsf." + region_ + ".xpub.";
  if (!startsWith(message.subject, prefix) || message.reply.empty()) {
    return metrics_->dropped("malformed_publish").inc();
  }
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string owner = rest.substr(0, dot);
  RemoteRegion* r = dot == std::string::npos ? nullptr : remote(owner);
  if (r == nullptr) {
    metrics_->dropped("publish_unknown_owner").inc();
    return replyError(message.reply, 400, "no such other region: " + owner);
  }
  if (!isChannelTail(std::string_view(rest).substr(dot + 1))) {
    metrics_->dropped("malformed_publish").inc();
    return replyError(message.reply, 400, "not a channel: " + rest.substr(dot + 1));
  }
  if (!r->up) {
    metrics_->publishes(owner, "refused").inc();
    return replyError(message.reply, 503, "the owner region " + owner + " is unreachable");
  }
  if (publishes_in_flight_ >= config_.links.max_pending_forwards) {
    metrics_->dropped("publish_queue_full").inc();
    metrics_->publishes(owner, "refused").inc();
    return replyError(message.reply, 503, "the bridge is busy, try again");
  }
  auto publish = std::make_shared<PendingPublish>();
  publish->owner = owner;
  publish->store_subject = "wsf." + owner + ".hist." + rest.substr(dot + 1);
  publish->reply = std::move(message.reply);
  publish->data = std::move(message.data);
  publish->headers = std::move(message.headers);
  publish->deadline_ms =
      nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms *
                                         config_.links.forward_attempts) +
      kRetryBackoffMs * static_cast<int64_t>(config_.links.forward_attempts);
  ++publishes_in_flight_;
  tryForwardPublish(publish);
}

void Bridge::tryForwardPublish(const std::shared_ptr<PendingPublish>& publish) {
  ++publish->attempts;
  const int64_t now = nowMonoMs();
  const int64_t deadline =
      std::min(publish->deadline_ms, now + static_cast<int64_t>(config_.links.forward_timeout_ms));
  requests_.send(
      *link_, publish->store_subject, publish->data, publish->headers, deadline,
      [this, publish](const NatsInbound* reply) {
        const bool answered = reply != nullptr && reply->status.empty();
        if (answered) {
          --publishes_in_flight_;
          metrics_->publishes(publish->owner, "acked").inc();
          link_->publish(publish->reply, reply->data);  // the owner's ack (or refusal)
          return;
        }
        // No answer (or nobody stores there right now): try again with the same message
        // id, which the owner's stream drops as a repeat if the first try was stored.
        const int64_t retry_at =
            nowMonoMs() + kRetryBackoffMs * static_cast<int64_t>(publish->attempts);
        if (publish->attempts < config_.links.forward_attempts && linkUp(publish->owner) &&
            retry_at < publish->deadline_ms) {
          publish_retries_.emplace(retry_at, publish);
          return;
        }
        --publishes_in_flight_;
        metrics_->publishes(publish->owner, "timeout").inc();
        replyError(publish->reply, 503,
                   "the owner region " + publish->owner + " did not confirm the store");
      });
}

void Bridge::onForwardApi(NatsInbound& message) {
  // wsf.<region>.xapi.<owner>.<api>: only reads of the owner's history stream.
  const std::string prefix = "wsf." + region_ + ".xapi.";
  if (!startsWith(message.subject, prefix) || message.reply.empty()) {
    return metrics_->dropped("malformed_api").inc();
  }
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string owner = rest.substr(0, dot);
  const std::string api = dot == std::string::npos ? "" : rest.substr(dot + 1);
  const std::string stream = historyStreamName(owner);
  RemoteRegion* r = remote(owner);
  if (r == nullptr || (api != "STREAM.INFO." + stream && api != "STREAM.MSG.GET." + stream)) {
    metrics_->dropped("api_refused").inc();
    return replyError(message.reply, 400, "not a history read of another region");
  }
  if (!r->up) {
    metrics_->dropped("link_down").inc();
    return replyError(message.reply, 503, "the owner region " + owner + " is unreachable");
  }
  requests_.send(*link_, "$JS.API." + api, std::move(message.data), {},
                 nowMonoMs() + static_cast<int64_t>(config_.nats.request_timeout_ms),
                 [this, reply = std::move(message.reply), owner](const NatsInbound* answer) {
                   if (answer == nullptr || !answer->status.empty()) {
                     metrics_->dropped("api_unanswered").inc();
                     return replyError(reply, 503,
                                       "the owner region " + owner + " did not answer");
                   }
                   link_->publish(reply, answer->data);
                 });
}

// ---- status ----

std::string Bridge::statusJson() const {
  std::string out;
  JsonWriter w(out);
  w.beginObject()
      .field("region", region_)
      .field("instance", instance_)
      .fieldBool("connected", ready())
      .key("peers")
      .beginArray();
  for (const std::string& p : peers_.instances()) w.string(p);
  w.endArray().key("links").beginObject();
  for (const auto& [name, r] : remotes_) {
    w.key(name).beginObject().fieldBool("up", r->up).key("bridges").beginArray();
    for (const std::string& b : r->bridges.instances()) w.string(b);
    w.endArray().endObject();
  }
  w.endObject()
      .key("interest")
      .beginObject()
      .fieldUint("local", local_interest_.size())
      .fieldUint("local_sources", local_interest_.sources())
      .fieldUint("remote", remote_interest_.size())
      .endObject()
      .fieldUint("pending_publishes", publishes_in_flight_)
      .endObject();
  return out;
}

}  // namespace wsfleet
