#include "edge/ws_listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"

namespace wsfleet {

namespace {

// Accepts per wakeup: enough to empty a burst, bounded so a connect storm cannot starve
// the established connections served by the same loop.
constexpr int kAcceptsPerWakeup = 256;
// Pause after running out of descriptors or buffers: the condition lasts until
// connections close, and retrying at once would spin.
constexpr double kRetryAfterErrorS = 0.1;

Status sysError(const char* reason, const std::string& what) {
  return Status(Code::kUnavailable, reason, what + ": " + std::strerror(errno));
}

}  // namespace

Result<UniqueFd> openReusePortListener(const ListenAddress& address, int backlog) {
  const std::string host = address.host == "localhost" ? "127.0.0.1" : address.host;
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  if (host.find(':') != std::string::npos) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(address.port);
    if (inet_pton(AF_INET6, host.c_str(), &sin6->sin6_addr) != 1) {
      return Status(Code::kConfig, "bad_listen_address", "not an IPv6 address: " + host);
    }
    family = AF_INET6;
    length = sizeof(sockaddr_in6);
  } else {
    auto* sin = reinterpret_cast<sockaddr_in*>(&storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(address.port);
    if (inet_pton(AF_INET, host.c_str(), &sin->sin_addr) != 1) {
      return Status(Code::kConfig, "bad_listen_address", "not an IPv4 address: " + host);
    }
    length = sizeof(sockaddr_in);
  }
  const std::string where = host + ":" + std::to_string(address.port);
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return sysError("listen_failed", "socket for " + where);
  const int one = 1;
  if (setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
    return sysError("listen_failed", "SO_REUSEPORT on " + where);
  }
  if (family == AF_INET6) {
    // An IPv6 address means IPv6 only; bind "0.0.0.0" separately for IPv4.
    setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  }
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    return sysError("listen_failed", "cannot bind " + where);
  }
  if (::listen(fd.get(), backlog) != 0) return sysError("listen_failed", "listen on " + where);
  return fd;
}

uint16_t boundPort(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0) return 0;
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<const sockaddr_in*>(&storage)->sin_port);
}

WsListener::WsListener(struct ev_loop* loop, lws_vhost* vhost, UniqueFd socket, Limits limits)
    : loop_(loop), vhost_(vhost), socket_(std::move(socket)), limits_(limits) {
  ev_io_init(&watcher_, &WsListener::onReadable, socket_.get(), EV_READ);
  watcher_.data = this;
  ev_timer_init(&retry_, &WsListener::onRetry, kRetryAfterErrorS, 0.0);
  retry_.data = this;
}

WsListener::~WsListener() { close(); }

void WsListener::start() {
  if (running_ || !socket_.valid()) return;
  running_ = true;
  ev_io_start(loop_, &watcher_);
}

void WsListener::stop() {
  running_ = false;
  ev_io_stop(loop_, &watcher_);
  ev_timer_stop(loop_, &retry_);
}

void WsListener::close() {
  stop();
  socket_.reset();
}

void WsListener::onReadable(struct ev_loop*, ev_io* watcher, int) {
  static_cast<WsListener*>(watcher->data)->acceptBatch();
}

void WsListener::onRetry(struct ev_loop*, ev_timer* watcher, int) {
  auto* self = static_cast<WsListener*>(watcher->data);
  if (self->running_) ev_io_start(self->loop_, &self->watcher_);
}

void WsListener::pause() {
  // Accepting again shortly (onRetry): until then new connections wait in the kernel's
  // listen queue, or go to another worker of the port.
  ev_io_stop(loop_, &watcher_);
  ev_timer_start(loop_, &retry_);
}

void WsListener::acceptBatch() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    // Full: the descriptors left are the worker's own (NATS, LMDB, admin), not clients'.
    if (limits_.connections != nullptr && limits_.max_connections > 0 &&
        limits_.connections->value() >= static_cast<int64_t>(limits_.max_connections)) {
      if (limits_.paused_full != nullptr) limits_.paused_full->inc();
      return pause();
    }
    const int fd = ::accept4(socket_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == ECONNABORTED || errno == EPROTO) continue;  // the peer gave up already
      if (limits_.paused_error != nullptr) limits_.paused_error->inc();
      logWarn("accept_failed", {{"error", std::strerror(errno)}});
      return pause();
    }
    // Frames are coalesced by us; Nagle would only hold small ones back for an ACK.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    // lws owns the descriptor from here, also when adoption fails (it closes it then).
    if (lws_adopt_socket_vhost(vhost_, fd) == nullptr) {
      if (limits_.adopt_failed) limits_.adopt_failed();
      continue;
    }
  }
}

}  // namespace wsfleet
