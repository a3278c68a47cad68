#pragma once
// Rate limits on what clients send after the upgrade: commands per connection, publishes
// per user and per channel (the backend API shares the channel limit). A refused command
// is answered `rate_limited` and not run; a connection that keeps being refused is closed
// with 4008 ("chronic": more than refusals_before_close refusals within
// refusal_window_ms, measured by a bucket refilling at that rate).
//
// Memory: one bucket pair per connection (in the Connection), and at most
// limits.tracked_keys entries in each of the user and channel tables; entries whose bucket
// has refilled are swept from tick(), and a full table evicts its least recently used
// entry (counted in wsfleet_limiter_evictions_total).

#include <cstdint>
#include <string>
#include <string_view>

#include "common/metrics.h"
#include "common/token_bucket.h"
#include "edge/edge_config.h"
#include "edge/lru_table.h"

namespace wsfleet {

// Per-connection limiter state, embedded in Connection.
struct ConnectionLimits {
  TokenBucket commands;
  TokenBucket strikes;  // empties after refusals_before_close quick refusals
};

struct LimitVerdict {
  bool allowed = true;
  bool close = false;          // chronic abuse: close the connection with 4008
  const char* reason = "";     // Status reason of the refusal
  int64_t retry_after_ms = 0;  // when a retry could succeed
};

class InboundLimits {
 public:
  InboundLimits(const LimitsConfig& config, MetricsRegistry& registry);

  // Arms a new connection's buckets.
  void attach(ConnectionLimits& conn, int64_t now_ms) const;

  // Every client command (text message) costs one token of its connection's bucket.
  LimitVerdict onCommand(ConnectionLimits& conn, int64_t now_ms);
  // A client publish: the user's and the channel's buckets, both or neither taken.
  LimitVerdict onClientPublish(ConnectionLimits& conn, std::string_view tenant,
                               std::string_view user, std::string_view channel, int64_t now_ms);
  // A backend API publish: the channel's bucket only.
  LimitVerdict onApiPublish(std::string_view tenant, std::string_view channel, int64_t now_ms);

  // Forgets idle entries (bounded work per call); call about once a second.
  void sweep(int64_t now_ms);

  size_t userEntries() const { return users_.size(); }
  size_t channelEntries() const { return channels_.size(); }

 private:
  LimitVerdict refuse(ConnectionLimits* conn, Counter& scope, const char* reason,
                      int64_t retry_after_ms, int64_t now_ms);
  TokenBucket& bucketFor(LruTable<TokenBucket>& table, Counter& evictions, double rate,
                         double burst, const std::string& key, int64_t now_ms);

  const LimitsConfig& config_;
  LruTable<TokenBucket> users_;
  LruTable<TokenBucket> channels_;
  Counter& refused_connection_;
  Counter& refused_user_;
  Counter& refused_channel_;
  Counter& evicted_users_;
  Counter& evicted_channels_;
  Gauge& user_entries_;
  Gauge& channel_entries_;
};

// Retry-After for a refusal: whole seconds, at least 1.
int retryAfterSeconds(const LimitVerdict& verdict);

// "tenant\0name": the NUL cannot occur in either, so keys of two tenants never collide.
std::string limiterKey(std::string_view tenant, std::string_view name);

}  // namespace wsfleet
