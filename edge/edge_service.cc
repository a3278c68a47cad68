#include "edge/edge_service.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/channel.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/random.h"
#include "edge/drain_schedule.h"

namespace wsfleet {

std::string_view bearerToken(std::string_view header) {
  constexpr std::string_view kBearer = "Bearer ";
  if (header.size() <= kBearer.size()) return {};
  for (size_t i = 0; i < kBearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kBearer[i]))) {
      return {};
    }
  }
  std::string_view token = header.substr(kBearer.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  return token;
}

namespace {

// True when `match` accepts an item of a comma-separated header list (items trimmed).
template <class F>
bool anyListItem(std::string_view list, F&& match) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view item = list.substr(0, comma);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (match(item)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

// Subprotocol names compare exactly (RFC 6455 4.1).
bool offersProtocol(std::string_view list, std::string_view wanted) {
  return anyListItem(list, [&](std::string_view item) { return item == wanted; });
}

// Connection header tokens compare case-insensitively; `token` is lower case.
bool listsToken(std::string_view list, std::string_view token) {
  return anyListItem(list, [&](std::string_view item) {
    return item.size() == token.size() &&
           std::equal(item.begin(), item.end(), token.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           });
  });
}

// RFC 6455 4.2.1: the key is the base64 encoding of 16 bytes, i.e. 22 base64 characters
// and "==".
bool validWebSocketKey(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
  }
  return true;
}

constexpr const char* kProtocolName = "wsfleet.v1";
// A capped client can only get in once one of its connections closes; retrying sooner
// only costs both sides a handshake.
constexpr int kConnectionCapRetryAfterS = 5;
// How long a requested close may wait for the socket to become writable.
constexpr uint64_t kCloseGraceMs = 5000;

}  // namespace

std::string clientMessage(const Status& status) {
  if (status.code() == Code::kInternal || status.code() == Code::kConfig) {
    logWarn("internal_error", {{"error", status.toString()}});
    return "internal error";
  }
  if (std::string_view(status.reason()).rfind("lmdb_", 0) == 0) {
    logWarn("storage_error", {{"error", status.toString()}});
    return "storage is unavailable; try again later";
  }
  return status.message();
}

HttpResponse errorResponse(int status, std::string_view code, std::string_view reason,
                           std::string_view message) {
  HttpResponse r;
  r.status = status;
  JsonWriter w(r.body);
  w.beginObject().key("error").beginObject().field("code", code);
  if (!reason.empty()) w.field("reason", reason);
  w.field("message", message).endObject().endObject();
  r.body.push_back('\n');
  return r;
}

int httpStatusFor(Code code) {
  switch (code) {
    case Code::kOk:
      return 200;
    case Code::kBadRequest:
      return 400;
    case Code::kUnauthorized:
      return 401;
    case Code::kForbidden:
      return 403;
    case Code::kNotFound:
      return 404;
    case Code::kTooLarge:
      return 413;
    case Code::kRateLimited:
      return 429;
    case Code::kUnavailable:
      return 503;
    case Code::kInternal:
    case Code::kConfig:
      return 500;
  }
  return 500;
}

// High-water marks of 0 are half the matching cap.
OutboundLimits outboundLimits(const EdgeConfig& config) {
  auto resolve = [](uint64_t mark, uint64_t cap) {
    return static_cast<size_t>(mark != 0 ? mark : cap / 2);
  };
  OutboundLimits limits;
  limits.max_bytes = static_cast<size_t>(config.outbound_max_bytes);
  limits.max_messages = static_cast<size_t>(config.outbound_max_messages);
  limits.high_water_bytes = resolve(config.outbound_high_water_bytes, config.outbound_max_bytes);
  limits.high_water_messages =
      resolve(config.outbound_high_water_messages, config.outbound_max_messages);
  return limits;
}

EdgeService::EdgeService(const EdgeConfig& config, MetricsRegistry& registry, Transport& transport)
    : config_(config),
      metrics_(registry),
      transport_(transport),
      verifier_(config.token_policy),
      parser_(JsonLimits{config.max_message_bytes + 64, 32}),
      timers_(20, 4096, static_cast<uint64_t>(nowMonoMs())),
      // Both read the limits from config_, so a reload that changes them applies them.
      inbound_(config_.limits, registry),
      ip_guard_(config_.limits, registry),
      outbound_limits_(outboundLimits(config)),
      connect_rate_(10000, 15 * 60000, nowMonoMs()) {}

EdgeService::~EdgeService() {
  for (auto& [ptr, conn] : connections_) {
    timers_.cancel(&conn->ping_timer);
    timers_.cancel(&conn->token_timer);
    timers_.cancel(&conn->backpressure_timer);
    timers_.cancel(&conn->drain_timer);
  }
}

Result<std::unique_ptr<EdgeService>> EdgeService::create(const EdgeConfig& config,
                                                         MetricsRegistry& registry,
                                                         Transport& transport) {
  std::unique_ptr<EdgeService> service(new EdgeService(config, registry, transport));
  WSF_RETURN_IF_ERROR(service->init());
  return service;
}

Status EdgeService::init() {
  for (const auto& [name, tenant] : config_.tenants) {
    WSF_RETURN_IF_ERROR(verifier_.addTenant(name, tenant.tokens));
  }
  LmdbOptions options;
  options.map_size_bytes = config_.map_size_mb << 20;
  options.no_sync = !config_.sync_every_commit;
  WSF_ASSIGN_OR_RETURN(env_, LmdbEnv::open(config_.storage_dir, options));
  if (env_.staleReadersCleared() > 0) {
    logWarn("lmdb_stale_readers_cleared", {{"count", env_.staleReadersCleared()}});
  }
  const int64_t now = nowMonoMs();
  instance_id_ = config_.node_name + "/" + std::to_string(getpid()) + "/" + randomHex(4);
  WSF_ASSIGN_OR_RETURN(presence_, PresenceStore::open(env_, instance_id_, now));
  WSF_ASSIGN_OR_RETURN(history_, HistoryStore::open(env_));
  // Records left by workers that died (their pid is gone or they stopped heartbeating)
  // are removed now, not one TTL later.
  auto swept = presence_->sweep(now, static_cast<int64_t>(config_.presence_ttl_ms));
  if (swept.isOk() && swept->connections_removed > 0) {
    metrics_.presence_swept.inc(swept->connections_removed);
    logInfo("presence_swept",
            {{"instances", swept->instances_removed}, {"connections", swept->connections_removed}});
    swept_memberships_ = std::move(swept->memberships);
  }
  last_flush_ms_ = last_heartbeat_ms_ = last_sweep_ms_ = last_trim_ms_ = now;
  if (!config_.sync_every_commit) {
    syncer_ =
        std::make_unique<LmdbSyncer>(env_, std::chrono::milliseconds(config_.sync_interval_ms));
  }
  derivePublicUrl();
  tick_ms_ = std::max<uint64_t>(5, std::min<uint64_t>(config_.presence_flush_ms, 100));

  auto& registry = metrics_.registry();
  LmdbEnv* env = &env_;
  registry.gaugeCallback("wsfleet_lmdb_map_size_bytes", "LMDB map size", {},
                         [env] { return static_cast<double>(env->mapSizeBytes()); });
  registry.gaugeCallback("wsfleet_lmdb_used_bytes", "LMDB pages in use, in bytes", {},
                         [env] { return static_cast<double>(env->usedBytes()); });
  return Status::ok();
}

FramePtr EdgeService::makeFrame(std::string_view payload) const {
  return std::make_shared<const OutFrame>(payload, transport_.frameHeadroom());
}

FramePtr EdgeService::makeLowFrame(std::string_view payload, std::string key) const {
  return std::make_shared<const OutFrame>(payload, transport_.frameHeadroom(), std::move(key));
}

bool EdgeService::enqueue(Connection& conn, FramePtr frame) {
  if (conn.close_code != 0) {
    metrics_.dropped_closing.inc();
    return false;
  }
  const bool was_idle = conn.out.empty();
  const bool was_behind = conn.out.behind(outbound_limits_);
  const OutboundQueue::Outcome outcome = conn.out.offer(std::move(frame), outbound_limits_);
  if (outcome.low_evicted > 0) metrics_.dropped_low_priority.inc(outcome.low_evicted);
  switch (outcome.result) {
    case OutboundQueue::Result::kOverCap:
      // A reader that cannot keep up would otherwise grow memory without bound; it can
      // reconnect and resume from history.
      metrics_.dropped_slow_consumer.inc();
      metrics_.slow_consumer_cap.inc();
      requestClose(conn, 4009, "slow consumer");
      return false;
    case OutboundQueue::Result::kDroppedLow:
      metrics_.dropped_low_priority.inc();
      return false;
    case OutboundQueue::Result::kCoalesced:
      metrics_.dropped_low_coalesced.inc();
      return true;
    case OutboundQueue::Result::kQueued:
      break;
  }
  if (!was_behind && conn.out.behind(outbound_limits_)) {
    // Crossing the mark (again) starts the grace period afresh. Falling back under it
    // needs no hook in the write path: the timer finds the queue below the mark and
    // does nothing.
    metrics_.high_water_crossings.inc();
    timers_.schedule(&conn.backpressure_timer,
                     static_cast<uint64_t>(nowMonoMs()) + config_.slow_consumer_grace_ms);
  }
  if (was_idle) transport_.wantWrite(conn);
  return true;
}

void EdgeService::requestClose(Connection& conn, int code, std::string_view reason) {
  if (conn.close_code != 0) return;
  conn.close_code = code;
  conn.close_reason = std::string(reason);
  if (code == 4009) {
    // What a slow consumer has not read is released now, not when its socket drains; the
    // client resumes from history after it reconnects. It still gets the close frame if
    // it reads what the kernel holds within the close grace; after that, a reset.
    if (!conn.out.empty()) {
      metrics_.dropped_slow_consumer.inc(conn.out.size());
      conn.out.clear();
    }
    transport_.resetOnClose(conn);
  }
  // The close frame goes out on the next WRITEABLE. A peer that never lets the socket
  // become writable is dropped without it after kCloseGraceMs.
  conn.ping_timer.tag = static_cast<int>(TimerTag::kCloseDeadline);
  timers_.schedule(&conn.ping_timer, static_cast<uint64_t>(nowMonoMs()) + kCloseGraceMs);
  transport_.wantWrite(conn);
}

// ---------------------------------------------------------------- handshake

HandshakeDecision EdgeService::checkHandshake(const HandshakeRequest& request) {
  HandshakeDecision d;
  auto refuse = [&](int status, const char* reason, std::string message) {
    d.http_status = status;
    d.reason = reason;
    d.message = std::move(message);
    metrics_.handshakeRejected(reason);
    return d;
  };
  if (shutting_down_ || draining_) {
    d.retry_after_s = 5;
    return refuse(503, "draining", "this edge is shutting down; reconnect elsewhere");
  }
  // Per-address defences come before anything that costs work, the token check above all.
  const int64_t now_ms = nowMonoMs();
  const IpVerdict ip = ip_guard_.admit(request.peer, now_ms);
  if (ip.reason != nullptr) {
    d.retry_after_s = ip.retry_after_s;
    return refuse(429, ip.reason,
                  std::string_view(ip.reason) == "banned"
                      ? "too many failed authentications from this address; retry later"
                      : "too many handshakes from this address; retry later");
  }
  if (request.header_bytes > config_.max_header_bytes) {
    return refuse(431, "header_too_large", "request header block is over the limit");
  }
  if (!request.is_get) return refuse(400, "bad_method", "a WebSocket handshake is a GET");
  if (!listsToken(request.connection, "upgrade")) {
    return refuse(400, "bad_connection_header", "Connection: Upgrade is required");
  }
  if (request.version != "13") {
    d.upgrade_version_hint = true;
    return refuse(426, "bad_version", "Sec-WebSocket-Version 13 is required");
  }
  if (!validWebSocketKey(request.websocket_key)) {
    return refuse(400, "bad_key", "Sec-WebSocket-Key must be 16 bytes in base64");
  }
  if (request.path != config_.ws_path) {
    return refuse(404, "bad_path", "no WebSocket endpoint at this path");
  }
  if (request.has_origin && !config_.allowed_origins.empty()) {
    bool allowed = false;
    for (const auto& origin : config_.allowed_origins)
      allowed = allowed || origin == request.origin;
    if (!allowed) return refuse(403, "origin", "Origin is not allowed");
  }
  if (!offersProtocol(request.protocols, kProtocolName)) {
    return refuse(400, "subprotocol", "subprotocol wsfleet.v1 is required");
  }
  // Before the token: refusing an address that is at its cap costs one LMDB read.
  if (overIpCap(request.peer)) {
    d.retry_after_s = kConnectionCapRetryAfterS;
    metrics_.cap_refusals_ip.inc();
    return refuse(429, "too_many_connections",
                  "too many open connections from this address; close one or retry later");
  }
  std::string_view token = bearerToken(request.authorization);
  if (token.empty()) token = request.query_token;
  if (token.empty())
    return refuse(401, "token_missing", "no token (Authorization or access_token)");
  auto claims = verifier_.verify(token, nowWallMs() / 1000);
  if (!claims.isOk()) {
    ip_guard_.authFailed(request.peer, now_ms);
    return refuse(401, claims.status().reason(), claims.status().message());
  }
  if (config_.tenants.count(claims->tnt) == 0) {
    ip_guard_.authFailed(request.peer, now_ms);
    return refuse(403, "tenant", "tenant is not served here");
  }
  if (validateUserId(claims->sub).code() != Code::kOk) {
    ip_guard_.authFailed(request.peer, now_ms);
    return refuse(401, "token_bad_subject", "token subject is not a valid user id");
  }
  if (overUserCap(claims->tnt, claims->sub)) {
    d.retry_after_s = kConnectionCapRetryAfterS;
    metrics_.cap_refusals_user.inc();
    return refuse(429, "too_many_connections",
                  "too many open connections for this user; close one or retry later");
  }
  d.claims = std::move(claims).value();
  return d;
}

// ---------------------------------------------------------------- lifecycle

void EdgeService::applyClaims(Connection& conn, const TokenClaims& claims) {
  const TenantConfig& tenant = *conn.tenant_config;
  auto apply = [](Permissions& permissions,
                  const std::optional<std::vector<std::string>>& from_token,
                  const std::vector<ChannelPattern>& defaults) {
    if (!from_token) return permissions.useDefaults(defaults);
    std::vector<ChannelPattern> own;
    for (const auto& text : *from_token) {
      auto p = ChannelPattern::parse(text);
      // A malformed pattern grants nothing rather than failing the connection.
      if (p.isOk()) own.push_back(std::move(p).value());
    }
    permissions.useOwn(std::move(own));
  };
  apply(conn.subs, claims.subs, tenant.default_subs);
  apply(conn.pubs, claims.pubs, tenant.default_pubs);
  // Saturating: exp is the token's number, however it was signed.
  constexpr int64_t kMaxMs = std::numeric_limits<int64_t>::max() / 4;
  conn.token_exp_ms = claims.exp >= kMaxMs / 1000 ? kMaxMs : claims.exp * 1000;
  conn.refresh_notice_sent = false;
}

Connection* EdgeService::open(void* transport, TokenClaims claims, std::string peer) {
  connect_rate_.onConnect();
  auto owned = std::make_unique<Connection>();
  Connection* conn = owned.get();
  conn->transport = transport;
  // Set before the first enqueue (the welcome), which may already arm it.
  conn->backpressure_timer.owner = conn;
  conn->backpressure_timer.tag = static_cast<int>(TimerTag::kSlowConsumer);
  conn->session = config_.node_name + "-" + std::to_string(getpid()) + "-" +
                  std::to_string(++session_counter_) + "-" + randomHex(4);
  conn->tenant = claims.tnt;
  conn->user = claims.sub;
  conn->device = claims.dev;
  conn->peer = std::move(peer);
  conn->tenant_config = &config_.tenants.at(claims.tnt);
  applyClaims(*conn, claims);
  inbound_.attach(conn->limits, nowMonoMs());
  conn->serial = ++connection_serial_;
  connections_.emplace(conn, std::move(owned));
  hub_.addUserConnection(conn);
  regionUserJoined(*conn);
  conn->connected_at_ms = nowWallMs();
  presenceAdd(*conn);

  metrics_.connections_accepted.inc();
  metrics_.connections_active.set(static_cast<int64_t>(connections_.size()));

  WelcomeInfo welcome;
  welcome.session = conn->session;
  welcome.node = config_.node_name;
  welcome.region = config_.region;
  welcome.ping_interval_ms = config_.ping_interval_ms;
  welcome.resume_window_ms = config_.resume_window_ms;
  welcome.max_message_bytes = config_.max_message_bytes;
  welcome.regions.push_back({config_.region, public_url_});
  enqueue(*conn, makeFrame(encodeWelcome(welcome)));

  const uint64_t now = static_cast<uint64_t>(nowMonoMs());
  conn->ping_timer.owner = conn;
  conn->ping_timer.tag = static_cast<int>(TimerTag::kPing);
  timers_.schedule(&conn->ping_timer, now + config_.ping_interval_ms);
  conn->token_timer.owner = conn;
  conn->token_timer.tag = static_cast<int>(TimerTag::kToken);
  scheduleTokenTimer(*conn);
  conn->drain_timer.owner = conn;
  conn->drain_timer.tag = static_cast<int>(TimerTag::kDrainHint);
  if (draining_) {
    // Its handshake was accepted just before the drain began: it gets a hint too.
    const uint64_t elapsed = static_cast<uint64_t>(nowMonoMs() - drain_started_ms_);
    scheduleDrainHint(*conn, lateDrainHintOffsetMs(elapsed, drain_window_ms_, drainUnit()));
  }
  logDebug("conn_open", {{"session", conn->session},
                         {"tenant", conn->tenant},
                         {"user", conn->user},
                         {"peer", conn->peer}});
  return conn;
}

void EdgeService::closed(Connection* conn, int close_code) {
  auto it = connections_.find(conn);
  if (it == connections_.end()) return;
  timers_.cancel(&conn->ping_timer);
  timers_.cancel(&conn->token_timer);
  timers_.cancel(&conn->backpressure_timer);
  timers_.cancel(&conn->drain_timer);
  unsubscribeAll(*conn);
  hub_.removeUserConnection(conn);
  regionUserLeft(*conn);
  presenceRemove(*conn);
  if (!conn->out.empty()) metrics_.dropped("disconnected", conn->out.size());
  metrics_.disconnect(close_code);
  logDebug("conn_closed", {{"session", conn->session}, {"code", close_code}});
  connections_.erase(it);
  metrics_.connections_active.set(static_cast<int64_t>(connections_.size()));
  metrics_.subscriptions_active.set(static_cast<int64_t>(hub_.subscriptionCount()));
  metrics_.channels_active.set(static_cast<int64_t>(hub_.channelCount()));
}

void EdgeService::unsubscribeAll(Connection& conn) {
  // Copy the names: leaving edits conn.channels. Last first: each is then the index's
  // last entry, found at once and removed without moving another.
  std::vector<std::string> names;
  names.reserve(conn.channels.size());
  for (const auto& [name, index] : conn.channels) names.push_back(name);
  for (auto it = names.rbegin(); it != names.rend(); ++it) leaveChannel(conn, *it);
}

void EdgeService::leaveChannel(Connection& conn, const std::string& channel) {
  auto result = hub_.unsubscribe(&conn, channel);
  if (!result.removed) return;
  forgetChannelPosition(conn.tenant, channel);
  regionChannelLeft(conn.tenant, channel);
  const NamespaceConfig* ns = findNamespace(*conn.tenant_config, channel);
  if (ns != nullptr && ns->presence) {
    presenceLeave(conn, channel);
  }
  if (ns != nullptr && ns->join_leave && result.last_of_user) {
    if (userCountInChannelIs(conn.tenant, channel, conn.user, 0, true, *ns)) {
      broadcastPresenceEvent(conn.tenant, channel, conn.user, false, &conn);
    } else {
      // The view says the user is still in the channel elsewhere, but it may lag behind a
      // connection that left there at the same time (whose edge, seeing this one, kept
      // quiet too): look again once the changes have crossed.
      leave_rechecks_.push_back({nowMonoMs() + kLeaveRecheckMs, conn.tenant, channel, conn.user});
    }
  }
  metrics_.subscriptions_active.set(static_cast<int64_t>(hub_.subscriptionCount()));
  metrics_.channels_active.set(static_cast<int64_t>(hub_.channelCount()));
}

void EdgeService::recheckLeaves(int64_t now_mono_ms) {
  while (!leave_rechecks_.empty() && leave_rechecks_.front().due_ms <= now_mono_ms) {
    LeaveRecheck check = std::move(leave_rechecks_.front());
    leave_rechecks_.pop_front();
    auto tenant = config_.tenants.find(check.tenant);
    if (tenant == config_.tenants.end()) continue;
    const NamespaceConfig* ns = findNamespace(tenant->second, check.channel);
    if (ns == nullptr || !ns->join_leave) continue;
    // Gone everywhere now: nobody else may have said so (at worst two edges both do).
    auto left = presence_->userConnectionsInChannel(check.tenant, check.channel, check.user);
    if (left.isOk() && *left == 0) {
      broadcastPresenceEvent(check.tenant, check.channel, check.user, false, nullptr);
    }
  }
}

void EdgeService::onPong(Connection& conn) {
  conn.awaiting_pong = false;
}

void EdgeService::shutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  const char* reason = drainComplete() ? "drain finished" : "server shutting down";
  for (auto& [ptr, conn] : connections_) requestClose(*conn, 1001, reason);
}

void EdgeService::resyncPresence(const char* why, int64_t now_mono_ms) {
  std::vector<PresenceStore::LiveConnection> live;
  live.reserve(connections_.size());
  for (const auto& [ptr, conn] : connections_) {
    PresenceStore::LiveConnection l;
    l.conn = presenceRecord(*conn);
    for (const auto& [channel, index] : conn->channels) {
      const NamespaceConfig* ns = findNamespace(*conn->tenant_config, channel);
      if (ns != nullptr && ns->presence) l.channels.push_back(channel);
    }
    live.push_back(std::move(l));
  }
  Status s = presence_->resync(live, now_mono_ms);
  if (replication_) replication_->rewritten();
  metrics_.presence_resyncs.inc();
  if (s.isOk()) {
    logWarn("presence_resynced", {{"reason", why}, {"connections", live.size()}});
  } else {
    logWarn("presence_resync_failed", {{"reason", why}, {"error", s.toString()}});
  }
}

void EdgeService::flushNow() {
  if (replication_) replication_->goodbye();
  if (interest_) interest_->goodbye();
  Status s = presence_->flush();
  if (!s.isOk()) logWarn("presence_flush_failed", {{"error", s.toString()}});
  s = env_.sync();
  if (!s.isOk()) logWarn("lmdb_sync_failed", {{"error", s.toString()}});
}

// ---------------------------------------------------------------- timers

void EdgeService::scheduleTokenTimer(Connection& conn) {
  // Two steps: the refresh_required notice, then the close at expiry. Timers run on the
  // monotonic clock; the wall-clock distance to exp is converted once, here.
  const int64_t wall_now = nowWallMs();
  const int64_t mono_now = nowMonoMs();
  // The close comes at exp + leeway: the handshake accepted the token up to then.
  int64_t at = conn.token_exp_ms + config_.token_policy.leeway_s * 1000;
  if (!conn.refresh_notice_sent)
    at = conn.token_exp_ms - static_cast<int64_t>(config_.refresh_notice_ms);
  const int64_t delay = std::max<int64_t>(0, at - wall_now);
  timers_.schedule(&conn.token_timer, static_cast<uint64_t>(mono_now + delay));
}

void EdgeService::onTimer(TimerNode* node) {
  Connection& conn = *static_cast<Connection*>(node->owner);
  const uint64_t now = static_cast<uint64_t>(nowMonoMs());
  switch (static_cast<TimerTag>(node->tag)) {
    case TimerTag::kPing:
      if (conn.close_code != 0) return;
      if (conn.awaiting_pong) {
        // No pong for a whole interval: the peer (or the path to it) is gone.
        requestClose(conn, 1001, "ping timeout");
        return;
      }
      conn.awaiting_pong = true;
      conn.ping_due = true;
      transport_.wantWrite(conn);
      timers_.schedule(&conn.ping_timer, now + config_.ping_interval_ms);
      conn.out.releaseIdle();  // a connection idle since its last ping keeps no bookkeeping
      return;
    case TimerTag::kCloseDeadline:
      logDebug("conn_close_timeout", {{"session", conn.session}, {"code", conn.close_code}});
      transport_.kill(conn);
      return;
    case TimerTag::kSlowConsumer:
      // Armed when the queue crossed its high-water mark and re-armed at every later
      // crossing: still behind now means behind for the whole grace period.
      if (conn.close_code != 0 || !conn.out.behind(outbound_limits_)) return;
      logDebug("slow_consumer", {{"session", conn.session},
                                 {"queued_bytes", conn.out.bytes()},
                                 {"queued_messages", conn.out.size()}});
      metrics_.slow_consumer_lagging.inc();
      requestClose(conn, 4009, "slow consumer");
      return;
    case TimerTag::kToken:
      if (conn.close_code != 0) return;
      if (!conn.refresh_notice_sent) {
        conn.refresh_notice_sent = true;
        enqueue(conn, makeFrame(encodeRefreshRequired(conn.token_exp_ms)));
        scheduleTokenTimer(conn);
        return;
      }
      requestClose(conn, 4001, "token expired");
      return;
    case TimerTag::kDrainHint:
      sendDrainHint(conn);
      return;
  }
}

void EdgeService::tick() {
  const int64_t now = nowMonoMs();
  timers_.advance(static_cast<uint64_t>(now), [this](TimerNode* node) { onTimer(node); });
  if (region_) {
    region_->tick(now);
    retryRegionCatchUps(now);
    recheckInboxes(now);
    if (interest_) interest_->tick(now);
    if (owners_) owners_->tick(now);
    runLater(now);
  }
  recheckLeaves(now);
  sampleRates(now);
  if (replication_) replication_->tick(now, static_cast<int64_t>(config_.presence_heartbeat_ms));
  if (!swept_memberships_.empty()) emitSweptLeaves();
  if (connect_rate_.update(now)) {
    metrics_.connect_rate.set(std::llround(connect_rate_.rate() * 60));
    metrics_.connect_rate_baseline.set(std::llround(connect_rate_.baseline() * 60));
    metrics_.connect_rate_ratio.set(std::llround(connect_rate_.ratio() * 100));
  }

  if (presence_->pendingOps() > 0 &&
      now - last_flush_ms_ >= static_cast<int64_t>(config_.presence_flush_ms)) {
    last_flush_ms_ = now;
    Status s = presence_->flush();
    metrics_.presence_flushes.inc();
    if (!s.isOk()) {
      metrics_.dropped(s.reason());
      logWarn("presence_flush_failed", {{"error", s.toString()}});
    }
  }
  if (now - last_heartbeat_ms_ >= static_cast<int64_t>(config_.presence_heartbeat_ms)) {
    last_heartbeat_ms_ = now;
    auto swept = presence_->heartbeat(now);
    if (!swept.isOk()) {
      logWarn("presence_heartbeat_failed", {{"error", swept.status().toString()}});
    } else if (*swept || presence_->needsResync()) {
      // Siblings swept this worker (it was paused past the TTL) or a failed flush lost
      // writes: rewrite this worker's records from its live connections.
      resyncPresence(*swept ? "swept_while_alive" : "flush_failed", now);
    }
  }
  const int64_t sweep_every = std::max<int64_t>(500, config_.presence_ttl_ms / 4);
  if (now - last_sweep_ms_ >= sweep_every) {
    last_sweep_ms_ = now;
    auto swept = presence_->sweep(now, static_cast<int64_t>(config_.presence_ttl_ms));
    if (swept.isOk() && swept->connections_removed > 0) {
      metrics_.presence_swept.inc(swept->connections_removed);
      logInfo("presence_swept", {{"instances", swept->instances_removed},
                                 {"connections", swept->connections_removed}});
      for (auto& m : swept->memberships) swept_memberships_.push_back(std::move(m));
      // The region's other hosts drop this host's dead workers now, not a TTL later.
      if (replication_) {
        for (const std::string& dead : swept->local_instances) replication_->announceGone(dead);
      }
    } else if (!swept.isOk()) {
      logWarn("presence_sweep_failed", {{"error", swept.status().toString()}});
    }
  }
  if (now - last_limits_sweep_ms_ >= 1000) {
    last_limits_sweep_ms_ = now;
    inbound_.sweep(now);
    ip_guard_.sweep(now);
  }
  if (now - last_trim_ms_ >= 1000) {
    last_trim_ms_ = now;
    Status s = history_->trimExpired(
        nowWallMs(),
        [this](const std::string& tenant, const std::string& channel) {
          auto t = config_.tenants.find(tenant);
          const NamespaceConfig* ns =
              t == config_.tenants.end() ? nullptr : findNamespace(t->second, channel);
          return ns == nullptr ? HistoryLimits{} : historyLimits(*ns);
        },
        256);
    if (!s.isOk()) logWarn("history_trim_failed", {{"error", s.toString()}});
  }
}

}  // namespace wsfleet
