// EdgeService: deliveries that cross worker processes, and per-channel delivery order.
#include <set>
#include <tuple>

#include "common/clock.h"
#include "edge/edge_service.h"

namespace wsfleet {

void EdgeService::onPeerMessage(const PeerMessage& message) {
  auto tenant = config_.tenants.find(message.tenant);
  if (tenant == config_.tenants.end()) {
    metrics_.dropped("peer_unknown_tenant");
    return;
  }
  FramePtr frame = message.coalescing_key.empty()
                       ? makeFrame(message.frame)
                       : makeLowFrame(message.frame, message.coalescing_key);
  if (message.kind == PeerMessage::Kind::kUser) {
    uint64_t delivered = 0;
    for (Connection* target : hub_.userConnections(message.tenant, message.target)) {
      delivered += enqueue(*target, frame) ? 1 : 0;
    }
    metrics_.messages_delivered.inc(delivered);
    return;
  }
  if (message.offset == 0) {
    fanOut(message.tenant, message.target, frame, message.origin_ts_ms);
    return;
  }
  deliverSequenced(tenant->second, message.target, message.epoch, message.offset, frame,
                   message.origin_ts_ms);
}

void EdgeService::deliverSequenced(const TenantConfig& tenant, const std::string& channel,
                                   const std::string& epoch, uint64_t offset,
                                   const FramePtr& frame, int64_t origin_ts_ms) {
  if (hub_.subscribers(tenant.name, channel).empty()) return;
  StreamPosition& last = delivered_[scopedKey(tenant.name, channel)];
  if (last.epoch == epoch && offset <= last.offset) return;  // delivered already
  if (last.epoch == epoch && offset > last.offset + 1) {
    // Another worker's message overtook this one's predecessors, or one was dropped on
    // the way: they are committed in the shared history before anything later is.
    const NamespaceConfig* ns = findNamespace(tenant, channel);
    auto missed = ns != nullptr ? history_->replay(tenant.name, channel, last, nowWallMs(),
                                                   historyLimits(*ns))
                                : Result<ReplayResult>(Status(Code::kNotFound, "no_namespace",
                                                              "namespace removed"));
    if (missed.isOk() && missed->recovered) {
      for (const StoredMessage& stored : missed->messages) {
        if (stored.offset >= offset) break;
        fanOut(tenant.name, channel, makeFrame(stored.frame), stored.ts_ms);
      }
    } else {
      // Trimmed before it could be delivered: the subscribers see the gap in offsets
      // and may resubscribe with `since` (they get recovered:false).
      metrics_.dropped("sequence_gap", offset - last.offset - 1);
    }
  }
  fanOut(tenant.name, channel, frame, origin_ts_ms);
  last.epoch = epoch;
  last.offset = offset;
}

void EdgeService::noteChannelPosition(const TenantConfig& tenant, const NamespaceConfig& ns,
                                      const std::string& channel, const StreamPosition& top) {
  StreamPosition& last = delivered_[scopedKey(tenant.name, channel)];
  if (last.epoch.empty() || last.epoch != top.epoch) {
    last = top;
    return;
  }
  if (top.offset <= last.offset) return;
  // Messages between the older local subscribers' position and `top` are committed but
  // still on their way from other workers. The new subscriber's reply (and replay) ends
  // at `top`, so they must not reach it when they arrive: the older subscribers get them
  // now, from history, and the position moves to `top`.
  auto missed = history_->replay(tenant.name, channel, last, nowWallMs(), historyLimits(ns));
  if (!missed.isOk() || !missed->recovered) {
    // Trimmed meanwhile: they still come over the bus; the new subscriber may then see
    // offsets at or below its reply's (offsets let it tell).
    return;
  }
  for (const StoredMessage& stored : missed->messages) {
    if (stored.offset > top.offset) break;
    fanOut(tenant.name, channel, makeFrame(stored.frame), stored.ts_ms);
  }
  last = top;
}

void EdgeService::forgetChannelPosition(const std::string& tenant, const std::string& channel) {
  if (hub_.subscribers(tenant, channel).empty()) delivered_.erase(scopedKey(tenant, channel));
}

void EdgeService::emitSweptLeaves() {
  std::vector<SweptMembership> swept = std::move(swept_memberships_);
  swept_memberships_.clear();
  std::set<std::tuple<std::string, std::string, std::string>> done;
  for (const SweptMembership& m : swept) {
    if (!done.emplace(m.tenant, m.channel, m.user).second) continue;
    auto tenant = config_.tenants.find(m.tenant);
    if (tenant == config_.tenants.end()) continue;
    const NamespaceConfig* ns = findNamespace(tenant->second, m.channel);
    if (ns == nullptr || !ns->join_leave) continue;
    // Still in the channel through a connection of a live worker: no leave.
    auto members = presence_->channelMembers(m.tenant, m.channel);
    if (!members.isOk()) continue;
    bool still_there = false;
    for (const PresenceMember& member : *members) still_there |= member.user == m.user;
    if (still_there) continue;
    const std::string payload = encodeLeave(m.channel, m.user);
    FramePtr frame = makeLowFrame(payload, m.channel + '\n' + m.user);
    for (Connection* target : hub_.subscribers(m.tenant, m.channel)) enqueue(*target, frame);
    if (transport_.hasPeers()) {
      transport_.toPeers(PeerMessage{PeerMessage::Kind::kChannel, m.tenant, m.channel, "", 0,
                                     nowWallMs(), payload, std::string(frame->coalescingKey())});
    }
  }
}

}  // namespace wsfleet
