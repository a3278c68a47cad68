#include "edge/lingering_close.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace wsfleet {

struct LingeringClose::Socket {
  LingeringClose* owner = nullptr;
  int fd = -1;
  size_t discarded = 0;
  ev_io io{};
  ev_timer timer{};
};

LingeringClose::LingeringClose(struct ev_loop* loop, Options options)
    : loop_(loop), options_(options) {}

LingeringClose::~LingeringClose() {
  for (auto& [raw, socket] : sockets_) {
    ev_io_stop(loop_, &socket->io);
    ev_timer_stop(loop_, &socket->timer);
    ::close(socket->fd);
  }
}

bool LingeringClose::adopt(int fd) {
  if (fd < 0 || sockets_.size() >= options_.max_sockets) return false;
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return false;
  // Our close frame is already queued: the FIN goes after it.
  ::shutdown(copy, SHUT_WR);
  auto socket = std::make_unique<Socket>();
  socket->owner = this;
  socket->fd = copy;
  ev_io_init(&socket->io, &LingeringClose::onReadable, copy, EV_READ);
  socket->io.data = socket.get();
  ev_timer_init(&socket->timer, &LingeringClose::onTimeout, options_.timeout_s, 0.0);
  socket->timer.data = socket.get();
  ev_io_start(loop_, &socket->io);
  ev_timer_start(loop_, &socket->timer);
  Socket* raw = socket.get();
  sockets_.emplace(raw, std::move(socket));
  return true;
}

void LingeringClose::onReadable(struct ev_loop*, ev_io* watcher, int) {
  auto* socket = static_cast<Socket*>(watcher->data);
  char sink[16384];
  for (;;) {
    const ssize_t n = ::recv(socket->fd, sink, sizeof(sink), MSG_DONTWAIT);
    if (n > 0) {
      socket->discarded += static_cast<size_t>(n);
      if (socket->discarded > socket->owner->options_.max_bytes_per_socket) break;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    break;  // EOF (the peer closed too) or an error
  }
  socket->owner->finish(socket);
}

void LingeringClose::onTimeout(struct ev_loop*, ev_timer* watcher, int) {
  auto* socket = static_cast<Socket*>(watcher->data);
  socket->owner->finish(socket);
}

void LingeringClose::finish(Socket* socket) {
  ev_io_stop(loop_, &socket->io);
  ev_timer_stop(loop_, &socket->timer);
  ::close(socket->fd);
  sockets_.erase(socket);  // frees `socket`: libev allows it once the watchers are stopped
}

}  // namespace wsfleet
