#pragma once
// The network side of one edge worker: the libwebsockets context with two vhosts (the
// client WebSocket listener and the admin HTTP listener), the service loop, the worker
// tick and signal-driven shutdown. It implements Transport for EdgeService.

#include <libwebsockets.h>

#include <atomic>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/metrics.h"
#include "common/status.h"
#include "edge/edge_config.h"
#include "edge/edge_service.h"

namespace wsfleet {

// Owns an lws_context (destroyed with lws_context_destroy).
struct LwsContextDeleter {
  void operator()(lws_context* ctx) const { lws_context_destroy(ctx); }
};
using LwsContextPtr = std::unique_ptr<lws_context, LwsContextDeleter>;

// Per-session memory lws allocates (zeroed, never constructed) for each connection: it
// only points at objects we own.
struct WsSession {
  Connection* conn;
};
struct AdminRequest;
struct AdminSession {
  AdminRequest* request;
};

class EdgeServer final : public Transport {
 public:
  static Result<std::unique_ptr<EdgeServer>> create(const EdgeConfig& config);
  ~EdgeServer() override;

  // Serves until requestStop(); then closes every client with 1001 (waiting a bounded
  // time for the close handshakes) and returns the process exit code.
  int run();
  // Async-signal-safe.
  void requestStop();

  // Transport.
  void wantWrite(Connection& conn) override;
  void kill(Connection& conn) override;
  size_t frameHeadroom() const override { return LWS_PRE; }

  // Called from the lws protocol callbacks (ws_glue.cc, admin_http.cc).
  EdgeService& service() { return *service_; }
  int onWebSocketEvent(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);
  int onAdminEvent(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len);

 private:
  explicit EdgeServer(const EdgeConfig& config);
  Status start();
  static void onTick(lws_sorted_usec_list_t* sul);
  void scheduleTick();

  const EdgeConfig& config_;
  MetricsRegistry registry_;
  std::unique_ptr<EdgeService> service_;
  LwsContextPtr context_;
  // Tokens verified at the upgrade, waiting for ESTABLISHED: lws frees the per-session
  // memory when it binds the ws protocol, so they cannot wait there.
  std::unordered_map<lws*, TokenClaims> pending_claims_;
  struct Tick {
    lws_sorted_usec_list_t sul;  // first member: the callback casts back to Tick
    EdgeServer* server;
  } tick_{};
  std::atomic<bool> stop_requested_{false};
  // Reused for coalesced writes (one thread, one write at a time).
  std::string write_buffer_;
  static constexpr size_t kCoalesceBytes = 64 * 1024;
};

// Sends a complete HTTP response from inside an lws HTTP callback. Returns lws's
// convention: 0 to keep the connection, -1 to close it.
int writeHttpResponse(lws* wsi, const HttpResponse& response);

}  // namespace wsfleet
