#include "edge/ip_guard.h"

#include <algorithm>

#include "common/ip_network.h"
#include "common/log.h"

namespace wsfleet {

namespace {
constexpr size_t kSweepBudget = 4096;
}  // namespace

IpGuard::IpGuard(const LimitsConfig& config, MetricsRegistry& r)
    : config_(config),
      table_(config.tracked_keys),
      refused_handshake_(r.counter("wsfleet_rate_limited_total",
                                   "Requests refused by a rate limit, by scope",
                                   {{"scope", "handshake"}})),
      bans_total_(r.counter("wsfleet_ip_bans_total",
                            "Addresses banned after repeated authentication failures")),
      bans_active_(r.gauge("wsfleet_ip_bans_active", "Addresses banned now")),
      evicted_(r.counter("wsfleet_limiter_evictions_total",
                         "Limiter entries dropped because their table was full, by table",
                         {{"table", "ip"}})),
      entries_(r.gauge("wsfleet_limiter_entries", "Entries in a limiter table, by table",
                       {{"table", "ip"}})) {}

IpGuard::~IpGuard() {
  // The gauge is adjusted by deltas (several guards may share a registry).
  bans_active_.add(-static_cast<int64_t>(active_bans_));
}

bool IpGuard::exempt(std::string_view peer) const {
  if (config_.exempt_ips.empty()) return false;
  IpAddress address;
  if (!parseIpAddress(peer, &address)) return false;
  return std::any_of(config_.exempt_ips.begin(), config_.exempt_ips.end(),
                     [&](const IpNetwork& n) { return n.contains(address); });
}

IpGuard::Entry& IpGuard::entryFor(const std::string& key, int64_t now_ms) {
  return table_.obtain(
      key,
      [&] {
        Entry e;
        e.handshakes = TokenBucket(static_cast<double>(config_.handshakes_per_ip_per_s),
                                   static_cast<double>(config_.handshakes_per_ip_burst), now_ms);
        e.failures = TokenBucket(static_cast<double>(config_.auth_failures_decay_per_s),
                                 static_cast<double>(config_.auth_failures_threshold), now_ms);
        return e;
      },
      [&](Entry& evicted) {
        evicted_.inc();
        if (evicted.banned_until_ms != 0) unban(evicted);
      });
}

void IpGuard::unban(Entry& entry) {
  entry.banned_until_ms = 0;
  --active_bans_;
  bans_active_.add(-1);
}

IpVerdict IpGuard::admit(std::string_view peer, int64_t now_ms) {
  if (config_.handshakes_per_ip_per_s == 0 && config_.auth_failures_threshold == 0) return {};
  if (exempt(peer)) return {};
  Entry& e = entryFor(ipLimitKey(peer), now_ms);
  if (e.banned_until_ms != 0) {
    if (now_ms < e.banned_until_ms) {
      // Counted under handshake_rejected{reason="banned"}, not as a rate-limit refusal.
      IpVerdict v;
      v.reason = "banned";
      v.retry_after_s = static_cast<int>((e.banned_until_ms - now_ms + 999) / 1000);
      return v;
    }
    unban(e);
  }
  if (!e.handshakes.tryTake(now_ms)) {
    refused_handshake_.inc();
    IpVerdict v;
    v.reason = "rate_limited";
    v.retry_after_s =
        static_cast<int>(std::max<int64_t>(1, (e.handshakes.msUntil(now_ms) + 999) / 1000));
    return v;
  }
  return {};
}

void IpGuard::authFailed(std::string_view peer, int64_t now_ms) {
  if (config_.auth_failures_threshold == 0 || exempt(peer)) return;
  const std::string key = ipLimitKey(peer);
  Entry& e = entryFor(key, now_ms);
  if (e.banned_until_ms != 0 || e.failures.tryTake(now_ms)) return;
  e.banned_until_ms = now_ms + static_cast<int64_t>(config_.ban_s) * 1000;
  // A banned address starts over with a clean score once the ban ends.
  e.failures = TokenBucket(static_cast<double>(config_.auth_failures_decay_per_s),
                           static_cast<double>(config_.auth_failures_threshold), now_ms);
  ++active_bans_;
  bans_active_.add(1);
  bans_total_.inc();
  ban_ends_.emplace_back(e.banned_until_ms, key);
  logWarn("ip_banned", {{"peer", peer}, {"ban_s", config_.ban_s}});
}

void IpGuard::sweep(int64_t now_ms) {
  while (!ban_ends_.empty() && ban_ends_.front().first <= now_ms) {
    Entry* e = table_.peek(ban_ends_.front().second);
    if (e != nullptr && e->banned_until_ms == ban_ends_.front().first) unban(*e);
    ban_ends_.pop_front();
  }
  table_.sweep(
      [now_ms](const Entry& e) {
        return e.banned_until_ms == 0 && e.handshakes.full(now_ms) && e.failures.full(now_ms);
      },
      kSweepBudget);
  entries_.set(static_cast<int64_t>(table_.size()));
}

}  // namespace wsfleet
