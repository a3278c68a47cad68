// EdgeService in region mode: what crosses edges over NATS, and the delivery order of
// durable channels whose history is the region's JetStream stream.
//
// Durable channels, per worker and channel (RegionChannel):
//  - `cursor` is the offset (stream sequence) last delivered to the local subscribers;
//  - a live message carries its offset and the offset of the channel's previous message
//    (Nats-Last-Sequence, set by the stream when it republishes). prev == cursor: deliver.
//    Otherwise something is missing (lost while the link was down, or a republish lost in
//    a leader change): the channel turns busy and catches up, taking what it holds first
//    and fetching the rest from the stream one message at a time in offset order, holding
//    live messages meanwhile; what neither has any more closes the subscribers (4009);
//  - subscribes wait while the channel is busy, so a new subscriber's reply, its replay
//    and the live messages after it come in offset order without gaps or duplicates.
#include <openssl/evp.h>

#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "common/random.h"
#include "common/region_subjects.h"
#include "common/token.h"
#include "edge/edge_service.h"

namespace wsfleet {

namespace {

constexpr size_t kMaxHeld = 10000;
constexpr size_t kMaxHeldBytes = 8u << 20;  // per channel; beyond, fetched again later
constexpr int64_t kCatchUpRetryMs = 500;
constexpr int64_t kTailCheckMs = 1000;
constexpr size_t kMaxWaiters = 10000;
constexpr int64_t kInboxRecheckMs = 1000;
// How often the whole interest set goes to the bridges (see edge/interest_announcer.h).
constexpr int64_t kInterestRefreshMs = 2000;

uint64_t parseSeq(const std::string* text) {
  if (text == nullptr) return 0;
  uint64_t v = 0;
  for (char c : *text) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

// A new W3C trace context (version 00, random trace and span ids, sampled): what crosses
// regions carries it in its NATS headers, edge -> bridge -> edge.
NatsHeader traceParent() {
  const std::string ids = randomHex(24);  // one draw: 32 hex digits of trace, 16 of span
  return {"traceparent", "00-" + ids.substr(0, 32) + "-" + ids.substr(32) + "-01"};
}

// The JetStream de-duplication id of a publish: a digest of who published what key where,
// so a client-chosen key never reaches a header as is and one publisher's key cannot
// swallow another's message.
std::string messageId(const std::string& tenant, const std::string& channel,
                      const std::string& scoped_key) {
  std::string input = tenant;
  input.push_back('\0');
  input += channel;
  input.push_back('\0');
  input += scoped_key;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr);
  return base64UrlEncode(std::string_view(reinterpret_cast<const char*>(digest), len));
}

}  // namespace

Status EdgeService::startRegion(int worker_index) {
  if (!config_.nats.enabled()) return Status::ok();
  Region::Handlers handlers;
  handlers.delivery = [this](NatsInbound& message) { onRegionDelivery(message); };
  handlers.reconnected = [this] { onRegionReconnected(); };
  handlers.epoch_changed = [this](const std::string& owner) { onRegionEpochChanged(owner); };
  WSF_ASSIGN_OR_RETURN(
      region_, Region::start(config_, worker_index, metrics_.registry(), std::move(handlers)));
  control_worker_ = worker_index;
  startControl();
  // Worker 0 is the host's presence replica (one writer of the region view per host).
  replication_ = std::make_unique<PresenceReplication>(
      *region_, *presence_, config_.node_name, instance_id_, worker_index == 0,
      [this](uint64_t cursor, size_t max_bytes) { return presenceSnapshot(cursor, max_bytes); },
      [this](std::vector<SweptMembership> gone) {
        for (auto& m : gone) swept_memberships_.push_back(std::move(m));
      });
  if (config_.topology) {
    for (const RegionSpec& r : config_.topology->regions) healthy_regions_.insert(r.name);
    interest_ = std::make_unique<InterestAnnouncer>(
        *region_, interestSubject(config_.region, config_.node_name, instance_id_),
        config_.node_name + "/" + instance_id_, kInterestRefreshMs);
    owners_ = std::make_unique<OwnerDirectory>(
        *region_, [this](const OwnerRecord& record) { onOwnerRecord(record); },
        [this](const RegionRecord& record) { onRegionRecord(record); },
        config_.topology->regions.front().name == config_.region,
        static_cast<int>(config_.history_replicas));
    owners_->start();
  }
  logInfo("region_link_started",
          {{"region", config_.region}, {"servers", config_.nats.servers.size()}});
  return Status::ok();
}

void EdgeService::onRegionWake() {
  if (region_) region_->onWake();
}

Connection* EdgeService::live(const ConnRef& ref) const {
  auto it = connections_.find(ref.conn);
  if (it == connections_.end() || it->first->serial != ref.serial) return nullptr;
  return ref.conn;
}

void EdgeService::toOthers(const PeerMessage& message) {
  if (region_) {
    const bool user = message.kind == PeerMessage::Kind::kUser;
    const std::string subject =
        user ? userSubject(config_.region, message.tenant, message.target)
             : channelSubject(config_.region, message.tenant, message.target);
    std::string bytes = encodePeerMessage(message);
    // An unsequenced channel owned by another region: its owner's bridges also send it
    // to the owner's subscribers and to every other region that wants it.
    if (!user && relaysUnsequenced(message.tenant, message.target)) {
      const std::string owner = ownerOf(message.tenant, message.target);
      if (owner != config_.region) {
        region_->publish(
            forwardedLiveSubject(config_.region, owner, message.tenant, message.target), bytes,
            {traceParent()});
      }
    }
    region_->publish(subject, std::move(bytes));
    return;
  }
  if (transport_.hasPeers()) transport_.toPeers(message);
}

// ---- interest ----

std::string EdgeService::ownerOf(const std::string& tenant, const std::string& channel) const {
  return storeTargetOf(tenant, channel).owner;
}

EdgeService::StoreTarget EdgeService::storeTargetOf(const std::string& tenant,
                                                    const std::string& channel) const {
  if (!config_.topology) return {config_.region, 0, false};
  if (const OwnerRecord* moved = owners_ ? owners_->find(tenant, channel) : nullptr) {
    return {moved->readOwner(), moved->readGen(), moved->state == OwnerState::kMoving};
  }
  auto decided = decideOwner(*config_.topology, healthy_regions_, tenant, channel);
  return {decided.isOk() ? decided->region : config_.region, 0, false};
}

bool EdgeService::relaysUnsequenced(const std::string& tenant, const std::string& channel) const {
  if (!config_.topology) return false;
  auto t = config_.tenants.find(tenant);
  if (t == config_.tenants.end()) return false;
  const NamespaceConfig* ns = findNamespace(t->second, channel);
  return ns != nullptr && ns->ordering == Ordering::kNone;
}

std::optional<std::string> EdgeService::interestOwner(const std::string& tenant,
                                                      const std::string& channel) const {
  // Messages of a channel owned elsewhere reach this region only while its bridges
  // announce interest to the owner. Unsequenced channels of this region are announced
  // too (to this region's bridges only): publishes made in other regions reach their
  // subscribers here through the bridges.
  if (!interest_) return std::nullopt;
  std::string owner = ownerOf(tenant, channel);
  if (owner == config_.region && !relaysUnsequenced(tenant, channel)) return std::nullopt;
  return owner;
}

void EdgeService::watchChannel(const std::string& tenant, const std::string& channel) {
  region_->watch(channelSubject(config_.region, tenant, channel));
  if (auto owner = interestOwner(tenant, channel)) {
    interest_->add(*owner, channelTail(tenant, channel));
    announced_owner_[scopedKey(tenant, channel)] = *owner;
  }
}

void EdgeService::unwatchChannel(const std::string& tenant, const std::string& channel) {
  region_->unwatch(channelSubject(config_.region, tenant, channel));
  // Withdrawn where it was announced: a move may have changed the owner since.
  auto it = announced_owner_.find(scopedKey(tenant, channel));
  if (it != announced_owner_.end()) {
    interest_->remove(it->second, channelTail(tenant, channel));
    announced_owner_.erase(it);
  }
}

void EdgeService::regionChannelJoined(const std::string& tenant, const std::string& channel) {
  if (region_) watchChannel(tenant, channel);
}

void EdgeService::regionChannelLeft(const std::string& tenant, const std::string& channel) {
  if (!region_ || !hub_.subscribers(tenant, channel).empty()) return;
  const std::string key = scopedKey(tenant, channel);
  auto it = region_channels_.find(key);
  if (it != region_channels_.end() && (it->second->busy || !it->second->waiters.empty())) {
    return;  // still needed; forgotten when idle
  }
  if (it != region_channels_.end()) region_channels_.erase(it);
  unwatchChannel(tenant, channel);
}

void EdgeService::regionForgetIfUnused(const std::string& key) {
  auto it = region_channels_.find(key);
  if (it == region_channels_.end()) return;
  RegionChannel& rc = *it->second;
  if (rc.busy || !rc.waiters.empty() || !hub_.subscribers(rc.tenant, rc.channel).empty()) return;
  const std::string tenant = rc.tenant;
  const std::string channel = rc.channel;
  region_channels_.erase(it);
  unwatchChannel(tenant, channel);
}

std::string EdgeService::homeOf(const std::string& tenant, const std::string& user) const {
  if (!config_.topology) return config_.region;
  auto home = homeRegion(*config_.topology, healthy_regions_, tenant, user);
  return home.isOk() ? *home : config_.region;
}

void EdgeService::regionUserJoined(const Connection& conn) {
  if (region_ && hub_.userConnections(conn.tenant, conn.user).size() == 1) {
    region_->watch(userSubject(config_.region, conn.tenant, conn.user));
    // The user's home region keeps where the user is online (its bridges route direct
    // messages by it); announced even when this region is the home.
    if (interest_) {
      interest_->add(homeOf(conn.tenant, conn.user), userInterestTail(conn.tenant, conn.user));
    }
    if (region_->hasInbox() && conn.tenant_config->inbox_ttl_ms > 0) {
      regionFetchInbox(conn.tenant, conn.user, 1);
      inbox_rechecks_.push_back({nowMonoMs() + kInboxRecheckMs, conn.tenant, conn.user});
    }
  }
}

void EdgeService::recheckInboxes(int64_t now_mono_ms) {
  while (!inbox_rechecks_.empty() && inbox_rechecks_.front().due_ms <= now_mono_ms) {
    InboxRecheck check = std::move(inbox_rechecks_.front());
    inbox_rechecks_.pop_front();
    if (!hub_.userConnections(check.tenant, check.user).empty()) {
      regionFetchInbox(check.tenant, check.user, 1);
    }
  }
}

void EdgeService::regionFetchInbox(const std::string& tenant, const std::string& user,
                                   uint64_t from) {
  // One fetch chain per user at a time (it takes everything there is, in order): a second
  // one started meanwhile, by the recheck or a reconnect, would deliver the same messages
  // again before the first purged them.
  const std::string key = scopedKey(tenant, user);
  if (from == 1 && !inbox_chains_.insert(key).second) return;
  // The inbox is in the user's home region (this one without a topology).
  const std::string home = homeOf(tenant, user);
  const std::string stream = inboxStreamName(home);
  const std::string subject = inboxSubject(home, tenant, user);
  region_->streamApi(
      home, "STREAM.MSG.GET." + stream, msgGetNextBySubject(from, subject),
      [this, tenant, user, home, stream, subject, from, key](const NatsInbound* r) {
        JsError error;
        auto got = r == nullptr || !r->status.empty()
                       ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                       : parseMsgGet(region_->parser(), r->data, &error);
        if (!got.isOk()) {
          if (error.err_code == kJsNoMessageFound && from > 1) {
            // Everything below `from` was delivered: remove it. A message queued since
            // has a higher sequence and stays.
            region_->streamApi(home, "STREAM.PURGE." + stream, purgeSubjectBelow(subject, from),
                               [this, key](const NatsInbound*) { inbox_chains_.erase(key); });
            return;
          }
          if (error.err_code != kJsNoMessageFound) {
            metrics_.dropped("inbox_unreachable");  // it stays queued for the next connect
          }
          inbox_chains_.erase(key);
          return;
        }
        const auto& targets = hub_.userConnections(tenant, user);
        if (targets.empty()) {
          inbox_chains_.erase(key);
          return;  // gone again: the rest waits for the next connect
        }
        auto stored = decodePeerMessage(got->data);
        if (stored && stored->kind == PeerMessage::Kind::kUser) {
          FramePtr frame = makeFrame(stored->frame);
          uint64_t delivered = 0;
          for (Connection* target : targets) delivered += enqueue(*target, frame) ? 1 : 0;
          metrics_.messages_delivered.inc(delivered);
          metrics_.inbox_delivered.inc();
        }
        regionFetchInbox(tenant, user, got->seq + 1);
      });
}

void EdgeService::regionUserLeft(const Connection& conn) {
  if (region_ && hub_.userConnections(conn.tenant, conn.user).empty()) {
    region_->unwatch(userSubject(config_.region, conn.tenant, conn.user));
    if (interest_) {
      interest_->remove(homeOf(conn.tenant, conn.user), userInterestTail(conn.tenant, conn.user));
    }
  }
}

// ---- what arrives ----

void EdgeService::onRegionDelivery(NatsInbound& message) {
  if (onControlMessage(message)) return;
  if (replication_ && replication_->onMessage(message, nowMonoMs())) return;
  if (owners_ && owners_->onMessage(message)) return;
  auto decoded = decodePeerMessage(message.data);
  if (!decoded) {
    metrics_.dropped("region_malformed");
    return;
  }
  auto tenant = config_.tenants.find(decoded->tenant);
  if (tenant == config_.tenants.end()) {
    metrics_.dropped("peer_unknown_tenant");
    return;
  }
  switch (decoded->kind) {
    case PeerMessage::Kind::kStored: {
      const uint64_t seq = parseSeq(message.header("Nats-Sequence"));
      if (seq == 0) {
        metrics_.dropped("region_unsequenced");
        return;
      }
      const uint64_t prev = parseSeq(message.header("Nats-Last-Sequence"));
      auto it = region_channels_.find(scopedKey(decoded->tenant, decoded->target));
      if (it == region_channels_.end()) return;  // nobody here any more
      RegionChannel& rc = *it->second;
      if (!deliverable(rc, *decoded, seq)) {
        // Another generation's message: a late store refused to its publisher, or the
        // old owner's history after a move (see common/owner_records.h).
        metrics_.dropped("other_generation");
        return;
      }
      if (message.header("Wsf-Tail") != nullptr) {
        // The owner's bridge resent the channel's last message (a link came back, or
        // its forwarding bridge changed): only a hint that something may be missing.
        if (rc.positioned && seq > rc.cursor) {
          if (rc.busy) {
            rc.catch_up_after = true;
          } else {
            regionCatchUp(rc);
          }
        }
        return;
      }
      regionLive(rc, seq, prev, storedFrame(rc, *decoded, seq), decoded->origin_ts_ms);
      return;
    }
    case PeerMessage::Kind::kUser: {
      const bool here = !hub_.userConnections(decoded->tenant, decoded->target).empty();
      onPeerMessage(*decoded);
      // The sender waits for one worker to say the user is online (region_->request).
      if (here && !message.reply.empty()) region_->publish(message.reply, "online");
      return;
    }
    case PeerMessage::Kind::kChannel:
      onPeerMessage(*decoded);
      return;
  }
}

FramePtr EdgeService::storedFrame(const RegionChannel& rc, const PeerMessage& stored,
                                  uint64_t seq) const {
  return makeFrame(encodeMessage(stored.target, channelEpochOf(rc), seq, stored.from,
                                 stored.frame, stored.origin_ts_ms));
}

void EdgeService::forEachRegionChannel(const std::function<void(RegionChannel&)>& fn) {
  // By key, looked up again each time: a request that fails at once answers
  // synchronously and may forget a channel (or another) under the caller's feet.
  std::vector<std::string> keys;
  keys.reserve(region_channels_.size());
  for (const auto& [key, rc] : region_channels_) keys.push_back(key);
  for (const std::string& key : keys) {
    auto it = region_channels_.find(key);
    if (it != region_channels_.end()) fn(*it->second);
  }
}

void EdgeService::onRegionReconnected() {
  if (owners_) owners_->onReconnected();  // moves made meanwhile
  // Whatever was republished while the link was down never reached this worker.
  forEachRegionChannel([this](RegionChannel& rc) {
    if (rc.busy) {
      rc.catch_up_after = true;  // a fetch or replay runs: after it (regionIdle)
    } else if (rc.positioned) {
      regionCatchUp(rc);
    }
  });
}

void EdgeService::onRegionEpochChanged(const std::string& owner) {
  // Offsets of the old stream mean nothing in the new one: every channel of that owner
  // reads its position again (subscribers see the new epoch on the next message).
  forEachRegionChannel([this, &owner](RegionChannel& rc) {
    if (rc.owner != owner) return;
    rc.held.clear();
    rc.held_bytes = 0;
    if (rc.busy) {
      rc.reposition = true;
      return;
    }
    rc.positioned = false;
    regionPosition(rc);
  });
}

// ---- durable channels ----

EdgeService::RegionChannel& EdgeService::regionChannel(const std::string& tenant,
                                                       const std::string& channel) {
  const std::string key = scopedKey(tenant, channel);
  auto& slot = region_channels_[key];
  if (!slot) {
    slot = std::make_unique<RegionChannel>();
    slot->key = key;
    slot->tenant = tenant;
    slot->channel = channel;
    const StoreTarget owner = storeTargetOf(tenant, channel);
    slot->owner = owner.owner;
    slot->gen = owner.gen;
    const OwnerRecord* moved = owners_ ? owners_->find(tenant, channel) : nullptr;
    if (moved != nullptr && moved->readGen() == owner.gen && moved->gen == owner.gen) {
      slot->base = moved->base;
    }
    slot->frozen = owner.moving;
    moveFromDrained(tenant, channel);
    slot->history_subject = historySubject(slot->owner, tenant, channel);
    // Listening starts before the position is read, so nothing stored after that read
    // can pass by unseen.
    watchChannel(tenant, channel);
  }
  return *slot;
}

void EdgeService::regionLive(RegionChannel& rc, uint64_t seq, uint64_t prev, FramePtr frame,
                             int64_t ts) {
  if (rc.busy || !rc.positioned || rc.frozen) {
    if (rc.held.size() >= kMaxHeld || rc.held_bytes + frame->size() > kMaxHeldBytes) {
      metrics_.dropped("region_held_full");  // the catch-up fetches it from the stream
      return;
    }
    rc.held_bytes += frame->size();
    rc.held.push_back({seq, prev, std::move(frame), ts});
    // A position read that failed is tried again when the channel has news.
    if (!rc.busy && !rc.positioned) regionPosition(rc);
    return;
  }
  if (seq <= rc.cursor) return;  // delivered already (catch-up overtook it)
  if (prev != rc.cursor) {
    rc.held_bytes += frame->size();
    rc.held.push_back({seq, prev, std::move(frame), ts});
    regionCatchUp(rc);
    return;
  }
  fanOut(rc.tenant, rc.channel, frame, ts);
  rc.cursor = seq;
}

bool EdgeService::takeHeldInOrder(RegionChannel& rc) {
  bool took = false;
  // The live copies that arrived while the channel was busy come first: what they already
  // hold need not (and, once the stream trimmed it, could not) be fetched again.
  std::sort(
      rc.held.begin(), rc.held.end(),
      [](const RegionChannel::Live& x, const RegionChannel::Live& y) { return x.seq < y.seq; });
  while (!rc.held.empty()) {
    RegionChannel::Live& next = rc.held.front();
    if (next.seq > rc.cursor && next.prev != rc.cursor) break;  // a predecessor is missing
    if (next.seq > rc.cursor) {
      fanOut(rc.tenant, rc.channel, next.frame, next.ts);
      rc.cursor = next.seq;
    }
    rc.held_bytes -= next.frame->size();
    rc.held.pop_front();
    took = true;
  }
  return took;
}

void EdgeService::regionGap(RegionChannel& rc, uint64_t resume_at) {
  // Messages between the cursor and `resume_at` are gone from the stream (trimmed while
  // the channel could not fetch them): never a silent gap. The local subscribers are
  // closed with 4009 (reconnect and resume); their resume from the last offset they got
  // answers recovered:false.
  logWarn("region_history_gap", {{"tenant", rc.tenant},
                                 {"channel", rc.channel},
                                 {"after", rc.cursor},
                                 {"resumes_at", resume_at}});
  closeSubscribersMissing(rc, "region_history_gap",
                          "messages missed while the history was unreachable; resume");
  rc.cursor = std::max(rc.cursor, resume_at);
}

void EdgeService::closeSubscribersMissing(RegionChannel& rc, const char* reason,
                                          const char* why) {
  const auto& subscribers = hub_.subscribers(rc.tenant, rc.channel);
  metrics_.dropped(reason, subscribers.size());
  for (Connection* conn : std::vector<Connection*>(subscribers)) requestClose(*conn, 4009, why);
}

void EdgeService::regionCatchUp(RegionChannel& rc) {
  if (rc.move && rc.move_ready) {
    // A move with nothing more to read of the old generation (a forced one, or the fence
    // reached) waited for a fetch or a retry to come back: apply it now.
    rc.busy = false;
    rc.stalled = false;
    return regionSwitchOwner(rc);
  }
  if (rc.frozen) {
    // A move's fence decides what more of this generation counts: wait for it (the move's
    // record, owned, starts the catch-up again). Subscribes meanwhile get the position
    // delivered so far.
    rc.busy = false;
    return regionServeWaiters(rc);
  }
  rc.busy = true;
  const std::string key = rc.key;
  if (region_->epochOf(rc.owner).empty()) {
    // A history not read yet (the channel just moved there): its epoch first, or the
    // messages could not say which history their offsets are of.
    region_->withEpoch(rc.owner, [this, key](bool known) {
      auto it = region_channels_.find(key);
      if (it == region_channels_.end()) return;
      if (known) return regionCatchUp(*it->second);
      metrics_.region_catch_up_retries.inc();
      it->second->stalled = true;
      region_retry_.emplace(nowMonoMs() + kCatchUpRetryMs, key);
    });
    return;
  }
  takeHeldInOrder(rc);
  // A cursor at a generation's base is not a message of the channel (see
  // regionSwitchOwner): nothing before it is this generation's.
  if (!rc.cursor_checked && rc.cursor > 0 && !(rc.gen > 0 && rc.cursor == rc.base)) {
    // The last message delivered must still be stored: then nothing after it was trimmed
    // (the stream trims a channel oldest first), and fetching "the next one after the
    // cursor" cannot skip a trimmed message unseen. A link cut off for long, which only
    // learns from a tail that it is behind, would otherwise skip silently.
    region_->getHistoryMessage(rc.owner, msgGetBySeq(rc.cursor), [this, key](const NatsInbound* r) {
      auto it = region_channels_.find(key);
      if (it == region_channels_.end()) return;
      RegionChannel& ch = *it->second;
      JsError error;
      auto got = r == nullptr || !r->status.empty()
                     ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                     : parseMsgGet(region_->parser(), r->data, &error);
      if (!got.isOk() && error.err_code != kJsNoMessageFound) {
        metrics_.region_catch_up_retries.inc();
        ch.stalled = true;
        region_retry_.emplace(nowMonoMs() + kCatchUpRetryMs, key);
        return;
      }
      if (!got.isOk() || got->subject != ch.history_subject) regionGap(ch, ch.cursor);
      ch.cursor_checked = true;
      regionCatchUp(ch);
    });
    return;
  }
  region_->getHistoryMessage(
      rc.owner, msgGetNextBySubject(rc.cursor + 1, rc.history_subject),
      [this, key](const NatsInbound* r) {
        auto it = region_channels_.find(key);
        if (it == region_channels_.end()) return;
        RegionChannel& ch = *it->second;
        if (ch.frozen) {
          // A move began while this was fetched: nothing more of this generation until
          // its fence is known (the owned record starts the catch-up again).
          ch.busy = false;
          ch.cursor_checked = false;
          return regionServeWaiters(ch);
        }
        JsError error;
        auto got = r == nullptr || !r->status.empty()
                       ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                       : parseMsgGet(region_->parser(), r->data, &error);
        if (!got.isOk()) {
          if (error.err_code != kJsNoMessageFound) {
            // The stream is unreachable (no quorum, a leader election): the channel stays
            // busy and tries again shortly. Delivering what is held would skip the missed
            // messages, and with offsets that are not dense nobody could tell.
            metrics_.region_catch_up_retries.inc();
            ch.stalled = true;
            region_retry_.emplace(nowMonoMs() + kCatchUpRetryMs, key);
            return;
          }
          // Nothing after the cursor in the stream, yet a held message waits for a
          // predecessor: the predecessors are gone. (Repeats of delivered messages, which
          // arrive when two bridges forwarded one, go first: they miss nothing.)
          takeHeldInOrder(ch);
          if (!ch.held.empty()) {
            regionGap(ch, ch.held.front().prev);
            takeHeldInOrder(ch);
          }
          if (ch.move) ch.move_ready = true;  // the old generation is delivered in full
          ch.busy = false;
          ch.cursor_checked = false;
          regionIdle(ch);
          return;
        }
        takeHeldInOrder(ch);  // repeats of delivered messages go first
        if (ch.move && got->seq > ch.move->fence) {
          // Past the fence of a move waiting to be applied: the old generation is
          // delivered in full; what follows is the new owner's (regionIdle switches).
          ch.move_ready = true;
          ch.held.clear();
          ch.held_bytes = 0;
          ch.busy = false;
          ch.cursor_checked = false;
          regionIdle(ch);
          return;
        }
        bool took_held = false;
        if (!ch.held.empty() && got->seq > ch.held.front().seq) {
          // The stream's next message is newer than one held: what came between the
          // cursor and the held one is gone.
          regionGap(ch, ch.held.front().prev);
          took_held = takeHeldInOrder(ch);
        } else {
          auto stored = decodePeerMessage(got->data);
          if (got->subject == ch.history_subject && stored &&
              stored->kind == PeerMessage::Kind::kStored && got->seq > ch.cursor &&
              deliverable(ch, *stored, got->seq)) {
            metrics_.region_caught_up.inc();
            metrics_.region_catch_up_lag.observe(
                static_cast<double>(std::max<int64_t>(0, nowWallMs() - stored->origin_ts_ms)) /
                1000.0);
            fanOut(ch.tenant, ch.channel, storedFrame(ch, *stored, got->seq),
                   stored->origin_ts_ms);
          }
          ch.cursor = std::max(ch.cursor, got->seq);
          took_held = takeHeldInOrder(ch);
        }
        // Caught up with the live messages held meanwhile: from here on they follow in
        // order, so chasing the stream further (while it grows) is not needed.
        // (Not while a move waits: its old generation is read up to the fence, whatever
        // is still on its way live.)
        if (took_held && ch.held.empty() && !ch.move) {
          ch.busy = false;
          ch.cursor_checked = false;
          regionIdle(ch);
          return;
        }
        regionCatchUp(ch);
      });
}

void EdgeService::retryRegionCatchUps(int64_t now_mono_ms) {
  while (!region_retry_.empty() && region_retry_.begin()->first <= now_mono_ms) {
    const std::string key = std::move(region_retry_.begin()->second);
    region_retry_.erase(region_retry_.begin());
    auto it = region_channels_.find(key);
    if (it == region_channels_.end()) continue;
    RegionChannel& rc = *it->second;
    if (rc.stalled) {
      rc.stalled = false;
      if (rc.waiters.empty() && hub_.subscribers(rc.tenant, rc.channel).empty()) {
        rc.busy = false;  // nobody left to deliver to
        regionForgetIfUnused(key);
        continue;
      }
      regionCatchUp(rc);
    } else if (!rc.busy && rc.positioned) {
      regionCatchUp(rc);  // the look after a new position (see regionPosition)
    }
  }
}

void EdgeService::regionIdle(RegionChannel& rc) {
  const std::string key = rc.key;
  if (rc.move) return rc.move_ready ? regionSwitchOwner(rc) : regionCatchUp(rc);
  if (rc.reposition) {
    rc.reposition = false;
    rc.positioned = false;
    rc.held.clear();
    rc.held_bytes = 0;
    return regionPosition(rc);
  }
  if (rc.catch_up_after && rc.positioned) {
    rc.catch_up_after = false;
    return regionCatchUp(rc);
  }
  regionServeWaiters(rc);
  auto it = region_channels_.find(key);
  if (it == region_channels_.end()) return;
  RegionChannel& same = *it->second;
  while (!same.busy && same.positioned && !same.frozen && !same.held.empty()) {
    RegionChannel::Live next = std::move(same.held.front());
    same.held.pop_front();
    same.held_bytes -= next.frame->size();
    regionLive(same, next.seq, next.prev, std::move(next.frame), next.ts);
  }
  regionForgetIfUnused(key);
}

void EdgeService::regionPosition(RegionChannel& rc) {
  if (rc.move && rc.move_ready) {
    // A move that reads nothing more of the old owner (regionDropOldGeneration) waited
    // for this: the position is the new owner's.
    rc.busy = false;
    return regionSwitchOwner(rc);
  }
  rc.busy = true;
  const std::string key = rc.key;
  if (region_->epochOf(rc.owner).empty()) {
    // Another region's history, not looked at yet: its epoch first (offsets are
    // meaningless without it).
    region_->withEpoch(rc.owner, [this, key](bool known) {
      auto it = region_channels_.find(key);
      if (it == region_channels_.end()) return;
      if (known) return regionPosition(*it->second);
      regionPositionFailed(*it->second);
    });
    return;
  }
  region_->getHistoryMessage(
      rc.owner, msgGetLastBySubject(rc.history_subject), [this, key](const NatsInbound* r) {
        auto it = region_channels_.find(key);
        if (it == region_channels_.end()) return;
        RegionChannel& ch = *it->second;
        ch.busy = false;
        JsError error;
        auto got = r == nullptr || !r->status.empty()
                       ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                       : parseMsgGet(region_->parser(), r->data, &error);
        if (got.isOk() || error.err_code == kJsNoMessageFound) {
          ch.positioned = true;
          // Below a generation's base lie older generations' messages only.
          ch.cursor = std::max(got.isOk() ? got->seq : 0, ch.gen > 0 ? ch.base : 0);
          // A message stored just after this read, before this worker's interest reached the
          // stream's server, is never republished here; the next message would reveal the gap,
          // but a quiet channel has none: look once more shortly.
          region_retry_.emplace(nowMonoMs() + kTailCheckMs, key);
          regionIdle(ch);
          return;
        }
        regionPositionFailed(ch);
      });
}

void EdgeService::regionPositionFailed(RegionChannel& ch) {
  ch.busy = false;
  // The old owner did not answer, but a move waiting for this answer no longer needs it.
  if (ch.move && ch.move_ready) return regionSwitchOwner(ch);
  // No position, no subscription: every waiting subscribe is refused.
  const std::string key = ch.key;
  metrics_.dropped("region_position_failed");
  std::deque<RegionChannel::Waiter> waiters = std::move(ch.waiters);
  ch.waiters.clear();
  ch.held.clear();
  ch.held_bytes = 0;
  for (auto& w : waiters) {
    Connection* conn = live(w.ref);
    if (conn == nullptr || !takeSubscribing(*conn, ch.channel, w.id)) continue;
    replyError(*conn, w.id,
               Status(Code::kUnavailable, "region_unavailable",
                      "the channel's history is unreachable, try again"));
  }
  regionForgetIfUnused(key);
}

void EdgeService::regionSubscribe(Connection& conn, const ClientCommand& cmd) {
  if (!region_->ready()) {
    return replyError(conn, cmd.id,
                      Status(Code::kUnavailable, "region_unavailable",
                             "the region's history is unreachable, try again"));
  }
  RegionChannel& rc = regionChannel(conn.tenant, cmd.channel);
  if (rc.stalled || rc.waiters.size() >= kMaxWaiters) {
    // The history is unreachable for this channel right now (or a storm of subscribes
    // queues behind it): an answer now beats one that may never come.
    regionForgetIfUnused(rc.key);
    return replyError(conn, cmd.id,
                      Status(Code::kUnavailable, "region_unavailable",
                             "the channel's history is unreachable, try again"));
  }
  conn.subscribing.insert(cmd.channel);
  rc.waiters.push_back({refOf(conn), cmd.id, cmd.since});
  if (rc.busy) return;
  if (!rc.positioned) return regionPosition(rc);
  regionServeWaiters(rc);
}

struct EdgeService::RegionReplay {
  std::string key;
  RegionChannel::Waiter waiter;
  uint64_t next;   // fetch from this offset on
  uint64_t until;  // the cursor when the replay began: the reply's offset
  std::vector<StoredMessage> missed;
};

void EdgeService::regionServeWaiters(RegionChannel& rc) {
  while (!rc.busy && rc.positioned && !rc.waiters.empty()) {
    RegionChannel::Waiter w = std::move(rc.waiters.front());
    rc.waiters.pop_front();
    Connection* conn = live(w.ref);
    if (conn == nullptr || conn->close_code != 0) continue;
    if (conn->subscribing.count(rc.channel) == 0) {
      takeSubscribing(*conn, rc.channel, w.id);  // called off: answered there
      continue;
    }
    const bool resumable =
        w.since && w.since->epoch == channelEpochOf(rc) && w.since->offset <= rc.cursor;
    if (w.since && !resumable) {
      metrics_.resumes_not_recovered.inc();
      regionFinishSubscribe(rc, *conn, w.id, false, {});
      continue;
    }
    if (!w.since || w.since->offset == rc.cursor) {
      if (w.since) metrics_.resumes_recovered.inc();
      regionFinishSubscribe(rc, *conn, w.id, w.since.has_value(), {});
      continue;
    }
    // A replay: the channel stays busy (live messages held) until the missed messages
    // are fetched, one by one in offset order, up to the cursor.
    rc.busy = true;
    const uint64_t first = w.since->offset + 1;
    auto replay =
        std::make_shared<RegionReplay>(RegionReplay{rc.key, std::move(w), first, rc.cursor, {}});
    if (replay->waiter.since->offset == 0) {
      // From the very beginning: complete only if nothing of the channel was ever removed,
      // which the stream can vouch for only without an age limit and while the channel
      // holds fewer messages than its per-channel limit (it trims oldest first, so a
      // channel that never reached it never lost one).
      region_->historyInfoFor(rc.owner, rc.history_subject, [this, replay](const NatsInbound* r) {
        if (region_channels_.count(replay->key) == 0) return;
        auto info = r == nullptr || !r->status.empty()
                        ? Result<StreamInfo>(Status(Code::kUnavailable, "no_reply", ""))
                        : parseStreamInfo(region_->parser(), r->data);
        const bool complete = info.isOk() && info->max_age_ms == 0 &&
                              info->subject_messages < info->max_msgs_per_subject;
        if (!complete) return regionReplayDone(replay, false);
        regionReplayStep(replay);
      });
      return;
    }
    // The client's last message must still be stored: then everything after it is (the
    // stream trims a channel oldest first, and wsfleet never deletes single messages).
    region_->getHistoryMessage(
        rc.owner, msgGetBySeq(replay->waiter.since->offset), [this, replay](const NatsInbound* r) {
          auto it = region_channels_.find(replay->key);
          if (it == region_channels_.end()) return;
          auto got = r == nullptr || !r->status.empty()
                         ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                         : parseMsgGet(region_->parser(), r->data);
          if (!got.isOk() || got->subject != it->second->history_subject) {
            return regionReplayDone(replay, false);
          }
          regionReplayStep(replay);
        });
    return;
  }
}

void EdgeService::regionReplayStep(const std::shared_ptr<RegionReplay>& replay) {
  auto it = region_channels_.find(replay->key);
  if (it == region_channels_.end()) return;
  region_->getHistoryMessage(
      it->second->owner, msgGetNextBySubject(replay->next, it->second->history_subject),
      [this, replay](const NatsInbound* r) {
        auto ch = region_channels_.find(replay->key);
        if (ch == region_channels_.end()) return;
        auto got = r == nullptr || !r->status.empty()
                       ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                       : parseMsgGet(region_->parser(), r->data);
        // Nothing more before the cursor was reached, or the stream is unreachable.
        if (!got.isOk()) return regionReplayDone(replay, false);
        if (got->seq > replay->until) return regionReplayVerify(replay);
        auto stored = decodePeerMessage(got->data);
        const RegionChannel& rc = *ch->second;
        if (stored && stored->kind == PeerMessage::Kind::kStored &&
            deliverable(rc, *stored, got->seq)) {
          replay->missed.push_back(
              {got->seq, stored->origin_ts_ms,
               encodeMessage(stored->target, channelEpochOf(rc), got->seq, stored->from,
                             stored->frame, stored->origin_ts_ms)});
        }
        replay->next = got->seq + 1;
        if (got->seq == replay->until) return regionReplayVerify(replay);
        regionReplayStep(replay);
      });
}

void EdgeService::regionReplayVerify(const std::shared_ptr<RegionReplay>& replay) {
  const uint64_t since = replay->waiter.since->offset;
  if (since == 0) return regionReplayDone(replay, true);
  auto at = region_channels_.find(replay->key);
  if (at == region_channels_.end()) return;
  if (at->second->gen > 0 && since == at->second->base) {
    // The client was told the generation's base (no message of it yet): the replay took
    // everything the generation has.
    return regionReplayDone(replay, true);
  }
  // The channel may have been trimmed while the replay was fetched (next_by_subj skips
  // what is gone): the client's last message still being there proves nothing after it
  // was removed.
  auto channel = region_channels_.find(replay->key);
  if (channel == region_channels_.end()) return;
  region_->getHistoryMessage(
      channel->second->owner, msgGetBySeq(since), [this, replay](const NatsInbound* r) {
        auto it = region_channels_.find(replay->key);
        if (it == region_channels_.end()) return;
        auto got = r == nullptr || !r->status.empty()
                       ? Result<JsStoredMessage>(Status(Code::kUnavailable, "no_reply", ""))
                       : parseMsgGet(region_->parser(), r->data);
        regionReplayDone(replay, got.isOk() && got->subject == it->second->history_subject);
      });
}

void EdgeService::regionReplayDone(const std::shared_ptr<RegionReplay>& replay, bool recovered) {
  auto it = region_channels_.find(replay->key);
  if (it == region_channels_.end()) return;
  RegionChannel& rc = *it->second;
  rc.busy = false;
  if (Connection* conn = live(replay->waiter.ref)) {
    if (recovered && !replayFits(*conn, replay->missed)) {
      // Queueing it would trip the slow-consumer cap on the client's own resume.
      metrics_.dropped("replay_too_large", replay->missed.size());
      recovered = false;
    }
    if (!recovered) replay->missed.clear();
    (recovered ? metrics_.resumes_recovered : metrics_.resumes_not_recovered).inc();
    regionFinishSubscribe(rc, *conn, replay->waiter.id, recovered, std::move(replay->missed));
  }
  regionIdle(rc);
}

bool EdgeService::takeSubscribing(Connection& conn, const std::string& channel,
                                  std::optional<uint64_t> id) {
  if (conn.subscribing.erase(channel) != 0) return true;
  // Unsubscribed while it waited: the subscribe still gets its one answer.
  replyError(conn, id,
             Status(Code::kBadRequest, "unsubscribed",
                    "unsubscribed from " + channel + " before the subscribe completed"));
  return false;
}

void EdgeService::regionFinishSubscribe(RegionChannel& rc, Connection& conn,
                                        std::optional<uint64_t> id, bool recovered,
                                        std::vector<StoredMessage> missed) {
  if (!takeSubscribing(conn, rc.channel, id)) return;
  const TenantConfig& tenant = *conn.tenant_config;
  const NamespaceConfig* ns = findNamespace(tenant, rc.channel);
  if (ns == nullptr || !conn.subs.allows(rc.channel)) {
    // A reload or a refreshed token took it away meanwhile.
    return replyError(conn, id,
                      Status(Code::kForbidden, "not_permitted", "not allowed to subscribe"));
  }
  auto added = hub_.subscribe(&conn, rc.channel);
  if (!added.added) {
    // Subscribed meanwhile by another path: it has the live messages already.
    return reply(conn,
                 encodeSubscribeReply(id, StreamPosition{channelEpochOf(rc), rc.cursor}, false));
  }
  if (ns->presence) presenceJoin(conn, rc.channel);
  metrics_.subscriptions_active.set(static_cast<int64_t>(hub_.subscriptionCount()));
  metrics_.channels_active.set(static_cast<int64_t>(hub_.channelCount()));
  reply(conn, encodeSubscribeReply(id, StreamPosition{channelEpochOf(rc), rc.cursor}, recovered));
  for (auto& message : missed) {
    if (!enqueue(conn, makeFrame(message.frame))) break;
    metrics_.messages_delivered.inc();
  }
  if (added.added && ns->join_leave &&
      userCountInChannelIs(conn.tenant, rc.channel, conn.user, 1, added.first_of_user, *ns)) {
    broadcastPresenceEvent(conn.tenant, rc.channel, conn.user, true, &conn);
  }
}

// ---- publishing into the region ----

void EdgeService::regionStore(const TenantConfig& tenant, const std::string& channel,
                              std::string_view from, std::string_view data_json,
                              const std::string& scoped_key, PublishDone done) {
  if (!region_->ready()) {
    metrics_.dropped("region_unavailable");
    return done(Status(Code::kUnavailable, "region_unavailable",
                       "the region's history is unreachable, try again"));
  }
  // While a move runs, stores still go to the old owner: the move's fence decides which
  // of them count (regionConfirmStore).
  const StoreTarget target = storeTargetOf(tenant.name, channel);
  if (owners_) {
    owners_->noteStore(nowMonoMs());
    moveFromDrained(tenant.name, channel);  // stored where it is meanwhile: still its owner
    if (owners_->failing(target.owner)) {
      // Nothing stored there is confirmed any more; once the region's lease has run out,
      // the move above takes the channel from it (a retry then stores at the new owner).
      return done(ownerRegionFailed());
    }
  }
  PeerMessage stored;
  stored.kind = PeerMessage::Kind::kStored;
  stored.generation = target.gen;
  stored.tenant = tenant.name;
  stored.target = channel;
  stored.origin_ts_ms = nowWallMs();
  stored.frame = std::string(data_json);
  stored.from = std::string(from);
  // Every store carries a message id: with the client's key, retries of the client are
  // stored once; without one, a random id still makes the retries of the path (a bridge
  // trying again after a lost acknowledgement) stored once.
  std::vector<NatsHeader> headers;
  headers.push_back({"Nats-Msg-Id", scoped_key.empty()
                                        ? randomHex(16)
                                        : messageId(tenant.name, channel, scoped_key)});
  // W3C trace context: the stored message keeps it, so every region's delivery of it
  // (the republish, the bridges' forwards) carries the publish's trace id.
  headers.push_back(traceParent());
  metrics_.messages_received.inc();
  const std::string& owner = target.owner;
  if (owner == config_.region) {
    return regionStoreAt(target, tenant.name, channel, historySubject(owner, tenant.name, channel),
                         encodePeerMessage(stored), std::move(headers), std::move(done));
  }
  // Owned by another region: stored there, through this region's bridges, once that
  // history's epoch is known (the acknowledged position names it).
  region_->withEpoch(owner, [this, target, tenant = tenant.name, channel,
                             subject = forwardedPublishSubject(config_.region, owner, "hist",
                                                               tenant.name, channel),
                             bytes = encodePeerMessage(stored), headers = std::move(headers),
                             done = std::move(done)](bool known) mutable {
    if (!known) {
      metrics_.dropped("owner_region_unavailable");
      return done(Status(Code::kUnavailable, "owner_region_unavailable",
                         "the region that owns this channel is unreachable, try again"));
    }
    regionStoreAt(target, tenant, channel, subject, std::move(bytes), std::move(headers),
                  std::move(done));
  });
}

void EdgeService::regionStoreAt(const StoreTarget& target, const std::string& tenant,
                                const std::string& channel, const std::string& subject,
                                std::string bytes, std::vector<NatsHeader> headers,
                                PublishDone done) {
  const bool here = target.owner == config_.region;
  region_->request(
      subject, std::move(bytes), std::move(headers),
      [this, here, owner = target.owner, gen = target.gen, tenant, channel,
       done = std::move(done)](const NatsInbound* r) mutable {
        if (r == nullptr) {
          metrics_.dropped("region_store_timeout");
          return done(Status(Code::kUnavailable, "region_store_timeout",
                             "the region did not confirm the store in time; retry with the "
                             "same idempotency_key"));
        }
        if (!r->status.empty()) {
          // No one stores this subject: no quorum, or the stream is gone (then it is
          // created again, with a new epoch); for another region's channel, no bridge.
          if (here) region_->recheckHistory();
          metrics_.dropped("region_store_unavailable");
          return done(Status(Code::kUnavailable, "region_store_unavailable",
                             here ? "the region's history is unavailable"
                                  : "no bridge to the region that owns this channel"));
        }
        auto ack = parsePubAck(region_->parser(), r->data);
        if (!ack.isOk()) {
          // JetStream's (or the bridge's) own words go to the log; the client gets a
          // plain sentence.
          metrics_.dropped(ack.status().reason());
          logWarn("region_store_refused", {{"owner", owner}, {"error", ack.status().message()}});
          const bool full = std::string_view(ack.status().reason()) == "jetstream_store_full";
          return done(Status(Code::kUnavailable, ack.status().reason(),
                             full ? "the history store is full, try again later"
                                  : "the channel's history refused the message, try again"));
        }
        metrics_.history_appends.inc();
        PublishOutcome outcome;
        outcome.position = StreamPosition{channelEpochOf(owner, gen), ack->seq};
        if (!region_->hasGenerations()) return done(std::move(outcome));
        regionConfirmStore(owner, gen, tenant, channel, std::move(outcome), std::move(done));
      });
}

void EdgeService::regionSendDirect(const TenantConfig& tenant, const std::string& user,
                                   std::string encoded, int64_t ts, bool delivered_here,
                                   SendDone done) {
  PeerMessage message{PeerMessage::Kind::kUser, tenant.name, user, "", 0, ts, std::move(encoded)};
  const std::string subject = userSubject(config_.region, tenant.name, user);
  std::string bytes = encodePeerMessage(message);
  // With other regions, the user's home region knows where else the user is online; its
  // bridges send the message there and answer how many regions got it.
  const std::string home = homeOf(tenant.name, user);
  const std::string elsewhere =
      config_.topology ? forwardedUserSubject(config_.region, home, tenant.name, user) : "";
  if (delivered_here) {
    // Online here already; the user's other workers and regions get it without anyone
    // waiting.
    region_->publish(subject, bytes);
    if (!elsewhere.empty()) region_->publish(elsewhere, bytes, {traceParent()});
    return done(std::string("online"));
  }
  // Only workers holding a connection of the user listen on its subject: any answer means
  // online; "no responders" means offline in the whole region.
  const bool keep = region_->hasInbox() && tenant.inbox_ttl_ms > 0;
  region_->request(
      subject, bytes, {},
      [this, keep, bytes, home, elsewhere, tenant = tenant.name, user,
       done = std::move(done)](const NatsInbound* r) mutable {
        if (r == nullptr) {
          return done(
              Status(Code::kUnavailable, "region_unavailable", "no answer from the region"));
        }
        const bool here = r->status != "503";
        if (here && !elsewhere.empty()) region_->publish(elsewhere, bytes, {traceParent()});
        if (here) return done(std::string("online"));
        if (elsewhere.empty()) {
          return regionOffline(keep, home, tenant, user, std::move(bytes), std::move(done));
        }
        region_->request(elsewhere, bytes, {traceParent()},
                         [this, keep, bytes, home, tenant, user,
                          done = std::move(done)](const NatsInbound* routed) mutable {
                           // No bridge or no answer: as if offline elsewhere (the inbox
                           // keeps it; delivering late beats losing it).
                           uint64_t regions = 0;
                           if (routed != nullptr && routed->status.empty()) {
                             auto doc = region_->parser().parse(routed->data);
                             if (doc && (*doc)["delivered"].get(regions) != simdjson::SUCCESS) {
                               regions = 0;
                             }
                           }
                           if (regions > 0) return done(std::string("online"));
                           regionOffline(keep, home, tenant, user, std::move(bytes),
                                         std::move(done));
                         });
      });
}

void EdgeService::regionOffline(bool keep, const std::string& home, const std::string& tenant,
                                const std::string& user, std::string bytes, SendDone done) {
  if (!keep) {
    metrics_.dropped("user_offline");
    return done(std::string("dropped"));
  }
  // Offline everywhere: into the inbox in the user's home region, acknowledged once stored.
  const std::string subject =
      home == config_.region ? inboxSubject(home, tenant, user)
                             : forwardedPublishSubject(config_.region, home, "inbox", tenant, user);
  // A message id, so the bridges' retries of a store in another region store it once.
  region_->request(subject, std::move(bytes), {{"Nats-Msg-Id", randomHex(16)}},
                   [this, done](const NatsInbound* stored) {
                     if (stored == nullptr || !stored->status.empty()) {
                       metrics_.dropped("inbox_unavailable");
                       return done(Status(Code::kUnavailable, "inbox_unavailable",
                                          "the user is offline and the inbox is unreachable"));
                     }
                     auto ack = parsePubAck(region_->parser(), stored->data);
                     if (!ack.isOk()) {
                       metrics_.dropped(ack.status().reason());
                       logWarn("inbox_store_refused", {{"error", ack.status().message()}});
                       return done(Status(Code::kUnavailable, ack.status().reason(),
                                          "the user is offline and the inbox refused the message"));
                     }
                     metrics_.inbox_queued.inc();
                     done(std::string("queued"));
                   });
}

}  // namespace wsfleet
