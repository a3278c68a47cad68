#include "edge/inbound_limits.h"

#include <algorithm>

namespace wsfleet {

namespace {

constexpr size_t kSweepBudget = 4096;

Counter& rateLimited(MetricsRegistry& r, const char* scope) {
  return r.counter("wsfleet_rate_limited_total", "Requests refused by a rate limit, by scope",
                   {{"scope", scope}});
}

Counter& evictions(MetricsRegistry& r, const char* table) {
  return r.counter("wsfleet_limiter_evictions_total",
                   "Limiter entries dropped because their table was full, by table",
                   {{"table", table}});
}

Gauge& entries(MetricsRegistry& r, const char* table) {
  return r.gauge("wsfleet_limiter_entries", "Entries in a limiter table, by table",
                 {{"table", table}});
}

}  // namespace

int retryAfterSeconds(const LimitVerdict& verdict) {
  return static_cast<int>(std::max<int64_t>(1, (verdict.retry_after_ms + 999) / 1000));
}

std::string limiterKey(std::string_view tenant, std::string_view name) {
  std::string key;
  key.reserve(tenant.size() + 1 + name.size());
  key.append(tenant).push_back('\0');
  key.append(name);
  return key;
}

InboundLimits::InboundLimits(const LimitsConfig& config, MetricsRegistry& r)
    : config_(config),
      users_(config.tracked_keys),
      channels_(config.tracked_keys),
      refused_connection_(rateLimited(r, "connection")),
      refused_user_(rateLimited(r, "user")),
      refused_channel_(rateLimited(r, "channel")),
      evicted_users_(evictions(r, "user")),
      evicted_channels_(evictions(r, "channel")),
      user_entries_(entries(r, "user")),
      channel_entries_(entries(r, "channel")) {}

void InboundLimits::attach(ConnectionLimits& conn, int64_t now_ms) const {
  conn.commands = TokenBucket(static_cast<double>(config_.commands_per_s),
                              static_cast<double>(config_.commands_burst), now_ms);
  if (config_.refusals_before_close > 0) {
    const double strikes = static_cast<double>(config_.refusals_before_close);
    conn.strikes = TokenBucket(strikes * 1000.0 / static_cast<double>(config_.refusal_window_ms),
                               strikes, now_ms);
  }
}

LimitVerdict InboundLimits::refuse(ConnectionLimits* conn, Counter& scope, const char* reason,
                                   int64_t retry_after_ms, int64_t now_ms) {
  scope.inc();
  LimitVerdict v;
  v.allowed = false;
  v.reason = reason;
  v.retry_after_ms = retry_after_ms;
  // A disabled strike bucket (refusals_before_close = 0) always has room: never closes.
  v.close = conn != nullptr && conn->strikes.enabled() && !conn->strikes.tryTake(now_ms);
  return v;
}

LimitVerdict InboundLimits::onCommand(ConnectionLimits& conn, int64_t now_ms) {
  if (conn.commands.tryTake(now_ms)) return {};
  return refuse(&conn, refused_connection_, "command_rate", conn.commands.msUntil(now_ms), now_ms);
}

TokenBucket& InboundLimits::bucketFor(LruTable<TokenBucket>& table, Counter& evicted, double rate,
                                      double burst, const std::string& key, int64_t now_ms) {
  return table.obtain(
      key, [&] { return TokenBucket(rate, burst, now_ms); },
      [&](const TokenBucket&) { evicted.inc(); });
}

LimitVerdict InboundLimits::onClientPublish(ConnectionLimits& conn, std::string_view tenant,
                                            std::string_view user, std::string_view channel,
                                            int64_t now_ms) {
  TokenBucket* user_bucket = nullptr;
  if (config_.user_publishes_per_s > 0) {
    user_bucket = &bucketFor(
        users_, evicted_users_, static_cast<double>(config_.user_publishes_per_s),
        static_cast<double>(config_.user_publishes_burst), limiterKey(tenant, user), now_ms);
    if (!user_bucket->canTake(now_ms)) {
      return refuse(&conn, refused_user_, "user_publish_rate", user_bucket->msUntil(now_ms),
                    now_ms);
    }
  }
  if (config_.channel_publishes_per_s > 0) {
    TokenBucket& channel_bucket = bucketFor(
        channels_, evicted_channels_, static_cast<double>(config_.channel_publishes_per_s),
        static_cast<double>(config_.channel_publishes_burst), limiterKey(tenant, channel), now_ms);
    if (!channel_bucket.tryTake(now_ms)) {
      return refuse(&conn, refused_channel_, "channel_publish_rate", channel_bucket.msUntil(now_ms),
                    now_ms);
    }
  }
  // Taken only once the channel accepted: a publish the channel refused costs the user
  // nothing. (The channel table cannot have evicted the user's bucket: separate tables.)
  if (user_bucket != nullptr) user_bucket->tryTake(now_ms);
  return {};
}

LimitVerdict InboundLimits::onApiPublish(std::string_view tenant, std::string_view channel,
                                         int64_t now_ms) {
  if (config_.channel_publishes_per_s == 0) return {};
  TokenBucket& bucket = bucketFor(
      channels_, evicted_channels_, static_cast<double>(config_.channel_publishes_per_s),
      static_cast<double>(config_.channel_publishes_burst), limiterKey(tenant, channel), now_ms);
  if (bucket.tryTake(now_ms)) return {};
  return refuse(nullptr, refused_channel_, "channel_publish_rate", bucket.msUntil(now_ms), now_ms);
}

void InboundLimits::sweep(int64_t now_ms) {
  auto idle = [now_ms](const TokenBucket& b) { return b.full(now_ms); };
  users_.sweep(idle, kSweepBudget);
  channels_.sweep(idle, kSweepBudget);
  user_entries_.set(static_cast<int64_t>(users_.size()));
  channel_entries_.set(static_cast<int64_t>(channels_.size()));
}

}  // namespace wsfleet
