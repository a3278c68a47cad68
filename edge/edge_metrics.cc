#include "edge/edge_metrics.h"

#include <string>

namespace wsfleet {

EdgeMetrics::EdgeMetrics(MetricsRegistry& r)
    : connections_active(r.gauge("wsfleet_connections_active", "WebSocket connections open now")),
      connections_accepted(r.counter("wsfleet_connections_total", "WebSocket handshakes by result",
                                     {{"result", "accepted"}})),
      messages_received(r.counter("wsfleet_messages_received_total",
                                  "Messages accepted for publishing (clients and backend API)")),
      messages_delivered(r.counter("wsfleet_messages_delivered_total",
                                   "Message and direct frames queued to local connections")),
      commands(r.counter("wsfleet_commands_total", "Client commands decoded")),
      e2e_latency(r.histogram("wsfleet_e2e_latency_seconds",
                              "From a message's origin timestamp to its queueing for delivery",
                              latencyBuckets())),
      presence_flushes(
          r.counter("wsfleet_presence_flushes_total", "Batched presence write transactions")),
      presence_swept(
          r.counter("wsfleet_presence_swept_connections_total",
                    "Presence records removed because their worker stopped heartbeating")),
      presence_resyncs(r.counter("wsfleet_presence_resyncs_total",
                                 "Rewrites of a worker's presence records from its live state "
                                 "(after it was swept while alive, or a flush failed)")),
      history_appends(r.counter("wsfleet_history_appends_total", "Messages stored in history")),
      http_requests(r.counter("wsfleet_admin_requests_total", "Admin listener HTTP requests")),
      accept_errors(r.counter("wsfleet_accept_pauses_total",
                              "Pauses of the WebSocket listener, by reason", {{"reason", "error"}})),
      accept_full(r.counter("wsfleet_accept_pauses_total",
                            "Pauses of the WebSocket listener, by reason",
                            {{"reason", "max_connections"}})),
      dropped_closing(r.counter("wsfleet_messages_dropped_total",
                                "Messages not delivered, by reason", {{"reason", "closing"}})),
      dropped_slow_consumer(r.counter("wsfleet_messages_dropped_total",
                                      "Messages not delivered, by reason",
                                      {{"reason", "slow_consumer"}})),
      dropped_low_coalesced(r.counter("wsfleet_messages_dropped_total",
                                      "Messages not delivered, by reason",
                                      {{"reason", "low_priority_coalesced"}})),
      dropped_low_priority(r.counter("wsfleet_messages_dropped_total",
                                     "Messages not delivered, by reason",
                                     {{"reason", "low_priority_dropped"}})),
      slow_consumer_cap(r.counter("wsfleet_slow_consumer_disconnects_total",
                                  "Connections closed 4009 as slow consumers, by trigger",
                                  {{"trigger", "hard_cap"}})),
      slow_consumer_lagging(r.counter("wsfleet_slow_consumer_disconnects_total",
                                      "Connections closed 4009 as slow consumers, by trigger",
                                      {{"trigger", "grace_expired"}})),
      high_water_crossings(
          r.counter("wsfleet_outbound_high_water_crossings_total",
                    "Times a connection's send queue went over its high-water mark "
                    "(low-priority frames coalesced or dropped, grace period started)")),
      connect_rate(r.gauge("wsfleet_connect_rate_per_minute",
                           "Connections accepted per minute over the last 10 s")),
      connect_rate_baseline(r.gauge("wsfleet_connect_rate_baseline_per_minute",
                                    "Moving average of the connect rate (15 min time constant)")),
      connect_rate_ratio(r.gauge("wsfleet_connect_rate_ratio_percent",
                                 "Connect rate against its baseline, percent (a reconnect "
                                 "storm shows far above 100)")),
      resumes_recovered(r.counter("wsfleet_resumes_total",
                                  "Subscribes with `since`, by whether the gap was replayed",
                                  {{"result", "recovered"}})),
      resumes_not_recovered(r.counter("wsfleet_resumes_total",
                                      "Subscribes with `since`, by whether the gap was replayed",
                                      {{"result", "not_recovered"}})),
      subscriptions_active(r.gauge("wsfleet_subscriptions_active", "Channel subscriptions now")),
      channels_active(r.gauge("wsfleet_channels_active", "Channels with local subscribers")),
      draining(r.gauge("wsfleet_draining", "1 while this edge drains (readiness 503)")),
      drain_hints_sent(
          r.counter("wsfleet_drain_hints_sent_total", "reconnect hints sent to clients by drains")),
      region_caught_up(r.counter("wsfleet_region_caught_up_total",
                                 "durable messages fetched from the region's history because "
                                 "their live copy never arrived")),
      region_catch_up_lag(r.histogram(
          "wsfleet_region_catch_up_lag_seconds",
          "Age of the durable messages delivered from the history by catch-ups (a link or "
          "region that was cut off, a lost live copy)",
          latencyBuckets())),
      region_catch_up_retries(
          r.counter("wsfleet_region_catch_up_retries_total",
                    "catch-ups of durable channels that found the history unreachable and "
                    "wait to try again (the channel's delivery waits meanwhile)")),
      ownership_moves(r.counter("wsfleet_ownership_moves_total",
                                "durable channels this worker followed to a new owner region "
                                "(an ownership move: the old generation delivered up to its "
                                "fence, then the new owner's from its base)")),
      owner_records(r.gauge("wsfleet_owner_records",
                            "channels moved by an operator, as this worker's copy of the "
                            "ownership bucket has them")),
      inbox_queued(r.counter("wsfleet_inbox_queued_total",
                             "direct messages kept in the inbox of a user offline in the region")),
      inbox_delivered(r.counter("wsfleet_inbox_delivered_total",
                                "queued direct messages delivered on the user's next connect")),
      cap_refusals_ip(r.counter("wsfleet_connection_cap_refusals_total",
                                "Handshakes refused by a host-wide connection cap, by cap",
                                {{"cap", "ip"}})),
      cap_refusals_user(r.counter("wsfleet_connection_cap_refusals_total",
                                  "Handshakes refused by a host-wide connection cap, by cap",
                                  {{"cap", "user"}})),
      registry_(r) {
  // Pre-register the labelled families so they show on /metrics from the start.
  r.counter("wsfleet_handshake_rejected_total", "Handshakes refused before the upgrade, by reason",
            {{"reason", "token_missing"}});
  r.counter("wsfleet_disconnects_total", "Closed connections by close code", {{"code", "1000"}});
  r.counter("wsfleet_connections_total", "WebSocket handshakes by result",
            {{"result", "rejected"}});
  for (const char* result : {"ok", "error"}) {
    r.counter("wsfleet_config_reloads_total", "Configuration reloads (SIGHUP) by result",
              {{"result", result}});
  }
}

void EdgeMetrics::configReload(bool ok) {
  registry_
      .counter("wsfleet_config_reloads_total", "Configuration reloads (SIGHUP) by result",
               {{"result", ok ? "ok" : "error"}})
      .inc();
}

void EdgeMetrics::handshakeRejected(std::string_view reason) {
  registry_
      .counter("wsfleet_handshake_rejected_total",
               "Handshakes refused before the upgrade, by reason",
               {{"reason", std::string(reason)}})
      .inc();
  registry_
      .counter("wsfleet_connections_total", "WebSocket handshakes by result",
               {{"result", "rejected"}})
      .inc();
}

void EdgeMetrics::disconnect(int close_code) {
  // Codes with a meaning here keep their own series; the rest of the range a peer may
  // choose from is bucketed, so clients cannot mint label values.
  std::string label;
  switch (close_code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1005:
    case 1006:
    case 1007:
    case 1008:
    case 1009:
    case 1011:
    case 4001:
    case 4003:
    case 4008:
    case 4009:
    case 4010:
    case 4011:
      label = std::to_string(close_code);
      break;
    default:
      label = close_code >= 4000 && close_code <= 4999   ? "other_4xxx"
              : close_code >= 3000 && close_code <= 3999 ? "other_3xxx"
                                                         : "other";
  }
  registry_
      .counter("wsfleet_disconnects_total", "Closed connections by close code", {{"code", label}})
      .inc();
}

uint64_t EdgeMetrics::droppedTotal() const {
  return dropped_by_reason_.load(std::memory_order_relaxed) + dropped_closing.value() +
         dropped_slow_consumer.value() + dropped_low_coalesced.value() +
         dropped_low_priority.value();
}

void EdgeMetrics::dropped(std::string_view reason, uint64_t n) {
  dropped_by_reason_.fetch_add(n, std::memory_order_relaxed);
  registry_
      .counter("wsfleet_messages_dropped_total", "Messages not delivered, by reason",
               {{"reason", std::string(reason)}})
      .inc(n);
}

void EdgeMetrics::commandError(std::string_view code) {
  registry_
      .counter("wsfleet_command_errors_total", "Client commands refused, by error code",
               {{"code", std::string(code)}})
      .inc();
}

}  // namespace wsfleet
