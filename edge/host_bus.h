#pragma once
// The message path between the worker processes of one edge host (standalone mode: no
// NATS). Each worker listens on an abstract Unix stream socket named after the host's
// edge (storage directory and port) and its worker index, and keeps one outbound
// connection to every sibling. Messages are length-prefixed; each link has a bounded
// output buffer (over it, messages to that sibling are dropped and counted) so a stuck
// sibling can never grow memory or block the loop.
//
// Stream sockets rather than datagrams: a Unix datagram receiver queues at most
// net.unix.max_dgram_qlen messages (10 by default), far below one fan-out burst.

#include <ev.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace wsfleet {

class HostBus {
 public:
  using Handler = std::function<void(std::string_view message)>;
  // Drop reasons: "bus_peer_down" (sibling not listening: restarting), "bus_peer_full"
  // (its link buffer is full), "bus_malformed" (bad length on an inbound link).
  using DropCounter = std::function<void(const char* reason)>;

  struct Options {
    std::string scope;  // names this host's edge: siblings share it
    int index = 0;
    int count = 1;
    size_t max_buffered_bytes = 16u << 20;  // per outbound link
    size_t max_message_bytes = 64u << 20;
  };

  static Result<std::unique_ptr<HostBus>> open(struct ev_loop* loop, Options options,
                                               Handler on_message, DropCounter on_drop);
  ~HostBus();
  HostBus(const HostBus&) = delete;
  HostBus& operator=(const HostBus&) = delete;

  // Queues `message` to every sibling (never blocks; drops are counted per sibling).
  void broadcast(std::string_view message);
  size_t bufferedBytes() const;
  int connectedPeers() const;

 private:
  struct Link;
  HostBus(struct ev_loop* loop, Options options, Handler on_message, DropCounter on_drop);
  Status listen();
  static void onAccept(struct ev_loop* loop, ev_io* watcher, int revents);
  static void onLinkEvent(struct ev_loop* loop, ev_io* watcher, int revents);
  void acceptAll();
  bool connectPeer(Link& link);
  void sendTo(Link& link, std::string_view header, std::string_view message);
  void flush(Link& link);
  void rearm(Link& link, int events);
  // Outbound link readable: true (and the link closed) when the sibling went away.
  bool peerClosed(Link& link);
  void readFrom(Link& link);
  void closeLink(Link& link);

  struct ev_loop* loop_;
  Options options_;
  Handler on_message_;
  DropCounter on_drop_;
  UniqueFd listen_fd_;
  ev_io accept_watcher_{};
  std::vector<std::unique_ptr<Link>> peers_;    // outbound, index = sibling index
  std::vector<std::unique_ptr<Link>> inbound_;  // accepted from siblings
  std::vector<std::unique_ptr<Link>> closed_;   // freed after the current callback
};

// A stable name for one edge host's bus: the same for every worker of an edge, different
// for two edges on one machine.
std::string hostBusScope(const std::string& storage_dir, uint16_t ws_port);

}  // namespace wsfleet
