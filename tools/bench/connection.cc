#include "tools/bench/connection.h"

#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace wsfleet::bench {
namespace {

constexpr size_t kMaxHead = 16 * 1024;
constexpr uint64_t kMaxPayload = 16u << 20;
// The shared buffer grows to hold a large carried frame plus one more recv.
constexpr size_t kRecvChunk = 256 * 1024;

uint32_t xorshift(uint32_t& s) {
  s ^= s << 13;
  s ^= s >> 17;
  s ^= s << 5;
  return s;
}

}  // namespace

uint64_t monotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

bool Connection::start(IoContext& io, Fail* why) {
  io_ = &io;
  const int family = io.target.ss_family;
  fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    *why = (errno == EMFILE || errno == ENFILE) ? Fail::kTooManyFiles : Fail::kConnectError;
    state_ = State::kClosed;
    return false;
  }
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (io.have_source && family == AF_INET) {
    // Defer the port choice to connect(): the 4-tuple, not the source port alone, must be
    // unique, so each source address carries far more than 28k connections.
    setsockopt(fd_, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&io.source), sizeof io.source) != 0) {
      *why = Fail::kSourceAddress;
      ::close(fd_);
      fd_ = -1;
      state_ = State::kClosed;
      return false;
    }
  }
  mask_state_ = io.mask_seed ^ (global_index_ * 2654435761u) ^ 0xA5A5A5A5u;
  if (mask_state_ == 0) mask_state_ = 1;
  const sockaddr_storage& to = publisher ? io.publish_target : io.target;
  const socklen_t to_len = publisher ? io.publish_target_len : io.target_len;
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to), to_len) != 0 &&
      errno != EINPROGRESS) {
    const int err = errno;
    *why = err == ECONNREFUSED ? Fail::kConnectRefused
           : (err == EADDRNOTAVAIL || err == EADDRINUSE) ? Fail::kSourceAddress
                                                         : Fail::kConnectError;
    ::close(fd_);
    fd_ = -1;
    state_ = State::kClosed;
    return false;
  }
  state_ = State::kConnecting;
  epoll_event ev{};
  ev.events = EPOLLOUT | EPOLLIN;
  ev.data.ptr = this;
  want_write_ = true;
  epoll_ctl(io.epoll_fd, EPOLL_CTL_ADD, fd_, &ev);
  return true;
}

void Connection::setWantWrite(IoContext& io, bool want) {
  if (want == want_write_ || fd_ < 0) return;
  want_write_ = want;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
  ev.data.ptr = this;
  epoll_ctl(io.epoll_fd, EPOLL_CTL_MOD, fd_, &ev);
}

void Connection::fail(IoContext& io, Fail why) {
  if (state_ == State::kClosed) return;
  close(io, false);
  io.events->onFailure(*this, why);
}

void Connection::close(IoContext& io, bool polite) {
  if (state_ == State::kClosed) return;
  if (polite && state_ == State::kOpen && fd_ >= 0) {
    io.adapter->goodbye(*this);
    static constexpr char kNormal[2] = {0x03, static_cast<char>(0xE8)};  // 1000
    send(io, WsOpcode::kClose, std::string_view(kNormal, 2));
    ::send(fd_, wbuf_.data() + woff_, wbuf_.size() - woff_, MSG_NOSIGNAL | MSG_DONTWAIT);
  }
  state_ = State::kClosed;
  if (fd_ >= 0) {
    epoll_ctl(io.epoll_fd, EPOLL_CTL_DEL, fd_, nullptr);
    ::close(fd_);
    fd_ = -1;
  }
  std::string().swap(wbuf_);
  std::string().swap(pending_in_);
  std::string().swap(fragments_);
  woff_ = 0;
}

void Connection::send(IoContext& io, WsOpcode op, std::string_view payload) {
  if (state_ == State::kClosed) return;
  appendFrame(wbuf_, op, payload, true, xorshift(mask_state_));
  if (!in_dirty_) {
    in_dirty_ = true;
    io.dirty.push_back(this);
  }
}

void Connection::flush(IoContext& io) {
  in_dirty_ = false;
  if (fd_ < 0 || state_ == State::kConnecting) return;
  while (woff_ < wbuf_.size()) {
    const ssize_t n =
        ::send(fd_, wbuf_.data() + woff_, wbuf_.size() - woff_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      woff_ += static_cast<size_t>(n);
      io.bytes_out += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      setWantWrite(io, true);
      return;
    }
    fail(io, state_ == State::kOpen ? Fail::kClosedByServer : Fail::kClosedBeforeReady);
    return;
  }
  wbuf_.clear();
  woff_ = 0;
  setWantWrite(io, false);
}

void Connection::onConnected(IoContext& io) {
  int err = 0;
  socklen_t len = sizeof err;
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    fail(io, err == ECONNREFUSED ? Fail::kConnectRefused
             : (err == EADDRNOTAVAIL || err == EADDRINUSE) ? Fail::kSourceAddress
                                                           : Fail::kConnectError);
    return;
  }
  state_ = State::kHandshake;
  wbuf_ = publisher ? io.publish_request_prefix : io.request_prefix;
  io.adapter->appendHeaders(*this, wbuf_);
  wbuf_ += "\r\n";
  flush(io);
}

void Connection::onEvent(IoContext& io, uint32_t events) {
  if (state_ == State::kConnecting) {
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) onConnected(io);
    return;
  }
  if ((events & EPOLLOUT) != 0) flush(io);
  if (state_ == State::kClosed) return;
  if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) onReadable(io);
}

void Connection::onReadable(IoContext& io) {
  // Carry-over first, then read behind it, so frames are always contiguous.
  const size_t carried = pending_in_.size();
  if (io.rbuf.size() < carried + kRecvChunk) io.rbuf.resize(carried + kRecvChunk);
  if (carried > 0) std::memcpy(io.rbuf.data(), pending_in_.data(), carried);
  const ssize_t n = ::recv(fd_, io.rbuf.data() + carried, io.rbuf.size() - carried, 0);
  ++io.recv_calls;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  if (n <= 0) {
    fail(io, state_ == State::kOpen && session_ready ? Fail::kClosedByServer
                                                     : Fail::kClosedBeforeReady);
    return;
  }
  io.bytes_in += static_cast<uint64_t>(n);
  io.now_ns = monotonicNs();
  size_t len = carried + static_cast<size_t>(n);
  char* data = io.rbuf.data();
  size_t used = 0;
  if (state_ == State::kHandshake) {
    used = consumeHandshake(io, data, len);
    if (used == SIZE_MAX) return;
    if (state_ == State::kHandshake) {
      pending_in_.assign(data, len);
      return;
    }
  }
  const size_t more = consumeFrames(io, data + used, len - used);
  if (more == SIZE_MAX) return;
  used += more;
  if (used < len) {
    pending_in_.assign(data + used, len - used);
  } else if (!pending_in_.empty()) {
    pending_in_.clear();
  }
}

size_t Connection::consumeHandshake(IoContext& io, char* data, size_t len) {
  std::string_view in(data, len);
  const size_t end = in.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (len > kMaxHead) {
      fail(io, Fail::kBadHandshake);
      return SIZE_MAX;
    }
    return 0;
  }
  // "HTTP/1.1 101 Switching Protocols"
  int status = 0;
  if (in.size() > 12 && in.starts_with("HTTP/1.")) {
    std::from_chars(in.data() + 9, in.data() + 12, status);
  }
  if (status != 101) {
    fail(io, status == 0 ? Fail::kBadHandshake : failForHttpStatus(status));
    return SIZE_MAX;
  }
  state_ = State::kOpen;
  io.adapter->onUpgraded(*this, *io.events);
  return end + 4;
}

size_t Connection::consumeFrames(IoContext& io, char* data, size_t len) {
  size_t pos = 0;
  while (pos < len && state_ == State::kOpen) {
    auto* p = reinterpret_cast<uint8_t*>(data + pos);
    const WsFrame f = parseFrame(p, len - pos, kMaxPayload);
    if (f.state == ParseState::kNeedMore) break;
    if (f.state == ParseState::kError) {
      fail(io, Fail::kProtocolError);
      return SIZE_MAX;
    }
    char* payload = data + pos + f.header_bytes;
    if (f.masked) applyMask(reinterpret_cast<uint8_t*>(payload), f.payload_bytes, f.mask_key);
    ++io.frames_in;
    handleFrame(io, f.opcode, f.fin,
                std::string_view(payload, static_cast<size_t>(f.payload_bytes)));
    pos += f.totalBytes();
  }
  return state_ == State::kClosed ? SIZE_MAX : pos;
}

void Connection::handleFrame(IoContext& io, WsOpcode op, bool fin, std::string_view payload) {
  switch (op) {
    case WsOpcode::kPing:
      send(io, WsOpcode::kPong, payload);
      return;
    case WsOpcode::kPong:
      return;
    case WsOpcode::kClose:
      fail(io, session_ready ? Fail::kClosedByServer : Fail::kClosedBeforeReady);
      return;
    case WsOpcode::kContinuation:
      if (fragments_.empty() && frag_op_ == WsOpcode::kContinuation) {
        fail(io, Fail::kProtocolError);
        return;
      }
      fragments_.append(payload);
      if (fin) {
        std::string whole;
        whole.swap(fragments_);
        const WsOpcode first = frag_op_;
        frag_op_ = WsOpcode::kContinuation;
        io.adapter->onFrame(*this, first, whole, *io.events);
      }
      return;
    case WsOpcode::kText:
    case WsOpcode::kBinary:
      if (!fin) {
        // Servers fragment rarely (large messages only): assembling may allocate.
        frag_op_ = op;
        fragments_.assign(payload);
        return;
      }
      io.adapter->onFrame(*this, op, payload, *io.events);
      return;
  }
}

}  // namespace wsfleet::bench
