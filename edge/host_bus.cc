#include "edge/host_bus.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#include "common/clock.h"

namespace wsfleet {

namespace {

// A sibling that is not listening (restarting) is retried at most this often: every
// message would otherwise cost a failed connect().
constexpr int64_t kReconnectIntervalMs = 200;
constexpr size_t kReadChunk = 256 * 1024;

sockaddr_un busAddress(const std::string& scope, int index, socklen_t* length) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Abstract namespace (leading NUL): no file to clean up after a crash.
  const std::string name = "wsfleet-bus/" + scope + "/" + std::to_string(index);
  std::memcpy(addr.sun_path + 1, name.data(), std::min(name.size(), sizeof(addr.sun_path) - 2));
  *length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 +
                                    std::min(name.size(), sizeof(addr.sun_path) - 2));
  return addr;
}

uint64_t fnv1a(std::string_view text) {
  uint64_t hash = 0xcbf29ce484222325ull;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  return hash;
}

}  // namespace

struct HostBus::Link {
  HostBus* bus = nullptr;
  int peer = -1;  // sibling index (outbound links)
  UniqueFd fd;
  ev_io watcher{};
  bool writing = false;    // outbound: watcher armed for EV_WRITE as well as EV_READ
  std::string out;         // bytes accepted for sending, not yet written
  size_t out_sent = 0;     // prefix of `out` already written
  std::string in;          // inbound: bytes read, not yet a whole message
  int64_t retry_at_ms = 0;
  bool dead = false;
};

std::string hostBusScope(const std::string& storage_dir, uint16_t ws_port) {
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx",
                static_cast<unsigned long long>(fnv1a(storage_dir + ":" + std::to_string(ws_port))));
  return hex;
}

HostBus::HostBus(struct ev_loop* loop, Options options, Handler on_message, DropCounter on_drop)
    : loop_(loop),
      options_(std::move(options)),
      on_message_(std::move(on_message)),
      on_drop_(std::move(on_drop)) {}

HostBus::~HostBus() {
  ev_io_stop(loop_, &accept_watcher_);
  for (auto* links : {&peers_, &inbound_}) {
    for (auto& link : *links) {
      if (link) ev_io_stop(loop_, &link->watcher);
    }
  }
}

Result<std::unique_ptr<HostBus>> HostBus::open(struct ev_loop* loop, Options options,
                                               Handler on_message, DropCounter on_drop) {
  std::unique_ptr<HostBus> bus(
      new HostBus(loop, std::move(options), std::move(on_message), std::move(on_drop)));
  WSF_RETURN_IF_ERROR(bus->listen());
  bus->peers_.resize(static_cast<size_t>(bus->options_.count));
  for (int i = 0; i < bus->options_.count; ++i) {
    if (i == bus->options_.index) continue;
    auto link = std::make_unique<Link>();
    link->bus = bus.get();
    link->peer = i;
    // Connected now if the sibling listens: a restarted worker's connect is what tells
    // its siblings (acceptAll) to stop waiting out their reconnect interval.
    bus->connectPeer(*link);
    link->retry_at_ms = 0;
    bus->peers_[static_cast<size_t>(i)] = std::move(link);
  }
  return bus;
}

Status HostBus::listen() {
  socklen_t length = 0;
  sockaddr_un addr = busAddress(options_.scope, options_.index, &length);
  listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!listen_fd_.valid() ||
      ::bind(listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0 ||
      ::listen(listen_fd_.get(), 64) != 0) {
    // EADDRINUSE: a worker with this index of this edge still runs (or the port and
    // storage directory are used by two edges at once).
    return Status(Code::kUnavailable, "host_bus_listen",
                  std::string("cannot open the host bus socket of worker ") +
                      std::to_string(options_.index) + ": " + std::strerror(errno));
  }
  ev_io_init(&accept_watcher_, &HostBus::onAccept, listen_fd_.get(), EV_READ);
  accept_watcher_.data = this;
  ev_io_start(loop_, &accept_watcher_);
  return Status::ok();
}

void HostBus::onAccept(struct ev_loop*, ev_io* watcher, int) {
  static_cast<HostBus*>(watcher->data)->acceptAll();
}

void HostBus::acceptAll() {
  inbound_.erase(std::remove_if(inbound_.begin(), inbound_.end(),
                                [](const std::unique_ptr<Link>& l) { return l->dead; }),
                 inbound_.end());
  for (;;) {
    const int fd = ::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    // A sibling (re)started and listens: links that are down may reconnect at once,
    // before it serves clients, instead of dropping messages for up to the interval.
    for (auto& peer : peers_) {
      if (peer && !peer->fd.valid()) peer->retry_at_ms = 0;
    }
    auto link = std::make_unique<Link>();
    link->bus = this;
    link->fd.reset(fd);
    ev_io_init(&link->watcher, &HostBus::onLinkEvent, fd, EV_READ);
    link->watcher.data = link.get();
    ev_io_start(loop_, &link->watcher);
    inbound_.push_back(std::move(link));
  }
}

bool HostBus::connectPeer(Link& link) {
  const int64_t now = nowMonoMs();
  if (now < link.retry_at_ms) return false;
  link.retry_at_ms = now + kReconnectIntervalMs;
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return false;
  socklen_t length = 0;
  sockaddr_un addr = busAddress(options_.scope, link.peer, &length);
  // Unix stream connects complete at once (or fail with ECONNREFUSED/EAGAIN).
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0) return false;
  const int buffer = 4 << 20;
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &buffer, sizeof(buffer));
  link.fd = std::move(fd);
  link.out.clear();
  link.out_sent = 0;
  link.writing = false;
  // Read-armed for good: a sibling never writes here, so readable means it closed (died),
  // and the link is dropped then rather than at the next send, which would lose that
  // message even if the sibling was restarted meanwhile.
  ev_io_init(&link.watcher, &HostBus::onLinkEvent, link.fd.get(), EV_READ);
  link.watcher.data = &link;
  ev_io_start(loop_, &link.watcher);
  return true;
}

void HostBus::broadcast(std::string_view message) {
  char header[4];
  const auto n = static_cast<uint32_t>(message.size());
  for (int shift = 24, i = 0; shift >= 0; shift -= 8, ++i) {
    header[i] = static_cast<char>(n >> shift);
  }
  for (auto& link : peers_) {
    if (!link) continue;
    if (!link->fd.valid() && !connectPeer(*link)) {
      on_drop_("bus_peer_down");
      continue;
    }
    sendTo(*link, std::string_view(header, sizeof(header)), message);
  }
}

void HostBus::sendTo(Link& link, std::string_view header, std::string_view message) {
  const size_t pending = link.out.size() - link.out_sent;
  if (pending + header.size() + message.size() > options_.max_buffered_bytes) {
    on_drop_("bus_peer_full");
    return;
  }
  if (pending == 0) {
    // Nothing queued: try to write it now, keeping only what the socket did not take.
    iovec parts[2] = {{const_cast<char*>(header.data()), header.size()},
                      {const_cast<char*>(message.data()), message.size()}};
    msghdr msg{};
    msg.msg_iov = parts;
    msg.msg_iovlen = 2;
    // MSG_NOSIGNAL: a sibling that died must not kill this process with SIGPIPE.
    const ssize_t written = ::sendmsg(link.fd.get(), &msg, MSG_NOSIGNAL);
    if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      closeLink(link);
      on_drop_("bus_peer_down");
      return;
    }
    const size_t done = written > 0 ? static_cast<size_t>(written) : 0;
    if (done == header.size() + message.size()) return;
    link.out.clear();
    link.out_sent = 0;
    if (done < header.size()) {
      link.out.append(header.substr(done));
      link.out.append(message);
    } else {
      link.out.append(message.substr(done - header.size()));
    }
  } else {
    link.out.append(header);
    link.out.append(message);
  }
  if (!link.writing) {
    link.writing = true;
    rearm(link, EV_READ | EV_WRITE);
  }
}

void HostBus::flush(Link& link) {
  while (link.out_sent < link.out.size()) {
    const ssize_t written =
        ::send(link.fd.get(), link.out.data() + link.out_sent, link.out.size() - link.out_sent,
               MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      closeLink(link);
      on_drop_("bus_peer_down");
      return;
    }
    link.out_sent += static_cast<size_t>(written);
  }
  link.out.clear();
  link.out_sent = 0;
  link.writing = false;
  rearm(link, EV_READ);
}

void HostBus::rearm(Link& link, int events) {
  ev_io_stop(loop_, &link.watcher);
  ev_io_set(&link.watcher, link.fd.get(), events);
  ev_io_start(loop_, &link.watcher);
}

bool HostBus::peerClosed(Link& link) {
  char byte = 0;
  const ssize_t got = ::recv(link.fd.get(), &byte, 1, MSG_DONTWAIT);
  if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
    return false;
  }
  const bool lost = link.out.size() > link.out_sent;
  closeLink(link);
  if (lost) on_drop_("bus_peer_down");
  return true;
}

void HostBus::onLinkEvent(struct ev_loop*, ev_io* watcher, int revents) {
  auto* link = static_cast<Link*>(watcher->data);
  HostBus* bus = link->bus;
  if (link->peer >= 0) {
    if ((revents & EV_READ) && bus->peerClosed(*link)) return;
    if (revents & EV_WRITE) bus->flush(*link);
  } else {
    bus->readFrom(*link);
  }
}

void HostBus::readFrom(Link& link) {
  for (;;) {
    const size_t had = link.in.size();
    link.in.resize(had + kReadChunk);
    const ssize_t got = ::recv(link.fd.get(), link.in.data() + had, kReadChunk, 0);
    link.in.resize(had + (got > 0 ? static_cast<size_t>(got) : 0));
    if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      closeLink(link);  // the sibling went away; it reconnects when it is back
      return;
    }
    if (got < 0 || static_cast<size_t>(got) < kReadChunk) break;
  }
  size_t pos = 0;
  while (link.in.size() - pos >= 4) {
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(link.in[pos + i]);
    if (n > options_.max_message_bytes) {
      on_drop_("bus_malformed");
      closeLink(link);
      return;
    }
    if (link.in.size() - pos - 4 < n) break;
    on_message_(std::string_view(link.in.data() + pos + 4, n));
    pos += 4 + n;
  }
  link.in.erase(0, pos);
}

void HostBus::closeLink(Link& link) {
  ev_io_stop(loop_, &link.watcher);
  link.fd.reset();
  link.writing = false;
  link.out.clear();
  link.out_sent = 0;
  link.in.clear();
  if (link.peer < 0) link.dead = true;  // inbound: freed at the next accept
}

size_t HostBus::bufferedBytes() const {
  size_t total = 0;
  for (const auto& link : peers_) {
    if (link) total += link->out.size() - link->out_sent;
  }
  return total;
}

int HostBus::connectedPeers() const {
  int n = 0;
  for (const auto& link : peers_) n += (link && link->fd.valid()) ? 1 : 0;
  return n;
}

}  // namespace wsfleet
