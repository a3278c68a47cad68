// wsfleet-bridge: set-up, the loop, heartbeats and links, status (bridge/bridge.h).
#include "bridge/bridge_internal.h"

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/jetstream_api.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

using namespace bridge_detail;

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
    r->link_paused = &metrics_->linkPaused(spec.name);
    r->link_paused->set(0);
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
  // Every bridge hears the region's unsequenced publishes for other regions; the
  // channel's chosen one relays them (one path per channel keeps a publisher's order).
  link_->subscribe(kSubLiveRelay, r + ".xlive.>");
  subscribeControl();
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
    case kSubControl:
    case kSubControlVerb:
      return onControl(message);
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
  sampleRates(now_ms);
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
    const bool up = !r->bridges.empty() && !r->paused;
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
      if (r->paused) {
        logWarn("bridge_link_down", {{"region", name}, {"paused", true}});
      } else {
        logWarn("bridge_link_down", {{"region", name},
                                     {"silent_ms", static_cast<int64_t>(config_.links.down_after_ms)}});
      }
    }
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
    w.key(name)
        .beginObject()
        .fieldBool("up", r->up)
        .fieldBool("paused", r->paused)
        .key("bridges")
        .beginArray();
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
