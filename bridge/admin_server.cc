#include "bridge/admin_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

namespace wsfleet {

namespace {

constexpr size_t kMaxHeadBytes = 8192;
constexpr size_t kMaxClients = 64;
constexpr int64_t kRequestDeadlineMs = 5000;
constexpr int64_t kAcceptPauseMs = 100;

const char* reasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

}  // namespace

AdminServer::AdminServer(UniqueFd listener, Handler handler, MetricsRegistry& registry)
    : listener_(std::move(listener)),
      handler_(std::move(handler)),
      refused_(registry.counter("wsfleet_admin_connections_refused_total",
                                "Admin connections closed unanswered (too many at once)")) {}

Result<std::unique_ptr<AdminServer>> AdminServer::listen(const ListenAddress& where,
                                                         Handler handler,
                                                         MetricsRegistry& registry) {
  const bool v6 = where.host.find(':') != std::string::npos;
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Status(Code::kInternal, "socket_failed", std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage addr{};
  socklen_t len = 0;
  const std::string host = where.host == "localhost" ? "127.0.0.1" : where.host;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(where.port);
    inet_pton(AF_INET6, host.c_str(), &a->sin6_addr);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(where.port);
    inet_pton(AF_INET, host.c_str(), &a->sin_addr);
    len = sizeof *a;
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(fd.get(), 64) != 0) {
    return Status(Code::kUnavailable, "admin_listen_failed",
                  "admin listener " + where.host + ":" + std::to_string(where.port) + ": " +
                      std::strerror(errno));
  }
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(fd), std::move(handler), registry));
}

void AdminServer::pollFds(std::vector<pollfd>& out, int64_t now_mono_ms) const {
  if (now_mono_ms >= paused_until_ms_) out.push_back({listener_.get(), POLLIN, 0});
  for (const auto& c : clients_) {
    const bool reading = c->out.empty() || c->lingering;
    out.push_back({c->fd.get(), static_cast<short>(reading ? POLLIN : POLLOUT), 0});
  }
}

void AdminServer::onEvents(const std::vector<pollfd>& fds, int64_t now_mono_ms) {
  std::vector<std::unique_ptr<Client>> keep;
  keep.reserve(clients_.size());
  for (auto& c : clients_) {
    short revents = 0;
    for (const pollfd& p : fds) {
      if (p.fd == c->fd.get()) revents = p.revents;
    }
    bool alive = true;
    if (revents & (POLLERR | POLLHUP | POLLNVAL)) {
      alive = false;
    } else if ((revents & POLLIN) && c->lingering) {
      alive = discard(*c);
    } else if (revents & POLLIN) {
      alive = read(*c);
    } else if (revents & POLLOUT) {
      alive = write(*c);
    }
    if (alive && now_mono_ms >= c->deadline_ms) alive = false;  // too slow: dropped
    if (alive) keep.push_back(std::move(c));
  }
  clients_ = std::move(keep);
  for (const pollfd& p : fds) {
    if (p.fd == listener_.get() && (p.revents & POLLIN)) accept(now_mono_ms);
  }
}

void AdminServer::accept(int64_t now_mono_ms) {
  for (;;) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) {
      // Out of descriptors: the listener stays readable, so it is left out of the poll
      // for a moment instead of spinning on it.
      if (errno == EMFILE || errno == ENFILE) {
        refused_.inc();
        paused_until_ms_ = now_mono_ms + kAcceptPauseMs;
      }
      return;
    }
    if (clients_.size() >= kMaxClients) {
      refused_.inc();
      continue;  // closed by UniqueFd
    }
    auto c = std::make_unique<Client>();
    c->fd = std::move(fd);
    c->deadline_ms = now_mono_ms + kRequestDeadlineMs;
    clients_.push_back(std::move(c));
  }
}

bool AdminServer::read(Client& c) {
  char buf[4096];
  bool eof = false;
  for (;;) {
    const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n == 0) {
      eof = true;  // a client may send its request and half-close: it still gets an answer
      break;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    c.in.append(buf, static_cast<size_t>(n));
    if (c.in.size() > kMaxHeadBytes + 4) break;
  }
  const size_t end = c.in.find("\r\n\r\n");
  if (end == std::string::npos || end > kMaxHeadBytes) {
    if (c.in.size() > kMaxHeadBytes) {
      answer(c, {431, "text/plain; charset=utf-8", "request head too large\n"});
      c.linger = !eof;  // unread bytes: closing now would reset the answer away
      return write(c);
    }
    if (!eof) return true;  // more to come
    if (c.in.empty()) return false;
    answer(c, {400, "text/plain; charset=utf-8", "incomplete request head\n"});
    return write(c);
  }
  const std::string_view head(c.in.data(), end);
  const size_t line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || line.substr(sp2 + 1).rfind("HTTP/1.", 0) != 0) {
    answer(c, {400, "text/plain; charset=utf-8", "malformed request line\n"});
  } else if (line.substr(0, sp1) != "GET") {
    answer(c, {405, "text/plain; charset=utf-8", "only GET\n"});
  } else {
    std::string path(line.substr(sp1 + 1, sp2 - sp1 - 1));
    path = path.substr(0, path.find('?'));
    answer(c, handler_(path));
  }
  return write(c);
}

void AdminServer::answer(Client& c, const AdminAnswer& a) {
  c.out = "HTTP/1.1 " + std::to_string(a.status) + " " + reasonPhrase(a.status) +
          "\r\nContent-Type: " + a.content_type +
          "\r\nContent-Length: " + std::to_string(a.body.size()) +
          "\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n" + a.body;
  c.sent = 0;
}

bool AdminServer::write(Client& c) {
  while (c.sent < c.out.size()) {
    const ssize_t n =
        ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    c.sent += static_cast<size_t>(n);
  }
  if (!c.linger) return false;  // answered: close
  // The client is still sending what we refused to read: closing with unread data would
  // make the kernel reset the connection, and the client could lose the answer. Half-close
  // and read to its end (or the deadline) instead.
  ::shutdown(c.fd.get(), SHUT_WR);
  c.lingering = true;
  return true;
}

bool AdminServer::discard(Client& c) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n == 0) return false;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
  }
}

}  // namespace wsfleet
