#pragma once
// The network side of one edge worker: the libwebsockets context with two vhosts (the
// client WebSocket listener and the admin HTTP listener), the service loop, the worker
// tick and signal-driven shutdown. It implements Transport for EdgeService.

#include <ev.h>
#include <libwebsockets.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "common/metrics.h"
#include "common/status.h"
#include "edge/edge_config.h"
#include "edge/edge_service.h"
#include "edge/host_bus.h"
#include "edge/lingering_close.h"
#include "edge/ws_listener.h"

namespace wsfleet {

// Owns an lws_context (destroyed with lws_context_destroy).
struct LwsContextDeleter {
  void operator()(lws_context* ctx) const { lws_context_destroy(ctx); }
};
using LwsContextPtr = std::unique_ptr<lws_context, LwsContextDeleter>;

// Owns a libev loop (destroyed with ev_loop_destroy, after the lws context).
struct EvLoopDeleter {
  void operator()(struct ev_loop* loop) const { ev_loop_destroy(loop); }
};
using EvLoopPtr = std::unique_ptr<struct ev_loop, EvLoopDeleter>;

// Per-session memory lws allocates (zeroed, never constructed) for each connection: it
// only points at objects we own.
struct WsSession {
  Connection* conn;
};
struct AdminRequest;
struct AdminSession {
  AdminRequest* request;
  uint64_t deferred_ticket;  // waiting for EdgeServer::answerHttp (0: not)
};

// Which of the host's worker processes this is. Worker i serves the admin listener on
// admin.listen's port + i; every worker shares the WebSocket port (SO_REUSEPORT).
struct WorkerSlot {
  int index = 0;
  int count = 1;
  int restarts = 0;         // times the supervisor restarted this slot's worker
  bool supervised = false;  // a supervisor process is the parent
};

class EdgeServer final : public Transport {
 public:
  static Result<std::unique_ptr<EdgeServer>> create(const EdgeConfig& config,
                                                    WorkerSlot slot = {});
  ~EdgeServer() override;

  // Serves until requestStop() (SIGINT, a second SIGTERM, or the end of a drain, which
  // SIGTERM or POST /admin/drain starts); then closes every client still here with 1001
  // (waiting a bounded time for the close handshakes) and returns the process exit code.
  // SIGHUP reloads the configuration file.
  int run();
  // Called on the loop thread (signal watchers run there too).
  void requestStop();

  // Transport.
  void wantWrite(Connection& conn) override;
  void kill(Connection& conn) override;
  void resetOnClose(Connection& conn) override;
  size_t frameHeadroom() const override { return LWS_PRE; }
  void toPeers(const PeerMessage& message) override;
  bool hasPeers() const override { return bus_ != nullptr; }
  void drainHost() override;
  void answerHttp(uint64_t ticket, HttpResponse response) override;

  // Called from the lws protocol callbacks (ws_glue.cc, admin_http.cc).
  EdgeService& service() { return *service_; }
  int onWebSocketEvent(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int onAdminEvent(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  // Writes what the connections queued during this loop iteration (see wantWrite); the
  // loop runs it before it blocks again.
  void flushWrites();
  // Writes the response now, or (deferred) remembers the request until answerHttp.
  int answerOrWait(lws* wsi, AdminSession* session, HttpResponse response);

 private:
  EdgeServer(const EdgeConfig& config, WorkerSlot slot);
  Status start();
  static void onTick(lws_sorted_usec_list_t* sul);
  void scheduleTick();
  static void onStopSignal(struct ev_loop* loop, ev_signal* watcher, int revents);
  static void onReloadSignal(struct ev_loop* loop, ev_signal* watcher, int revents);
  static void onWakeup(struct ev_loop* loop, ev_timer* watcher, int revents);
  static void onRegionReadable(struct ev_loop* loop, ev_io* watcher, int revents);
  static void onPrepare(struct ev_loop* loop, ev_prepare* watcher, int revents);
  // Writes the queued frames of an established connection (one coalesced write); false
  // when the write failed. Shared by WRITEABLE and flushWrites().
  bool writeQueued(lws* wsi, Connection& conn);

  const EdgeConfig& config_;
  const WorkerSlot slot_;
  MetricsRegistry registry_;
  std::unique_ptr<EdgeService> service_;
  // lws runs on our libev loop (epoll): its default poll() loop costs O(connections) per
  // wakeup, which dominated fan-out CPU at 10k connections. Declared before context_ so
  // that the context is destroyed first.
  EvLoopPtr loop_;
  ev_signal sigterm_watcher_{};
  ev_signal sigint_watcher_{};
  ev_signal sighup_watcher_{};
  ev_timer wakeup_timer_{};  // bounds each loop pass while stopping
  ev_io region_watcher_{};   // the region's NATS link has something for this worker
  ev_prepare prepare_watcher_{};  // end of each loop iteration: flushWrites()
  std::vector<Connection*> to_flush_;  // connections with frames queued this iteration
  lws_protocols ws_protocols_[2] = {};  // lws keeps a pointer: lives as long as the context
  LwsContextPtr context_;
  std::unique_ptr<WsListener> listener_;  // after context_: closed before lws goes away
  std::unique_ptr<HostBus> bus_;          // to the host's other workers (count > 1)
  std::unique_ptr<LingeringClose> lingering_;
  Gauge* bus_buffered_ = nullptr;
  Gauge* bus_peers_ = nullptr;
  // Tokens verified at the upgrade, waiting for ESTABLISHED: lws frees the per-session
  // memory when it binds the ws protocol, so they cannot wait there.
  std::unordered_map<lws*, TokenClaims> pending_claims_;
  // Admin requests answered later (a region publish): ticket -> the request's wsi, and
  // the answers waiting for their WRITEABLE.
  std::unordered_map<uint64_t, lws*> deferred_http_;
  std::unordered_map<lws*, HttpResponse> http_answers_;
  struct Tick {
    lws_sorted_usec_list_t sul;  // first member: the callback casts back to Tick
    EdgeServer* server;
  } tick_{};
  bool stop_requested_ = false;
  // Reused for coalesced writes (one thread, one write at a time).
  std::string write_buffer_;
  static constexpr size_t kCoalesceBytes = 64 * 1024;
};

// Sends a complete HTTP response from inside an lws HTTP callback. Returns lws's
// convention: 0 to keep the connection, -1 to close it.
int writeHttpResponse(lws* wsi, const HttpResponse& response);

}  // namespace wsfleet
