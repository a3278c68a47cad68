#pragma once
// The edge's metrics, registered once at start-up; hot paths hold references.
// Names are part of the operator contract (docs/OPERATIONS.md, "Metrics").

#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/metrics.h"

namespace wsfleet {

class EdgeMetrics {
 public:
  explicit EdgeMetrics(MetricsRegistry& registry);

  MetricsRegistry& registry() { return registry_; }

  // Labelled families looked up on cold paths (refusals, closes, drops).
  void handshakeRejected(std::string_view reason);
  void disconnect(int close_code);
  void dropped(std::string_view reason, uint64_t n = 1);
  // Every message counted in wsfleet_messages_dropped_total, whatever the reason.
  uint64_t droppedTotal() const;
  void commandError(std::string_view code);
  void configReload(bool ok);

  Gauge& connections_active;
  Counter& connections_accepted;
  Counter& messages_received;   // publishes accepted from clients and the backend API
  Counter& messages_delivered;  // frames queued to a local connection (message, direct)
  Counter& commands;            // client commands decoded
  Histogram& e2e_latency;       // origin timestamp -> queued for delivery, seconds
  Counter& presence_flushes;
  Counter& presence_swept;
  Counter& presence_resyncs;
  Counter& history_appends;
  Counter& http_requests;
  // The WebSocket listener paused accepting briefly (the connections wait in the listen
  // queue): accept() failed (descriptor limit, kernel memory), or the worker holds
  // node.max_connections_per_worker connections.
  Counter& accept_errors;
  Counter& accept_full;
  // Drop reasons counted inside fan-out (per frame), looked up once.
  Counter& dropped_closing;
  Counter& dropped_slow_consumer;
  Counter& dropped_low_coalesced;  // replaced by a newer low frame with the same key
  Counter& dropped_low_priority;   // low frames not queued, or evicted at the cap
  // Connections closed 4009: a normal frame over the hard cap, or over the high-water
  // mark for longer than slow_consumer_grace_ms.
  Counter& slow_consumer_cap;
  Counter& slow_consumer_lagging;
  Counter& high_water_crossings;  // a connection's queue went over a high-water mark
  // Reconnect-storm indicators (edge/connect_rate.h), integers: per minute and percent.
  Gauge& connect_rate;
  Gauge& connect_rate_baseline;
  Gauge& connect_rate_ratio;
  Counter& resumes_recovered;
  Counter& resumes_not_recovered;
  Gauge& subscriptions_active;
  Gauge& channels_active;
  Gauge& draining;            // 1 while a drain runs
  Counter& drain_hints_sent;  // `reconnect` frames queued by drains
  // Durable messages fetched from the region's stream because the live copy was missed.
  Counter& region_caught_up;
  // Age (origin timestamp -> delivery) of the messages delivered from the history by a
  // catch-up: how far behind a region or a link was when it caught up.
  Histogram& region_catch_up_lag;
  Counter& region_catch_up_retries;  // a catch-up found the stream unreachable
  Counter& ownership_moves;          // channels this worker followed to a new owner
  Gauge& owner_records;              // moved channels known (the ownership bucket)
  Counter& inbox_queued;             // direct messages kept for a user offline in the region
  Counter& inbox_delivered;          // ... and delivered on the user's next connect
  // Handshakes refused by the host-wide connection caps (limits.max_connections_per_*).
  Counter& cap_refusals_ip;
  Counter& cap_refusals_user;

 private:
  MetricsRegistry& registry_;
  std::atomic<uint64_t> dropped_by_reason_{0};  // what dropped() counted
};

}  // namespace wsfleet
