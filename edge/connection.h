#pragma once
// One client WebSocket connection as the edge sees it. Owned by EdgeService; the lws
// per-session struct only points here (we never own an lws*). Everything in this object
// is touched only by the worker's event-loop thread.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/channel.h"
#include "common/timer_wheel.h"
#include "common/token.h"
#include "edge/connection_channels.h"
#include "edge/inbound_limits.h"
#include "edge/out_frame.h"
#include "edge/outbound_queue.h"

namespace wsfleet {

struct TenantConfig;

// ping_timer doubles as the close deadline once a close is requested.
// Channel patterns a connection may use. Most tokens carry no `subs`/`pubs` and use the
// tenant's defaults, which are then shared, not copied into every connection.
class Permissions {
 public:
  void useDefaults(const std::vector<ChannelPattern>& defaults) {
    own_.clear();
    active_ = &defaults;
  }
  void useOwn(std::vector<ChannelPattern> patterns) {
    own_ = std::move(patterns);
    active_ = &own_;
  }
  bool allows(std::string_view channel) const {
    return active_ != nullptr && matchesAny(*active_, channel);
  }

 private:
  std::vector<ChannelPattern> own_;
  const std::vector<ChannelPattern>* active_ = nullptr;  // own_ or the tenant's defaults
};

enum class TimerTag {
  kPing = 1,
  kToken = 2,
  kCloseDeadline = 3,
  kSlowConsumer = 4,
  kDrainHint = 5,
};

class Connection {
 public:
  Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Identity, stamped from the verified token; never from client frames.
  std::string session;  // unique id, also the presence record key
  uint64_t serial = 0;  // unique within the worker: tells a reused address apart
  std::string tenant;
  std::string user;
  std::string device;
  std::string peer;             // remote address, for logs
  int64_t connected_at_ms = 0;  // wall clock
  const TenantConfig* tenant_config = nullptr;
  Permissions subs;          // effective subscribe permissions
  Permissions pubs;          // effective publish permissions
  int64_t token_exp_ms = 0;  // wall clock
  bool refresh_notice_sent = false;

  // Channel name -> index in the hub's subscriber vector for that channel (O(1) removal).
  ChannelSlots channels;
  // Region mode: durable channels whose subscribe waits for the region's history (it
  // counts toward the channel cap; an unsubscribe meanwhile removes it).
  ChannelSet subscribing;

  // Outbound queue: bounded by bytes and count, with priorities (EdgeService::enqueue).
  OutboundQueue out;

  // Queued for EdgeServer's end-of-iteration write (edge_server.cc, flushWrites).
  bool flush_queued = false;

  // WebSocket-level keepalive.
  bool ping_due = false;       // a ping frame is waiting for WRITEABLE
  bool awaiting_pong = false;  // a ping was sent and not answered yet

  // Close requested from outside the connection's own callback: the glue sends the close
  // frame on the next WRITEABLE. 0 = none.
  int close_code = 0;
  std::string close_reason;
  int peer_close_code = 0;  // from the peer's close frame (1005: it had no code)

  // Inbound message reassembly (fragments / partial RECEIVE callbacks).
  std::string rx;

  TimerNode ping_timer;
  TimerNode token_timer;
  TimerNode backpressure_timer;  // armed while the queue is over its high-water mark
  TimerNode drain_timer;         // when the `reconnect` hint goes out during a drain

  ConnectionLimits limits;  // command rate and refusal count (InboundLimits)

  void* transport = nullptr;  // the lws wsi, non-owning
};

}  // namespace wsfleet
