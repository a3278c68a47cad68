#pragma once
// Per-address defences of the WebSocket handshake, applied before any token is verified
// (verifying costs a signature check; refusing costs a table lookup):
//  - a handshake rate per IPv4 address or IPv6 /64 (429 `rate_limited`);
//  - an authentication-failure score: every failed token takes one token from a bucket
//    that refills at auth_failures_decay_per_s up to auth_failures_threshold; a failure
//    that finds it empty bans the address for ban_s (429 `banned`, token not looked at).
// Addresses in limits.exempt_ips skip both.
//
// Memory: at most limits.tracked_keys addresses; idle ones (buckets refilled, no ban) are
// swept from tick(), and a full table evicts the least recently used address, even a
// banned one (counted in wsfleet_limiter_evictions_total{table="ip"}).

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>

#include "common/metrics.h"
#include "common/token_bucket.h"
#include "edge/edge_config.h"
#include "edge/lru_table.h"

namespace wsfleet {

struct IpVerdict {
  const char* reason = nullptr;  // nullptr: go on; else "banned" or "rate_limited"
  int retry_after_s = 0;
};

class IpGuard {
 public:
  IpGuard(const LimitsConfig& config, MetricsRegistry& registry);
  ~IpGuard();

  // Called first for every handshake. `peer` is the remote address as text.
  IpVerdict admit(std::string_view peer, int64_t now_ms);
  // The handshake from `peer` presented a token that did not verify.
  void authFailed(std::string_view peer, int64_t now_ms);

  // Lifts expired bans and forgets idle addresses (bounded work); call about once a second.
  void sweep(int64_t now_ms);

  size_t activeBans() const { return active_bans_; }
  size_t entries() const { return table_.size(); }
  // `peer` is in limits.exempt_ips.
  bool exempt(std::string_view peer) const;

 private:
  struct Entry {
    TokenBucket handshakes;
    TokenBucket failures;
    int64_t banned_until_ms = 0;  // 0: not banned
  };

  Entry& entryFor(const std::string& key, int64_t now_ms);
  void unban(Entry& entry);

  const LimitsConfig& config_;
  LruTable<Entry> table_;
  // Bans in the order they end (every ban lasts ban_s): the sweep lifts them from the
  // front. Entries whose ban was lifted or evicted meanwhile are skipped.
  std::deque<std::pair<int64_t, std::string>> ban_ends_;
  size_t active_bans_ = 0;
  Counter& refused_handshake_;
  Counter& bans_total_;
  Gauge& bans_active_;
  Counter& evicted_;
  Gauge& entries_;
};

}  // namespace wsfleet
