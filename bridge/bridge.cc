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
constexpr uint64_t kSubDirect = 8;          // wsf.<r>.xuser.>: direct messages from edges
constexpr uint64_t kSubHomeDirect = 9;      // wsfx.<r>.user.>: for users whose home is here
constexpr uint64_t kSubForwardedUser = 10;  // wsfx.<r>.b.<self>.user.>
constexpr uint64_t kSubLiveRelay = 11;      // wsf.<r>.xlive.>: unsequenced, for owners

// Requests for one region's work go to one bridge of the region, whichever.
constexpr const char* kQueueGroup = "wsf-bridge";
constexpr int64_t kRetryBackoffMs = 100;
// An edge's interest lives this many of its own refresh periods without news.
constexpr int64_t kInterestTtlPeriods = 3;
// Interest messages are split at about this size (NATS' default max payload is 1 MB).
constexpr size_t kMaxInterestMessageBytes = 256 * 1024;
// Snapshots wait this long after start: edges send their whole set every 2 s
// (edge/interest_announcer.h), so by then every live edge has been heard.
constexpr int64_t kSnapshotWarmupMs = 3000;
// Interest expiry walks the tables: a few times a second is enough for TTLs of seconds.
constexpr int64_t kExpiryScanMs = 250;
// Tail resends per tick (every 20 ms): 10000 a second at most.
constexpr size_t kTailResendsPerTick = 200;

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

// The W3C trace context a message carries, for the messages it causes.
std::vector<NatsHeader> traceOf(const NatsInbound& message) {
  if (const std::string* trace = message.header("traceparent")) {
    return {{"traceparent", *trace}};
  }
  return {};
}

// Interest entries for users start with '@' (userInterestTail).
bool isUserTail(std::string_view tail) {
  return !tail.empty() && tail.front() == '@';
}

// The strings of a JSON array field; nullopt when it is there but not an array of strings.
std::optional<std::vector<std::string>> stringArray(simdjson::dom::element doc, const char* field) {
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
                          "1 while a bridge of the region is heard, else 0", {{"region", region}});
  }
  Gauge& localInterest() {
    return registry.gauge("wsfleet_bridge_interest_entries",
                          "Entries of the interest tables: local = channels (and users) this "
                          "region's edges announced, remote = channel-region pairs other "
                          "regions want from this one",
                          {{"side", "local"}});
  }
  Gauge& remoteInterest() {
    return registry.gauge("wsfleet_bridge_interest_entries",
                          "Entries of the interest tables: local = channels (and users) this "
                          "region's edges announced, remote = channel-region pairs other "
                          "regions want from this one",
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
  // Looked up once: forwarding counts every message.
  Counter* messages_out = nullptr;
  Counter* bytes_out = nullptr;
  Counter* messages_in = nullptr;
  Counter* bytes_in = nullptr;
  void countOut(size_t bytes) {
    messages_out->inc();
    bytes_out->inc(bytes);
  }
  void countIn(size_t bytes) {
    messages_in->inc();
    bytes_in->inc(bytes);
  }
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
      local_interest_(static_cast<int64_t>(config.links.interest_linger_ms)),
      warm_until_ms_(nowMonoMs() + kSnapshotWarmupMs) {
  for (const RegionSpec& spec : config.topology->regions) {
    if (spec.name == region_) continue;
    auto r = std::make_unique<RemoteRegion>();
    r->name = spec.name;
    r->link_up = &metrics_->linkUp(spec.name);
    r->link_up->set(0);
    r->messages_out = &metrics_->forwardedMessages(spec.name, "out");
    r->bytes_out = &metrics_->forwardedBytes(spec.name, "out");
    r->messages_in = &metrics_->forwardedMessages(spec.name, "in");
    r->bytes_in = &metrics_->forwardedBytes(spec.name, "in");
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
  link_->subscribe(kSubDirect, r + ".xuser.>", kQueueGroup);
  link_->subscribe(kSubHomeDirect, x + ".user.>", kQueueGroup);
  link_->subscribe(kSubForwardedUser, x + ".b." + instance_ + ".user.>");
  link_->subscribe(kSubLiveRelay, r + ".xlive.>", kQueueGroup);
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
          if (was_connected_ && !stopping_) {
            // What was sent to this bridge meanwhile had no subscriber: leaving and coming
            // back makes every bridge that sends here (remote owners, and this region's
            // peers) resend the tails of what it sends, so the region's edges catch up.
            // This bridge resends its own for the same reason.
            sayGoodbye();
            stopping_ = false;
            resendAllTails(nullptr);
          }
          was_connected_ = true;
          next_heartbeat_ms_ = 0;
          next_snapshot_ms_ = 0;
          relearn(nowMonoMs());
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
    case kSubDirect:
      return onDirect(message);
    case kSubHomeDirect: {
      const std::string prefix = "wsfx." + region_ + ".user.";
      if (!startsWith(message.subject, prefix)) return;
      const std::string* origin = message.header("Wsf-Origin-Region");
      if (origin == nullptr || remote(*origin) == nullptr) {
        return metrics_->dropped("malformed_direct").inc();
      }
      const std::string tail = message.subject.substr(prefix.size());
      if (!isChannelTail(tail)) return metrics_->dropped("malformed_direct").inc();
      return deliverFromHome(tail, *origin, message);
    }
    case kSubForwardedUser: {
      const std::string prefix = "wsfx." + region_ + ".b." + instance_ + ".user.";
      if (!startsWith(message.subject, prefix)) return;
      const std::string tail = message.subject.substr(prefix.size());
      if (!isChannelTail(tail)) return metrics_->dropped("malformed_forward").inc();
      return deliverHere(tail, message);
    }
    case kSubForwardedIn: {
      const std::string prefix = "wsfx." + region_ + ".b." + instance_ + ".ch.";
      if (!startsWith(message.subject, prefix)) return;
      return onForwardedIn(message.subject.substr(prefix.size()), message);
    }
    case kSubLiveRelay:
      return onLiveRelay(message);
    default: {
      if (auto it = owned_sub_tails_.find(message.sub_id); it != owned_sub_tails_.end()) {
        const std::string tail = it->second;
        return onOwnedChannelMessage(tail, message);
      }
      if (auto it = live_sub_tails_.find(message.sub_id); it != live_sub_tails_.end()) {
        const std::string tail = it->second;
        return onLiveIn(tail, message);
      }
      return;  // unsubscribed meanwhile
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
  if (!ready() || stopping_) return;
  sendQueuedTails();
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
  const bool scan = now_ms >= next_expiry_scan_ms_;
  if (scan) next_expiry_scan_ms_ = now_ms + kExpiryScanMs;
  if (scan) local_interest_.expire(now_ms);
  if (now_ms >= next_snapshot_ms_) {
    next_snapshot_ms_ = now_ms + static_cast<int64_t>(config_.links.interest_refresh_ms);
    announceInterest(now_ms, true);
  } else {
    announceInterest(now_ms, false);
  }
  if (scan) {
    remote_interest_.expire(now_ms);
    applyRemoteInterestChanges();
    users_.expire(now_ms);
    users_.takeChanges();
  }
  metrics_->localInterest().set(static_cast<int64_t>(local_interest_.size()));
  metrics_->remoteInterest().set(static_cast<int64_t>(remote_interest_.size()));
  metrics_->pendingPublishes().set(static_cast<int64_t>(publishes_in_flight_));
}

void Bridge::relearn(int64_t now_ms) {
  // Everything this bridge knows by hearing it was not heard while it was away: that says
  // nothing about the others. Its peers, the other regions' bridges, the edges' interest
  // and the other regions' get a fresh lease of life, and snapshots wait until the edges
  // have all been heard again (a snapshot from stale tables would withdraw interest the
  // region still has).
  const int64_t down_after = static_cast<int64_t>(config_.links.down_after_ms);
  peers_.extendTo(now_ms + down_after);
  for (auto& [name, r] : remotes_) r->bridges.extendTo(now_ms + down_after);
  const int64_t ttl = kInterestTtlPeriods * static_cast<int64_t>(config_.links.interest_refresh_ms);
  local_interest_.extendTo(now_ms + ttl);
  remote_interest_.extendTo(now_ms + ttl);
  users_.extendTo(now_ms + ttl);
  warm_until_ms_ = now_ms + kSnapshotWarmupMs;
}

void Bridge::beginStop() {
  // Requests go to the region's other bridges from now on; those under way finish. What
  // this bridge forwarded is another's from now on (forwarding on would send it twice).
  for (uint64_t id :
       {kSubForwardPublish, kSubForwardApi, kSubDirect, kSubHomeDirect, kSubLiveRelay}) {
    link_->unsubscribe(id);
  }
  for (const auto& [tail, id] : owned_subs_) link_->unsubscribe(id);
  for (const auto& [tail, id] : live_subs_) link_->unsubscribe(id);
  owned_subs_.clear();
  owned_sub_tails_.clear();
  live_subs_.clear();
  live_sub_tails_.clear();
  sayGoodbye();
}

void Bridge::sayGoodbye() {
  stopping_ = true;
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
    const bool lost_bridge = r->bridges.expire(now_ms);
    const bool up = !r->bridges.empty();
    if (up == r->up) {
      // One of its bridges went silent (died without a goodbye): what was sent to it is
      // lost, and its channels now go to another bridge there, which starts with tails.
      if (up && lost_bridge) resendAllTails(&r->name);
      continue;
    }
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

// ---- channel traffic ----

void Bridge::onOwnedChannelMessage(const std::string& tail, NatsInbound& message) {
  if (stopping_ || !peers_.isSelfChosen(tail)) return;  // another bridge forwards it
  // An unsequenced message relayed from the region it was published in (onLiveIn) goes
  // everywhere but back there.
  const std::string* published_in = message.header("Wsf-Published-In");
  forwardToInterested(tail, message, published_in != nullptr ? *published_in : std::string());
}

void Bridge::forwardToInterested(const std::string& tail, const NatsInbound& message,
                                 const std::string& skip_region) {
  const auto* regions = remote_interest_.regionsOf(tail);
  if (regions == nullptr) return;
  std::vector<NatsHeader> headers = message.headers;
  headers.push_back({"Wsf-Origin-Region", region_});
  for (const auto& [name, expires] : *regions) {
    RemoteRegion* r = remote(name);
    if (r == nullptr || name == skip_region) continue;
    if (!r->up) {
      // Its edges fetch it from the history once the link is back (resendAllTails).
      metrics_->dropped("link_down").inc();
      continue;
    }
    const std::string target = r->bridges.choose(tail);
    link_->publish("wsfx." + name + ".b." + target + ".ch." + tail, message.data, headers);
    r->countOut(message.data.size());
  }
}

void Bridge::updateLiveSubscription(const std::string& tail) {
  const bool wanted =
      remote_interest_.regionsOf(tail) != nullptr || local_interest_.has(region_, tail);
  auto it = live_subs_.find(tail);
  if (wanted && it == live_subs_.end()) {
    const uint64_t id = next_sub_id_++;
    live_subs_.emplace(tail, id);
    live_sub_tails_.emplace(id, tail);
    // One bridge of the region takes each relayed message.
    link_->subscribe(id, "wsfx." + region_ + ".live." + tail, kQueueGroup);
  } else if (!wanted && it != live_subs_.end()) {
    link_->unsubscribe(it->second);
    live_sub_tails_.erase(it->second);
    live_subs_.erase(it);
  }
}

void Bridge::onLiveRelay(NatsInbound& message) {
  // wsf.<region>.xlive.<owner>.<tenant>.<channel>: an unsequenced publish of this region
  // for a channel another region owns. It crosses only while the owner's bridges listen
  // (some region, the owner included, has subscribers).
  const std::string prefix = "wsf." + region_ + ".xlive.";
  if (!startsWith(message.subject, prefix)) return metrics_->dropped("malformed_forward").inc();
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string owner = rest.substr(0, dot);
  RemoteRegion* r = dot == std::string::npos ? nullptr : remote(owner);
  if (r == nullptr || !isChannelTail(std::string_view(rest).substr(dot + 1))) {
    return metrics_->dropped("malformed_forward").inc();
  }
  if (!r->up) return metrics_->dropped("link_down").inc();  // at most once: not kept
  r->countOut(message.data.size());
  std::vector<NatsHeader> headers = std::move(message.headers);  // traceparent
  headers.push_back({"Wsf-Published-In", region_});
  link_->publish("wsfx." + owner + ".live." + rest.substr(dot + 1), std::move(message.data),
                 std::move(headers));
}

void Bridge::onLiveIn(const std::string& tail, NatsInbound& message) {
  const std::string* published_in = message.header("Wsf-Published-In");
  RemoteRegion* from = published_in == nullptr ? nullptr : remote(*published_in);
  if (from == nullptr) return metrics_->dropped("malformed_forward").inc();
  const std::string origin = *published_in;
  from->countIn(message.data.size());
  // This region's subscribers; the forwarding bridge of the channel (another one: the
  // link does not echo this bridge's own publishes) sends it on to the other regions.
  link_->publish("wsf." + region_ + ".ch." + tail, message.data, message.headers);
  if (!stopping_ && peers_.isSelfChosen(tail)) forwardToInterested(tail, message, origin);
}

void Bridge::onForwardedIn(const std::string& tail, NatsInbound& message) {
  // Republished on a subject made of the tail: it must name one channel.
  if (!isChannelTail(tail)) return metrics_->dropped("malformed_forward").inc();
  const std::string* origin = message.header("Wsf-Origin-Region");
  RemoteRegion* from = origin == nullptr ? nullptr : remote(*origin);
  // Tails are counted where they are sent (tail_resends_total), not as traffic.
  if (message.header("Wsf-Tail") == nullptr) {
    if (from != nullptr) {
      from->countIn(message.data.size());
    } else {
      metrics_->forwardedMessages("unknown", "in").inc();
      metrics_->forwardedBytes("unknown", "in").inc(message.data.size());
    }
  }
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
  // Queued, and sent a bounded number per tick: after a partition heals every shared
  // channel's tail is due at once, and the history stream takes them in stride.
  if (tail_queued_.insert({tail, region}).second) tail_queue_.emplace_back(tail, region);
}

void Bridge::sendQueuedTails() {
  for (size_t n = 0; n < kTailResendsPerTick && !tail_queue_.empty(); ++n) {
    auto [tail, region] = std::move(tail_queue_.front());
    tail_queue_.pop_front();
    tail_queued_.erase({tail, region});
    sendTail(tail, region);
  }
}

void Bridge::sendTail(const std::string& tail, const std::string& region) {
  if (!peers_.isSelfChosen(tail) || !linkUp(region)) return;
  const std::string subject = "wsf." + region_ + ".hist." + tail;
  requests_.send(*link_, msgGetSubject(historyStreamName(region_)), msgGetLastBySubject(subject),
                 {}, nowMonoMs() + static_cast<int64_t>(config_.nats.request_timeout_ms),
                 [this, tail, region, subject](const NatsInbound* reply) {
                   if (reply == nullptr || !reply->status.empty()) {
                     return metrics_->dropped("tail_unreadable").inc();
                   }
                   JsError error;
                   auto got = parseMsgGet(parser_, reply->data, &error);
                   if (!got.isOk()) {
                     if (error.err_code != kJsNoMessageFound)
                       metrics_->dropped("tail_unreadable").inc();
                     return;
                   }
                   RemoteRegion* r = remote(region);
                   if (r == nullptr || !r->up || got->subject != subject) return;
                   // Marked as a tail: receivers compare its offset with theirs and fetch what they
                   // lack from the history; it is never delivered as a live message.
                   std::vector<NatsHeader> headers = {{"Nats-Sequence", std::to_string(got->seq)},
                                                      {"Wsf-Tail", "1"},
                                                      {"Wsf-Origin-Region", region_}};
                   link_->publish(
                       "wsfx." + region + ".b." + r->bridges.choose(tail) + ".ch." + tail,
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
  // <owner>.<hist|inbox>.<tenant>.<name>
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const size_t kind_end = dot == std::string::npos ? dot : rest.find('.', dot + 1);
  const std::string owner = rest.substr(0, dot);
  const std::string kind =
      kind_end == std::string::npos ? "" : rest.substr(dot + 1, kind_end - dot - 1);
  RemoteRegion* r = kind_end == std::string::npos ? nullptr : remote(owner);
  if (r == nullptr || (kind != "hist" && kind != "inbox")) {
    metrics_->dropped("publish_unknown_owner").inc();
    return replyError(message.reply, 400, "not a store in another region: " + rest);
  }
  if (!isChannelTail(std::string_view(rest).substr(kind_end + 1))) {
    metrics_->dropped("malformed_publish").inc();
    return replyError(message.reply, 400, "not a channel or user: " + rest.substr(kind_end + 1));
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
  publish->store_subject = "wsf." + owner + "." + rest.substr(dot + 1);
  publish->reply = std::move(message.reply);
  publish->data = std::move(message.data);
  publish->headers = std::move(message.headers);
  publish->deadline_ms =
      nowMonoMs() +
      static_cast<int64_t>(config_.links.forward_timeout_ms * config_.links.forward_attempts) +
      kRetryBackoffMs * static_cast<int64_t>(config_.links.forward_attempts);
  ++publishes_in_flight_;
  tryForwardPublish(publish);
}

void Bridge::tryForwardPublish(const std::shared_ptr<PendingPublish>& publish) {
  ++publish->attempts;
  const int64_t now = nowMonoMs();
  const int64_t deadline =
      std::min(publish->deadline_ms, now + static_cast<int64_t>(config_.links.forward_timeout_ms));
  requests_.send(*link_, publish->store_subject, publish->data, publish->headers, deadline,
                 [this, publish](const NatsInbound* reply) {
                   const bool answered = reply != nullptr && reply->status.empty();
                   if (answered) {
                     --publishes_in_flight_;
                     const bool refused = reply->data.find("\"error\"") != std::string::npos;
                     metrics_->publishes(publish->owner, refused ? "refused" : "acked").inc();
                     link_->publish(publish->reply, reply->data);  // the owner's ack (or refusal)
                     return;
                   }
                   // No answer (or nobody stores there right now): try again with the same message
                   // id, which the owner's stream drops as a repeat if the first try was stored.
                   const int64_t retry_at =
                       nowMonoMs() + kRetryBackoffMs * static_cast<int64_t>(publish->attempts);
                   if (publish->attempts < config_.links.forward_attempts &&
                       linkUp(publish->owner) && retry_at < publish->deadline_ms) {
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
  // Reads of the owner's history; reads and purges of its inboxes (a user's inbox is in
  // its home region and emptied from wherever the user connects).
  const std::string history = historyStreamName(owner);
  const std::string inbox = inboxStreamName(owner);
  RemoteRegion* r = remote(owner);
  const bool allowed = api == "STREAM.INFO." + history || api == "STREAM.MSG.GET." + history ||
                       api == "STREAM.MSG.GET." + inbox || api == "STREAM.PURGE." + inbox;
  if (r == nullptr || !allowed) {
    metrics_->dropped("api_refused").inc();
    return replyError(message.reply, 400, "not a history or inbox access in another region");
  }
  if (!r->up) {
    metrics_->dropped("api_link_down").inc();
    return replyError(message.reply, 503, "the owner region " + owner + " is unreachable");
  }
  requests_.send(*link_, "$JS.API." + api, std::move(message.data), {},
                 nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms),
                 [this, reply = std::move(message.reply), owner](const NatsInbound* answer) {
                   if (answer == nullptr || !answer->status.empty()) {
                     metrics_->dropped("api_unanswered").inc();
                     return replyError(reply, 503, "the owner region " + owner + " did not answer");
                   }
                   link_->publish(reply, answer->data);
                 });
}

// ---- direct messages ----

void Bridge::onDirect(NatsInbound& message) {
  // wsf.<region>.xuser.<home>.<tenant>.<user>
  const std::string prefix = "wsf." + region_ + ".xuser.";
  if (!startsWith(message.subject, prefix)) return metrics_->dropped("malformed_direct").inc();
  const std::string rest = message.subject.substr(prefix.size());
  const size_t dot = rest.find('.');
  const std::string home = rest.substr(0, dot);
  if (dot == std::string::npos || (home != region_ && remote(home) == nullptr)) {
    metrics_->dropped("malformed_direct").inc();
    return replyError(message.reply, 400, "no such region: " + home);
  }
  const std::string tail = rest.substr(dot + 1);
  if (!isChannelTail(tail)) {
    metrics_->dropped("malformed_direct").inc();
    return replyError(message.reply, 400, "not a user: " + tail);
  }
  if (home == region_) return deliverFromHome(tail, region_, message);
  if (!linkUp(home)) {
    metrics_->dropped("link_down").inc();
    return replyError(message.reply, 503, "the user's home region " + home + " is unreachable");
  }
  std::vector<NatsHeader> headers = std::move(message.headers);  // traceparent
  headers.push_back({"Wsf-Origin-Region", region_});
  const std::string subject = "wsfx." + home + ".user." + tail;
  if (message.reply.empty()) {
    link_->publish(subject, std::move(message.data), std::move(headers));
    return;
  }
  requests_.send(*link_, subject, std::move(message.data), std::move(headers),
                 nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms),
                 [this, reply = std::move(message.reply), home](const NatsInbound* answer) {
                   if (answer == nullptr || !answer->status.empty()) {
                     metrics_->dropped("direct_unanswered").inc();
                     return replyError(reply, 503,
                                       "the user's home region " + home + " did not answer");
                   }
                   link_->publish(reply, answer->data);
                 });
}

void Bridge::deliverHere(const std::string& tail, NatsInbound& message) {
  const std::string subject = "wsf." + region_ + ".user." + tail;
  std::vector<NatsHeader> headers = traceOf(message);
  if (message.reply.empty()) {
    link_->publish(subject, std::move(message.data), std::move(headers));
    return;
  }
  // Asked whether it reached the user: an edge holding the user answers its user
  // subject's requests; nobody listening (503) means the user is not here any more.
  requests_.send(*link_, subject, std::move(message.data), std::move(headers),
                 nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms) / 2,
                 [this, reply = std::move(message.reply)](const NatsInbound* answer) {
                   const bool here = answer != nullptr && answer->status.empty();
                   std::string body;
                   JsonWriter(body).beginObject().fieldUint("delivered", here ? 1 : 0).endObject();
                   link_->publish(reply, std::move(body));
                 });
}

void Bridge::deliverFromHome(const std::string& tail, const std::string& origin,
                             NatsInbound& message) {
  // Every region the user is online in but the sender's (which delivered it itself).
  std::vector<std::string> targets;
  if (const auto* regions = users_.regionsOf(tail)) {
    for (const auto& [name, expires] : *regions) {
      if (name == origin) continue;
      if (name != region_ && !linkUp(name)) {
        metrics_->dropped("link_down").inc();
        continue;
      }
      targets.push_back(name);
    }
  }
  auto subject_for = [&](const std::string& name) {
    return name == region_
               ? "wsf." + region_ + ".user." + tail
               : "wsfx." + name + ".b." + remote(name)->bridges.choose(tail) + ".user." + tail;
  };
  if (message.reply.empty()) {
    for (const std::string& name : targets) {
      link_->publish(subject_for(name), message.data, traceOf(message));
    }
    return;
  }
  // The sender learns how many regions confirmed that the user got it (an edge there
  // held the user): none means offline everywhere, and the sender keeps it in the inbox.
  struct Tally {
    std::string reply;
    size_t waiting = 0;
    uint64_t delivered = 0;
  };
  auto tally = std::make_shared<Tally>();
  tally->reply = std::move(message.reply);
  tally->waiting = targets.size();
  auto answer = [this](const std::shared_ptr<Tally>& t) {
    std::string body;
    JsonWriter(body).beginObject().fieldUint("delivered", t->delivered).endObject();
    link_->publish(t->reply, std::move(body));
  };
  if (targets.empty()) return answer(tally);
  const int64_t deadline = nowMonoMs() + static_cast<int64_t>(config_.links.forward_timeout_ms) / 2;
  for (const std::string& name : targets) {
    const bool here = name == region_;
    requests_.send(*link_, subject_for(name), message.data, traceOf(message), deadline,
                   [this, tally, here, answer](const NatsInbound* r) {
                     if (r != nullptr && r->status.empty()) {
                       uint64_t n = 1;  // an edge's "online"
                       if (!here) {
                         auto doc = parser_.parse(r->data);
                         if (!doc || (*doc)["delivered"].get(n) != simdjson::SUCCESS) n = 0;
                       }
                       tally->delivered += n > 0 ? 1 : 0;
                     }
                     if (--tally->waiting == 0) answer(tally);
                   });
  }
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
      .fieldUint("users", users_.size())
      .endObject()
      .fieldUint("pending_publishes", publishes_in_flight_)
      .endObject();
  return out;
}

}  // namespace wsfleet
