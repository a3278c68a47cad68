// Protocol v1 commands and local fan-out (EdgeService, continued).
#include <algorithm>

#include "common/channel.h"
#include "common/clock.h"
#include "common/log.h"
#include "edge/edge_service.h"

namespace wsfleet {

namespace {

// Idempotency keys are scoped by publisher: one publisher's key can never swallow another's
// message (the backend API publishes as ""). The length prefix keeps ("ab","c") and
// ("a","bc") apart.
std::string idempotencyScope(std::string_view from, const std::string& key) {
  if (key.empty()) return {};
  return std::to_string(from.size()) + ":" + std::string(from) + key;
}

}  // namespace

bool EdgeService::replayFits(const Connection& conn,
                             const std::vector<StoredMessage>& missed) const {
  size_t bytes = 0;
  for (const auto& m : missed) bytes += m.frame.size();
  // Half the caps: room is left for live traffic arriving while the replay drains.
  return conn.out.size() + missed.size() + 1 <= config_.outbound_max_messages / 2 &&
         conn.out.bytes() + bytes <= config_.outbound_max_bytes / 2;
}

HistoryLimits EdgeService::historyLimits(const NamespaceConfig& ns) const {
  HistoryLimits limits;
  limits.max_messages = ns.history_size;
  limits.max_age_ms = ns.history_ttl_ms;
  limits.dedup_window_ms = static_cast<int64_t>(config_.resume_window_ms);
  return limits;
}

Result<const NamespaceConfig*> EdgeService::channelNamespace(const TenantConfig& tenant,
                                                             const std::string& channel) {
  WSF_RETURN_IF_ERROR(validateChannelName(channel));
  const NamespaceConfig* ns = findNamespace(tenant, channel);
  if (ns == nullptr) {
    return Status(
        Code::kNotFound, "unknown_namespace",
        "namespace '" + std::string(wsfleet::channelNamespace(channel)) + "' is not configured");
  }
  return ns;
}

void EdgeService::reply(Connection& conn, std::string payload) {
  enqueue(conn, makeFrame(payload));
}

void EdgeService::replyError(Connection& conn, std::optional<uint64_t> id, const Status& status) {
  metrics_.commandError(codeName(status.code()));
  reply(conn, encodeErrorReply(id, status.code(), clientMessage(status)));
}

void EdgeService::onText(Connection& conn, std::string_view text) {
  if (conn.close_code != 0) return;
  ClientCommand cmd;
  Status s = decodeClientCommand(parser_, text, &cmd);
  // Malformed messages cost a token too: a flood of garbage is still a flood.
  if (!admitCommand(conn, cmd.id)) return;
  if (!s.isOk()) {
    replyError(conn, cmd.id, s);
    return;
  }
  metrics_.commands.inc();
  handleCommand(conn, cmd);
}

void EdgeService::handleCommand(Connection& conn, ClientCommand& cmd) {
  switch (cmd.type) {
    case CommandType::kSubscribe:
      return cmdSubscribe(conn, cmd);
    case CommandType::kUnsubscribe:
      return cmdUnsubscribe(conn, cmd);
    case CommandType::kPublish:
      return cmdPublish(conn, cmd);
    case CommandType::kSend:
      return cmdSend(conn, cmd);
    case CommandType::kPresence:
      return cmdPresence(conn, cmd);
    case CommandType::kRefresh:
      return cmdRefresh(conn, cmd);
    case CommandType::kPing:
      return reply(conn, encodePong(cmd.id));
  }
}

void EdgeService::cmdSubscribe(Connection& conn, const ClientCommand& cmd) {
  auto ns = channelNamespace(*conn.tenant_config, cmd.channel);
  if (!ns.isOk()) return replyError(conn, cmd.id, ns.status());
  if (!conn.subs.allows(cmd.channel)) {
    return replyError(
        conn, cmd.id,
        Status(Code::kForbidden, "not_permitted", "not allowed to subscribe to " + cmd.channel));
  }
  if (conn.channels.count(cmd.channel) == 0 &&
      conn.channels.size() + conn.subscribing.size() >= config_.max_channels_per_connection) {
    return replyError(
        conn, cmd.id,
        Status(Code::kRateLimited, "too_many_channels", "channel limit per connection reached"));
  }

  if (region_ && (*ns)->ordering == Ordering::kOwner) {
    if (conn.subscribing.count(cmd.channel) != 0) {
      return replyError(conn, cmd.id,
                        Status(Code::kBadRequest, "subscribe_in_progress",
                               "a subscribe to " + cmd.channel + " is already in progress"));
    }
    if (conn.channels.count(cmd.channel) != 0) {
      // Already subscribed: answer with where the channel is, as standalone does.
      auto it = region_channels_.find(scopedKey(conn.tenant, cmd.channel));
      const uint64_t at = it != region_channels_.end() ? it->second->cursor : 0;
      const std::string& epoch =
          region_->epochOf(it != region_channels_.end() ? it->second->owner : config_.region);
      return reply(conn, encodeSubscribeReply(cmd.id, StreamPosition{epoch, at}, false));
    }
    return regionSubscribe(conn, cmd);
  }

  // Replay and the subscription happen in the same loop turn, so no message published
  // in between can be missed or delivered twice.
  StreamPosition top;
  bool recovered = false;
  std::vector<StoredMessage> missed;
  if ((*ns)->ordering == Ordering::kOwner) {
    if (cmd.since) {
      auto replay =
          history_->replay(conn.tenant, cmd.channel, *cmd.since, nowWallMs(), historyLimits(**ns));
      if (!replay.isOk()) return replyError(conn, cmd.id, replay.status());
      top = replay->top;
      recovered = replay->recovered;
      missed = std::move(replay->messages);
      if (!replayFits(conn, missed)) {
        // Queueing it would trip the slow-consumer cap on the client's own resume and
        // loop it through 4009 forever: say explicitly that it cannot be recovered.
        metrics_.dropped("replay_too_large", missed.size());
        recovered = false;
        missed.clear();
      }
      (recovered ? metrics_.resumes_recovered : metrics_.resumes_not_recovered).inc();
    } else {
      auto pos = history_->position(conn.tenant, cmd.channel);
      if (!pos.isOk()) return replyError(conn, cmd.id, pos.status());
      top = std::move(pos).value();
    }
  }
  if ((*ns)->ordering == Ordering::kOwner) {
    noteChannelPosition(*conn.tenant_config, **ns, cmd.channel, top);
  }
  auto added = hub_.subscribe(&conn, cmd.channel);
  if (added.added && (*ns)->presence) {
    presenceJoin(conn, cmd.channel);
  }
  if (added.added && hub_.subscribers(conn.tenant, cmd.channel).size() == 1) {
    regionChannelJoined(conn.tenant, cmd.channel);
  }
  metrics_.subscriptions_active.set(static_cast<int64_t>(hub_.subscriptionCount()));
  metrics_.channels_active.set(static_cast<int64_t>(hub_.channelCount()));

  reply(conn, encodeSubscribeReply(cmd.id, top, recovered));
  for (auto& message : missed) {
    if (!enqueue(conn, makeFrame(message.frame))) break;
    metrics_.messages_delivered.inc();
  }
  if (added.added && (*ns)->join_leave &&
      userCountInChannelIs(conn.tenant, cmd.channel, conn.user, 1, added.first_of_user, **ns)) {
    broadcastPresenceEvent(conn.tenant, cmd.channel, conn.user, true, &conn);
  }
}

void EdgeService::cmdUnsubscribe(Connection& conn, const ClientCommand& cmd) {
  auto ns = channelNamespace(*conn.tenant_config, cmd.channel);
  if (!ns.isOk()) return replyError(conn, cmd.id, ns.status());
  // A subscribe still waiting for the region is called off: it gets its answer (an error)
  // when its turn comes, and never subscribes.
  conn.subscribing.erase(cmd.channel);
  reply(conn, encodeOkReply(cmd.id));
  leaveChannel(conn, cmd.channel);
}

void EdgeService::broadcastPresenceEvent(const std::string& tenant, const std::string& channel,
                                         const std::string& user, bool join, const Connection* skip,
                                         bool host_only) {
  // Low priority by nature: a lagging subscriber gets the latest join/leave of each user
  // (one key for both, so a leave replaces a queued join) or none.
  const std::string payload = join ? encodeJoin(channel, user) : encodeLeave(channel, user);
  FramePtr frame = makeLowFrame(payload, channel + '\n' + user);
  // enqueue never changes hub membership (a close it requests happens later, in the
  // connection's own callback), so the subscriber list can be walked in place.
  for (Connection* target : hub_.subscribers(tenant, channel)) {
    if (target != skip) enqueue(*target, frame);
  }
  PeerMessage event{
      PeerMessage::Kind::kChannel,        tenant, channel, "", 0, nowWallMs(), payload,
      std::string(frame->coalescingKey())};
  if (host_only) {
    if (transport_.hasPeers()) transport_.toPeers(event);
  } else if (othersExist()) {
    toOthers(event);
  }
}

void EdgeService::cmdPublish(Connection& conn, const ClientCommand& cmd) {
  auto ns = channelNamespace(*conn.tenant_config, cmd.channel);
  if (!ns.isOk()) return replyError(conn, cmd.id, ns.status());
  if (!(*ns)->allow_publish || !conn.pubs.allows(cmd.channel)) {
    return replyError(
        conn, cmd.id,
        Status(Code::kForbidden, "not_permitted", "not allowed to publish to " + cmd.channel));
  }
  if (!admitPublish(conn, cmd)) return;
  publishAsync(*conn.tenant_config, cmd.channel, conn.user, cmd.data_json, cmd.idempotency_key,
               [this, ref = refOf(conn), id = cmd.id](Result<PublishOutcome> outcome) {
                 Connection* c = live(ref);
                 if (c == nullptr) return;  // gone before the region answered
                 if (!outcome.isOk()) return replyError(*c, id, outcome.status());
                 reply(*c, encodePublishReply(id, outcome->position.offset, outcome->position.epoch));
               });
}

void EdgeService::publishAsync(const TenantConfig& tenant, const std::string& channel,
                               std::string_view from, std::string_view data_json,
                               const std::string& idempotency_key, PublishDone done) {
  if (region_) {
    auto ns = channelNamespace(tenant, channel);
    if (!ns.isOk()) return done(ns.takeStatus());
    if ((*ns)->ordering == Ordering::kOwner) {
      const uint64_t max_bytes =
          (*ns)->max_message_bytes != 0 ? (*ns)->max_message_bytes : config_.max_message_bytes;
      if (data_json.size() > max_bytes) {
        return done(Status(Code::kTooLarge, "message_too_large",
                           "data is " + std::to_string(data_json.size()) +
                               " bytes, the namespace allows " + std::to_string(max_bytes)));
      }
      return regionStore(tenant, channel, from, data_json, idempotencyScope(from, idempotency_key),
                         std::move(done));
    }
  }
  done(publish(tenant, channel, from, data_json, idempotency_key));
}

Result<EdgeService::PublishOutcome> EdgeService::publish(const TenantConfig& tenant,
                                                         const std::string& channel,
                                                         std::string_view from,
                                                         std::string_view data_json,
                                                         const std::string& idempotency_key) {
  WSF_ASSIGN_OR_RETURN(const NamespaceConfig* ns, channelNamespace(tenant, channel));
  const uint64_t max_bytes =
      ns->max_message_bytes != 0 ? ns->max_message_bytes : config_.max_message_bytes;
  if (data_json.size() > max_bytes) {
    return Status(Code::kTooLarge, "message_too_large",
                  "data is " + std::to_string(data_json.size()) + " bytes, the namespace allows " +
                      std::to_string(max_bytes));
  }
  const int64_t ts = nowWallMs();
  PublishOutcome outcome;
  // Config allows priority = "low" only without history: a message a lagging subscriber
  // never gets is then never one a resume would claim to have delivered. The channel is
  // the coalescing key: a lagging subscriber gets the channel's latest message.
  auto encoded = [&](std::string_view payload) {
    return ns->priority == Priority::kLow ? makeLowFrame(payload, channel) : makeFrame(payload);
  };
  FramePtr frame;
  if (ns->ordering == Ordering::kOwner) {
    // Stored (and committed) before anyone sees it or the publisher is acknowledged.
    // Keys are scoped by publisher: one publisher's key can never swallow another's
    // message (the backend API publishes as "").
    const std::string scoped_key = idempotencyScope(from, idempotency_key);
    auto appended =
        history_->append(tenant.name, channel, scoped_key, ts, historyLimits(*ns),
                         [&](const std::string& epoch, uint64_t offset) {
                           return encodeMessage(channel, epoch, offset, from, data_json, ts);
                         });
    if (!appended.isOk()) {
      metrics_.dropped(appended.status().reason());
      return appended.takeStatus();
    }
    outcome.position = appended->position;
    if (appended->duplicate) return outcome;  // already delivered the first time
    metrics_.history_appends.inc();
    metrics_.messages_received.inc();
    frame = makeFrame(appended->frame);
    deliverSequenced(tenant, channel, outcome.position.epoch, outcome.position.offset, frame, ts);
    if (transport_.hasPeers()) {
      transport_.toPeers(PeerMessage{PeerMessage::Kind::kChannel, tenant.name, channel,
                                     outcome.position.epoch, outcome.position.offset, ts,
                                     std::move(appended->frame)});
    }
    return outcome;
  }
  std::string payload = encodeMessage(channel, "", 0, from, data_json, ts);
  frame = encoded(payload);
  metrics_.messages_received.inc();
  fanOut(tenant.name, channel, frame, ts);
  if (othersExist()) {
    toOthers(PeerMessage{PeerMessage::Kind::kChannel, tenant.name, channel, "", 0, ts,
                         std::move(payload), std::string(frame->coalescingKey())});
  }
  return outcome;
}

void EdgeService::fanOut(const std::string& tenant, const std::string& channel,
                         const FramePtr& frame, int64_t origin_ts_ms) {
  // Walked in place: enqueue never changes hub membership (see broadcastPresenceEvent).
  uint64_t delivered = 0;
  for (Connection* target : hub_.subscribers(tenant, channel)) {
    delivered += enqueue(*target, frame) ? 1 : 0;
  }
  metrics_.messages_delivered.inc(delivered);
  if (delivered > 0) {
    const double latency_s =
        static_cast<double>(std::max<int64_t>(0, nowWallMs() - origin_ts_ms)) / 1000.0;
    metrics_.e2e_latency.observe(latency_s);
  }
}

void EdgeService::cmdSend(Connection& conn, const ClientCommand& cmd) {
  if (!conn.tenant_config->client_send) {
    return replyError(conn, cmd.id,
                      Status(Code::kForbidden, "not_permitted", "direct messages are disabled"));
  }
  Status valid = validateUserId(cmd.user);
  if (!valid.isOk()) return replyError(conn, cmd.id, valid);
  sendDirectAsync(*conn.tenant_config, cmd.user, conn.user, cmd.data_json,
                  [this, ref = refOf(conn), id = cmd.id](Result<std::string> delivered) {
                    Connection* c = live(ref);
                    if (c == nullptr) return;
                    if (!delivered.isOk()) return replyError(*c, id, delivered.status());
                    reply(*c, encodeSendReply(id, *delivered));
                  });
}

void EdgeService::sendDirectAsync(const TenantConfig& tenant, const std::string& user,
                                  std::string_view from, std::string_view data_json,
                                  SendDone done) {
  if (!region_) return done(sendDirect(tenant, user, from, data_json));
  if (data_json.size() > config_.max_message_bytes) {
    return done(Status(Code::kTooLarge, "message_too_large", "data is over max_message_bytes"));
  }
  const int64_t ts = nowWallMs();
  std::string encoded = encodeDirect(from, data_json, ts);
  FramePtr frame = makeFrame(encoded);
  uint64_t delivered = 0;
  const std::vector<Connection*>& targets = hub_.userConnections(tenant.name, user);
  for (Connection* target : targets) delivered += enqueue(*target, frame) ? 1 : 0;
  metrics_.messages_received.inc();
  metrics_.messages_delivered.inc(delivered);
  regionSendDirect(tenant, user, std::move(encoded), ts, !targets.empty(), std::move(done));
}

Result<std::string> EdgeService::sendDirect(const TenantConfig& tenant, const std::string& user,
                                            std::string_view from, std::string_view data_json) {
  if (data_json.size() > config_.max_message_bytes) {
    return Status(Code::kTooLarge, "message_too_large", "data is over max_message_bytes");
  }
  const int64_t ts = nowWallMs();
  const std::vector<Connection*>& targets = hub_.userConnections(tenant.name, user);
  bool online_elsewhere = false;
  if (targets.empty() && transport_.hasPeers()) {
    // The host's presence (all workers) says whether another worker holds the user: a
    // read-only count, no flush (this is on every direct message).
    auto elsewhere = presence_->connectionsOfUser(tenant.name, user);
    online_elsewhere = elsewhere.isOk() && *elsewhere > 0;
  }
  if (targets.empty() && !online_elsewhere) {
    // Standalone mode has no inbox: an offline user's direct message is dropped, and the
    // sender is told so.
    metrics_.dropped("user_offline");
    return std::string("dropped");
  }
  std::string encoded = encodeDirect(from, data_json, ts);
  FramePtr frame = makeFrame(encoded);
  uint64_t delivered = 0;
  for (Connection* target : targets) delivered += enqueue(*target, frame) ? 1 : 0;
  metrics_.messages_received.inc();
  metrics_.messages_delivered.inc(delivered);
  if (othersExist()) {
    toOthers(
        PeerMessage{PeerMessage::Kind::kUser, tenant.name, user, "", 0, ts, std::move(encoded)});
  }
  return std::string(delivered > 0 || online_elsewhere ? "online" : "dropped");
}

void EdgeService::cmdPresence(Connection& conn, const ClientCommand& cmd) {
  auto ns = channelNamespace(*conn.tenant_config, cmd.channel);
  if (!ns.isOk()) return replyError(conn, cmd.id, ns.status());
  if (!(*ns)->presence) {
    return replyError(conn, cmd.id,
                      Status(Code::kBadRequest, "presence_disabled",
                             "presence is not enabled in namespace " + (*ns)->name));
  }
  if (!conn.subs.allows(cmd.channel)) {
    return replyError(
        conn, cmd.id,
        Status(Code::kForbidden, "not_permitted", "not allowed to see " + cmd.channel));
  }
  auto members = presence_->channelMembers(conn.tenant, cmd.channel);
  if (!members.isOk()) return replyError(conn, cmd.id, members.status());
  reply(conn, encodePresenceReply(cmd.id, *members));
}

void EdgeService::cmdRefresh(Connection& conn, const ClientCommand& cmd) {
  auto claims = verifier_.verify(cmd.token, nowWallMs() / 1000);
  if (!claims.isOk()) return replyError(conn, cmd.id, claims.status());
  if (claims->tnt != conn.tenant || claims->sub != conn.user) {
    return replyError(conn, cmd.id,
                      Status(Code::kForbidden, "identity_mismatch",
                             "the new token is for another user or tenant"));
  }
  applyClaims(conn, *claims);
  timers_.cancel(&conn.token_timer);
  scheduleTokenTimer(conn);
  reply(conn, encodeRefreshReply(cmd.id, conn.token_exp_ms));
  // The new token's permissions replace the old ones, also for what is already
  // subscribed: channels it no longer grants are left (with leave events and presence).
  std::vector<std::string> revoked;
  for (const auto& [channel, index] : conn.channels) {
    if (!conn.subs.allows(channel)) revoked.push_back(channel);
  }
  for (const auto& channel : revoked) leaveChannel(conn, channel);
}

}  // namespace wsfleet
