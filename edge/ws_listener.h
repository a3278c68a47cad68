#pragma once
// The client listener of one worker: its own listening socket with SO_REUSEPORT (every
// worker of the host binds the same port and the kernel spreads connections over them),
// watched on the worker's libev loop. Accepted sockets are handed to libwebsockets with
// lws_adopt_socket_vhost: lws's own listener cannot share a port between processes.

#include <ev.h>
#include <libwebsockets.h>

#include <cstdint>
#include <functional>
#include <string>

#include "common/metrics.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "edge/edge_config.h"

namespace wsfleet {

// Opens a non-blocking TCP listening socket bound to `address` with SO_REUSEADDR and
// SO_REUSEPORT. Port 0 picks a free port (see boundPort).
Result<UniqueFd> openReusePortListener(const ListenAddress& address, int backlog);
uint16_t boundPort(int fd);

class WsListener {
 public:
  // What the listener is told of its worker: how many connections it holds now and may
  // hold, and where its pauses are counted (any of them may be null).
  struct Limits {
    const Gauge* connections = nullptr;
    uint64_t max_connections = 0;
    Counter* paused_error = nullptr;
    Counter* paused_full = nullptr;
    // A socket libwebsockets would not take (it closes it): counted by the worker.
    std::function<void()> adopt_failed;
  };
  WsListener(struct ev_loop* loop, lws_vhost* vhost, UniqueFd socket, Limits limits);
  ~WsListener();
  WsListener(const WsListener&) = delete;
  WsListener& operator=(const WsListener&) = delete;

  void start();
  // Stops accepting (drain, shutdown); queued connections stay in the kernel backlog and
  // are reset when the socket closes, so a draining worker sends new clients elsewhere.
  void stop();
  void close();
  int fd() const { return socket_.get(); }

 private:
  static void onReadable(struct ev_loop* loop, ev_io* watcher, int revents);
  static void onRetry(struct ev_loop* loop, ev_timer* watcher, int revents);
  void acceptBatch();
  void pause();

  struct ev_loop* loop_;
  lws_vhost* vhost_;
  UniqueFd socket_;
  ev_io watcher_{};
  ev_timer retry_{};  // after EMFILE: pause accepting briefly instead of spinning
  bool running_ = false;
  Limits limits_;
};

}  // namespace wsfleet
