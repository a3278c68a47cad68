#pragma once
// One NATS connection driven from a single-threaded event loop.
//
// cnats runs its own threads (socket reader, flusher, reconnects, message delivery), and a
// cnats publish writes to the socket in place once its buffer is full, so it may block.
// The loop must never block, so this class keeps the two apart with two bounded queues:
//  - outbound: the loop posts operations (subscribe, publish, request); the link's own
//    thread applies them to cnats in the order they were posted;
//  - inbound: cnats callbacks push what arrived (messages, replies, link state changes);
//    the loop takes them when the link's eventfd (wakeFd) becomes readable.
// Both queues are bounded and count what they drop, by reason, in metrics.
//
// Requests (JetStream publishes and API calls) share one wildcard inbox subscription: the
// reply subject is <inbox>.<request id>, and the reply comes back as an inbound item with
// that id. Every reply does: a request many services answer (wsfleetctl's scatter-gather
// over the control subjects) yields one item per answer, and callers that want one take
// the first. Timeouts are the caller's business (its timer wheel), not the link's.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"

namespace wsfleet {

struct NatsCallbacks;

struct NatsLinkOptions {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port
  std::string name;                  // client name the servers show (connz)
  // Credentials: at most one of token, user/password, creds_file.
  std::string token;
  std::string user;
  std::string password;
  std::string creds_file;
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  int64_t connect_timeout_ms = 2000;
  // Reconnect delay: base doubled per failed attempt up to max, plus up to base of jitter
  // (so a region's edges do not reconnect in lockstep after a server restart).
  int64_t reconnect_wait_ms = 250;
  int64_t reconnect_wait_max_ms = 5000;
  // What cnats keeps while disconnected; a publish that does not fit fails (counted).
  int64_t reconnect_buffer_bytes = 8 << 20;
  int64_t ping_interval_ms = 5000;
  int max_pings_out = 2;
  size_t max_outbound_ops = 65536;
  size_t max_inbound_items = 65536;
  // Payload bytes each queue may hold, whatever the count.
  size_t max_queue_bytes = 64u << 20;
  // Labels every metric of this link carries (e.g. {"worker","0"}).
  Labels metric_labels;
};

enum class NatsLinkState : uint8_t { kConnecting, kConnected, kReconnecting, kClosed };
const char* natsLinkStateName(NatsLinkState state);

struct NatsHeader {
  std::string name;
  std::string value;
};

struct NatsInbound {
  enum class Kind : uint8_t { kMessage, kReply, kState };
  Kind kind = Kind::kMessage;
  uint64_t sub_id = 0;      // kMessage: the id given to subscribe()
  uint64_t request_id = 0;  // kReply: the id given to request()
  std::string subject;
  std::string reply;  // kMessage: where the sender wants an answer ("" = none)
  std::string data;
  std::vector<NatsHeader> headers;
  // kReply: "503" when no one listens on the subject (JetStream down or no stream).
  std::string status;
  NatsLinkState state = NatsLinkState::kConnecting;  // kState

  // The value of header `name` (case-insensitive), or nullptr.
  const std::string* header(std::string_view name) const;
};

class NatsLink {
 public:
  // Starts the link thread and begins connecting in the background (never blocks on the
  // network): until connected, posted operations wait in cnats' reconnect buffer.
  static Result<std::unique_ptr<NatsLink>> start(NatsLinkOptions options,
                                                 MetricsRegistry& registry);
  ~NatsLink();
  NatsLink(const NatsLink&) = delete;
  NatsLink& operator=(const NatsLink&) = delete;

  // ---- loop thread: each returns false when the outbound queue is full (counted) ----
  // With a queue group, each message goes to one member of the group (over every
  // connection that subscribed with the same subject and group name).
  bool subscribe(uint64_t sub_id, std::string subject, std::string queue_group = {});
  bool unsubscribe(uint64_t sub_id);
  bool publish(std::string subject, std::string data, std::vector<NatsHeader> headers = {});
  bool request(uint64_t request_id, std::string subject, std::string data,
               std::vector<NatsHeader> headers = {});

  // Readable when inbound items are waiting; the loop then calls takeInbound().
  int wakeFd() const;
  // Moves every waiting item into `out` (appended) and clears the wake-up.
  void takeInbound(std::vector<NatsInbound>& out);

  NatsLinkState state() const;
  // Bytes cnats holds that the server has not received yet (socket buffer or, while
  // disconnected, the reconnect buffer).
  int64_t pendingBytes() const;

 private:
  friend struct NatsCallbacks;
  struct Op;
  struct Shared;  // what cnats callbacks may touch; outlives the link until cnats is done
  struct SubClosure;
  struct ConnClosure;

  NatsLink(NatsLinkOptions options, MetricsRegistry& registry);
  bool post(Op op);
  void run();
  void apply(Op& op);
  void publishFailed(const Op& op);
  Status connect();
  bool openConnection();
  void closeConnection();

  NatsLinkOptions options_;
  std::shared_ptr<Shared> shared_;

  std::mutex out_mu_;
  std::condition_variable out_cv_;
  std::deque<Op> out_queue_;
  size_t out_queue_bytes_ = 0;
  bool stopping_ = false;
  std::thread thread_;

  // Link thread only.
  struct Conn;
  std::unique_ptr<Conn> conn_;
  // What the loop subscribed: id -> (subject, queue group).
  std::unordered_map<uint64_t, std::pair<std::string, std::string>> desired_;
  std::string inbox_prefix_;  // of the current connection
  std::vector<std::unique_ptr<ConnClosure>> conn_closures_;

  Counter& dropped_queue_full_;
  Counter& dropped_publish_failed_;
  Counter& dropped_subscribe_failed_;
};

}  // namespace wsfleet
