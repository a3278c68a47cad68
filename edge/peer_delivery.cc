// EdgeService: deliveries that cross worker processes, and per-channel delivery order.
#include <map>
#include <set>
#include <utility>

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
  // Grouped by channel: one presence query per channel, whatever the number of its
  // members a crash took with it.
  std::map<std::pair<std::string, std::string>, std::set<std::string>> by_channel;
  for (SweptMembership& m : swept_memberships_) {
    by_channel[{std::move(m.tenant), std::move(m.channel)}].insert(std::move(m.user));
  }
  swept_memberships_.clear();
  for (const auto& [key, users] : by_channel) {
    const auto& [tenant_name, channel] = key;
    auto tenant = config_.tenants.find(tenant_name);
    if (tenant == config_.tenants.end()) continue;
    const NamespaceConfig* ns = findNamespace(tenant->second, channel);
    if (ns == nullptr || !ns->join_leave) continue;
    auto members = presence_->channelMembers(tenant_name, channel);
    if (!members.isOk()) continue;
    std::set<std::string> present;
    for (const PresenceMember& member : *members) present.insert(member.user);
    for (const std::string& user : users) {
      if (present.count(user) != 0) continue;  // still in through a live worker
      broadcastPresenceEvent(tenant_name, channel, user, false, nullptr, /*host_only=*/true);
    }
  }
}

}  // namespace wsfleet
