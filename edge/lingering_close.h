#pragma once
// Lingering close: after we close a connection whose peer may still be sending (a message
// over the size cap, a protocol error), the socket is kept open on a duplicate descriptor,
// its write side shut down (our close frame and a FIN go out), and whatever the peer still
// sends is read and discarded until it closes too, or for at most a few seconds. Closing
// with unread data would make the kernel answer with a reset that can overtake the close
// frame, and the client would never learn why it was closed. (The same idea as a web
// server's lingering close.)

#include <ev.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <unordered_map>

namespace wsfleet {

class LingeringClose {
 public:
  struct Options {
    double timeout_s = 2.0;
    size_t max_sockets = 1024;        // beyond this, closed at once (reset if unread data)
    size_t max_bytes_per_socket = 1u << 20;
  };
  LingeringClose(struct ev_loop* loop, Options options);
  ~LingeringClose();
  LingeringClose(const LingeringClose&) = delete;
  LingeringClose& operator=(const LingeringClose&) = delete;

  // Takes over a duplicate of `fd` (the caller's descriptor is closed by its owner as
  // usual). Returns false when it did not linger (full, or dup failed).
  bool adopt(int fd);
  size_t size() const { return sockets_.size(); }

 private:
  struct Socket;
  static void onReadable(struct ev_loop* loop, ev_io* watcher, int revents);
  static void onTimeout(struct ev_loop* loop, ev_timer* watcher, int revents);
  void finish(Socket* socket);

  struct ev_loop* loop_;
  Options options_;
  std::unordered_map<Socket*, std::unique_ptr<Socket>> sockets_;
};

}  // namespace wsfleet
