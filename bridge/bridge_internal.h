#pragma once
// Shared by the files of wsfleet-bridge's implementation (bridge.cc: set-up, the loop,
// heartbeats and links; bridge_interest.cc; bridge_forwarding.cc; bridge_requests.cc).
// Not part of the interface: that is bridge/bridge.h.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/bridge.h"
#include "common/json.h"

namespace wsfleet {
namespace bridge_detail {

inline constexpr uint64_t kSubEdgeInterest = 1;
inline constexpr uint64_t kSubForwardPublish = 2;
inline constexpr uint64_t kSubForwardApi = 3;
inline constexpr uint64_t kSubPeerHeartbeat = 4;
inline constexpr uint64_t kSubRemoteHeartbeat = 5;
inline constexpr uint64_t kSubRemoteInterest = 6;
inline constexpr uint64_t kSubForwardedIn = 7;
inline constexpr uint64_t kSubDirect = 8;          // wsf.<r>.xuser.>: direct messages from edges
inline constexpr uint64_t kSubHomeDirect = 9;      // wsfx.<r>.user.>: for users whose home is here
inline constexpr uint64_t kSubForwardedUser = 10;  // wsfx.<r>.b.<self>.user.>
inline constexpr uint64_t kSubLiveRelay = 11;      // wsf.<r>.xlive.>: unsequenced, for owners
inline constexpr uint64_t kSubControl = 12;        // wsf.<r>.ctl.bridges: wsfleetctl
inline constexpr uint64_t kSubControlVerb = 13;    // wsf.<r>.ctl.bridge.<verb>

// Requests for one region's work go to one bridge of the region, whichever.
inline constexpr const char* kQueueGroup = "wsf-bridge";
inline constexpr int64_t kRetryBackoffMs = 100;
// An edge's interest lives this many of its own refresh periods without news.
inline constexpr int64_t kInterestTtlPeriods = 3;
// Interest messages are split at about this size (NATS' default max payload is 1 MB).
inline constexpr size_t kMaxInterestMessageBytes = 256 * 1024;
// Snapshots wait this long after start: edges send their whole set every 2 s
// (edge/interest_announcer.h), so by then every live edge has been heard.
inline constexpr int64_t kSnapshotWarmupMs = 3000;
// Interest expiry walks the tables: a few times a second is enough for TTLs of seconds.
inline constexpr int64_t kExpiryScanMs = 250;
// Tail resends per tick (every 20 ms): 10000 a second at most.
inline constexpr size_t kTailResendsPerTick = 200;

// An optional field: `fallback` when absent or of another type.
inline bool boolField(simdjson::dom::element doc, const char* field, bool fallback) {
  bool v = fallback;
  return doc[field].get(v) == simdjson::SUCCESS ? v : fallback;
}
inline int64_t intField(simdjson::dom::element doc, const char* field, int64_t fallback) {
  int64_t v = fallback;
  return doc[field].get(v) == simdjson::SUCCESS ? v : fallback;
}

inline bool startsWith(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && text.substr(0, prefix.size()) == prefix;
}

// The W3C trace context a message carries, for the messages it causes.
inline std::vector<NatsHeader> traceOf(const NatsInbound& message) {
  if (const std::string* trace = message.header("traceparent")) {
    return {{"traceparent", *trace}};
  }
  return {};
}

// Interest entries for users start with '@' (userInterestTail).
inline bool isUserTail(std::string_view tail) {
  return !tail.empty() && tail.front() == '@';
}

// The strings of a JSON array field; nullopt when it is there but not an array of strings.
inline std::optional<std::vector<std::string>> stringArray(simdjson::dom::element doc,
                                                           const char* field) {
  std::vector<std::string> out;
  simdjson::dom::array array;
  auto e = doc[field].get(array);
  if (e == simdjson::NO_SUCH_FIELD) return out;
  if (e != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element item : array) {
    std::string_view s;
    if (item.get(s) != simdjson::SUCCESS) return std::nullopt;
    out.emplace_back(s);
  }
  return out;
}

// [[owner, tail], ...]
inline std::optional<std::vector<LocalInterest::Key>> keyArray(simdjson::dom::element doc,
                                                               const char* field) {
  std::vector<LocalInterest::Key> out;
  simdjson::dom::array array;
  auto e = doc[field].get(array);
  if (e == simdjson::NO_SUCH_FIELD) return out;
  if (e != simdjson::SUCCESS) return std::nullopt;
  for (simdjson::dom::element item : array) {
    simdjson::dom::array pair;
    if (item.get(pair) != simdjson::SUCCESS || pair.size() != 2) return std::nullopt;
    std::string_view owner, tail;
    if (pair.at(0).get(owner) != simdjson::SUCCESS || pair.at(1).get(tail) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    out.emplace_back(std::string(owner), std::string(tail));
  }
  return out;
}

inline std::string errorJson(int code, std::string_view description) {
  std::string out;
  JsonWriter(out)
      .beginObject()
      .key("error")
      .beginObject()
      .fieldInt("code", code)
      .fieldInt("err_code", 0)
      .field("description", description)
      .endObject()
      .endObject();
  return out;
}

}  // namespace bridge_detail

struct Bridge::Metrics {
  MetricsRegistry& registry;
  Counter& dropped(const std::string& reason) {
    return registry.counter("wsfleet_bridge_dropped_total",
                            "Messages the bridge did not forward or answer, by reason",
                            {{"reason", reason}});
  }
  Counter& forwardedMessages(const std::string& region, const char* direction) {
    return registry.counter("wsfleet_bridge_forwarded_messages_total",
                            "Channel messages sent to (out) or received from (in) a region",
                            {{"region", region}, {"direction", direction}});
  }
  Counter& forwardedBytes(const std::string& region, const char* direction) {
    return registry.counter("wsfleet_bridge_forwarded_bytes_total",
                            "Payload bytes of the forwarded channel messages",
                            {{"region", region}, {"direction", direction}});
  }
  Counter& publishes(const std::string& owner, const char* result) {
    return registry.counter("wsfleet_bridge_publishes_total",
                            "Durable publishes forwarded to their owner region, by outcome",
                            {{"region", owner}, {"result", result}});
  }
  Counter& control(const std::string& region) {
    return registry.counter("wsfleet_bridge_control_messages_total",
                            "Heartbeats and interest announcements sent to a region",
                            {{"region", region}});
  }
  Counter& tailResends(const std::string& region) {
    return registry.counter("wsfleet_bridge_tail_resends_total",
                            "Last messages of channels sent again after a link or bridge change",
                            {{"region", region}});
  }
  Gauge& linkUp(const std::string& region) {
    return registry.gauge("wsfleet_bridge_link_up",
                          "1 while a bridge of the region is heard, else 0", {{"region", region}});
  }
  Gauge& localInterest() {
    return registry.gauge("wsfleet_bridge_interest_entries",
                          "Entries of the interest tables: local = channels (and users) this "
                          "region's edges announced, remote = channel-region pairs other "
                          "regions want from this one",
                          {{"side", "local"}});
  }
  Gauge& remoteInterest() {
    return registry.gauge("wsfleet_bridge_interest_entries",
                          "Entries of the interest tables: local = channels (and users) this "
                          "region's edges announced, remote = channel-region pairs other "
                          "regions want from this one",
                          {{"side", "remote"}});
  }
  Gauge& linkPaused(const std::string& region) {
    return registry.gauge("wsfleet_bridge_link_paused",
                          "1 while an operator paused the link to the region (wsfleetctl bridge "
                          "pause): it counts as down",
                          {{"region", region}});
  }
  Gauge& peers() {
    return registry.gauge("wsfleet_bridge_peers", "Live bridges of this region, itself included");
  }
  Gauge& pendingPublishes() {
    return registry.gauge("wsfleet_bridge_pending_publishes",
                          "Forwarded publishes waiting for their owner region's answer");
  }
};

struct Bridge::RemoteRegion {
  std::string name;
  PeerSet bridges;  // its bridges we hear
  bool up = false;
  bool paused = false;  // by an operator: down whatever its bridges say
  Gauge* link_up = nullptr;
  Gauge* link_paused = nullptr;
  // Looked up once: forwarding counts every message.
  Counter* messages_out = nullptr;
  Counter* bytes_out = nullptr;
  Counter* messages_in = nullptr;
  Counter* bytes_in = nullptr;
  void countOut(size_t bytes) {
    messages_out->inc();
    bytes_out->inc(bytes);
  }
  void countIn(size_t bytes) {
    messages_in->inc();
    bytes_in->inc(bytes);
  }
};

struct Bridge::PendingPublish {
  std::string owner;
  std::string store_subject;
  std::string reply;
  std::string data;
  std::vector<NatsHeader> headers;
  uint64_t attempts = 0;
  int64_t deadline_ms = 0;  // of the whole forward: answered by then
};

}  // namespace wsfleet
