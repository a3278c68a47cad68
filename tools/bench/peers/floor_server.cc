// wsfleet-bench-floor: the reference floor for fan-out benchmarks, not a product.
//
// A paced fan-out (one frame queued per subscriber at a time) costs every server at least
// one send() per delivery to a distinct TCP socket, and on loopback the kernel charges the
// receiver's TCP work to the sending core as well. This server does that irreducible work
// and nothing else, so a run against it in the same session as wsfleet and the other peers
// shows how much of a peer's CPU per delivery the kernel alone takes.
//
// It speaks exactly the `ws` peer protocol of PEER_PROTOCOL.md (the bench's `--target ws`
// drives it): one thread, level-triggered epoll, libc and OpenSSL (SHA-1 for the
// handshake) only. Each publish builds its frame once and writes it with one send() per
// subscriber, at once: no batching, no timers, no per-subscriber copy unless the socket is
// full, in which case the rest waits in that connection's buffer until EPOLLOUT.
//
// Usage: wsfleet-bench-floor [--port P]   (prints "listening <port>" once ready)

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

namespace wsfleet::bench {
namespace {

constexpr size_t kMaxHead = 8192;          // an upgrade request larger than this is refused
constexpr size_t kMaxClientFrame = 65535;  // 7- and 16-bit lengths only
constexpr size_t kMaxTopicBytes = 200;     // PEER_PROTOCOL.md, counted on the raw JSON text
constexpr size_t kRecvChunk = 64 * 1024;

struct Topic;

struct Conn {
  UniqueFd socket;
  int fd = -1;  // socket.get(), kept for the many send()/recv() calls
  bool upgraded = false;
  bool dead = false;  // closed, freed once the current epoll batch is done
  bool want_out = false;
  std::string in;      // bytes not yet parsed (an incomplete head or frame)
  std::string out;     // bytes the kernel did not take yet
  size_t out_off = 0;  // how much of `out` is already sent
  // Topics this connection is in, with its index in each topic's list, so that leaving
  // a topic is O(1) whatever the subscriber count.
  std::vector<std::pair<Topic*, size_t>> subs;
};

struct Topic {
  std::string name;  // raw JSON string contents, escapes kept as received
  std::vector<Conn*> conns;
};

// The string values of "op", "topic" and "data" in a flat JSON object, raw (escapes kept:
// they are copied into the outgoing frame unchanged, which is still valid JSON).
struct Fields {
  std::string_view op, topic, data;
  bool has_data = false;
};

// Reads a JSON string starting at s[i] == '"'; returns the index after the closing quote
// or npos, and its raw contents in `out`.
size_t readString(std::string_view s, size_t i, std::string_view& out) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == '"') {
      out = s.substr(i + 1, j - i - 1);
      return j + 1;
    } else if (static_cast<unsigned char>(s[j]) < 0x20) {
      return std::string_view::npos;
    }
  }
  return std::string_view::npos;
}

size_t skipSpace(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  return i;
}

// Only a top-level object whose values are strings or scalars is understood: the bench
// sends nothing else, and anything else is ignored as the protocol allows.
bool parseFields(std::string_view s, Fields& f) {
  size_t i = skipSpace(s, 0);
  if (i >= s.size() || s[i] != '{') return false;
  i = skipSpace(s, i + 1);
  if (i < s.size() && s[i] == '}') return true;
  while (i < s.size()) {
    std::string_view key, value;
    if (s[i] != '"' || (i = readString(s, i, key)) == std::string_view::npos) return false;
    i = skipSpace(s, i);
    if (i >= s.size() || s[i] != ':') return false;
    i = skipSpace(s, i + 1);
    if (i >= s.size()) return false;
    if (s[i] == '"') {
      if ((i = readString(s, i, value)) == std::string_view::npos) return false;
      if (key == "op") f.op = value;
      if (key == "topic") f.topic = value;
      if (key == "data") {
        f.data = value;
        f.has_data = true;
      }
    } else {
      if (s[i] == '{' || s[i] == '[') return false;
      while (i < s.size() && s[i] != ',' && s[i] != '}') ++i;
    }
    i = skipSpace(s, i);
    if (i >= s.size()) return false;
    if (s[i] == '}') return true;
    if (s[i] != ',') return false;
    i = skipSpace(s, i + 1);
  }
  return false;
}

// Appends an unmasked server frame header for a payload of n bytes.
void appendFrameHeader(std::string& b, uint8_t opcode, size_t n) {
  b.push_back(static_cast<char>(0x80 | opcode));
  if (n < 126) {
    b.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    b.push_back(static_cast<char>(126));
    b.push_back(static_cast<char>(n >> 8));
    b.push_back(static_cast<char>(n & 0xFF));
  } else {
    b.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) {
      b.push_back(static_cast<char>((static_cast<uint64_t>(n) >> shift) & 0xFF));
    }
  }
}

bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

// The Sec-WebSocket-Key of a GET upgrade request head, empty when the head is not one.
std::string_view upgradeKey(std::string_view head) {
  if (!head.starts_with("GET ")) return {};
  std::string_view key;
  bool websocket = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos + 2 < head.size()) {
    const size_t start = pos + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view line =
        head.substr(start, end == std::string_view::npos ? head.npos : end - start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = trim(line.substr(0, colon));
      const std::string_view value = trim(line.substr(colon + 1));
      if (ieq(name, "sec-websocket-key")) key = value;
      if (ieq(name, "upgrade")) websocket = ieq(value, "websocket");
    }
    pos = end;
  }
  return websocket ? key : std::string_view{};
}

std::string acceptFor(std::string_view key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string in(key);
  in += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(in.data()), in.size(), digest);
  unsigned char b64[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int n = EVP_EncodeBlock(b64, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
}

class FloorServer {
 public:
  // Topics hold raw pointers to connections: clear them before the connections go.
  ~FloorServer() {
    topics_.clear();
    graveyard_.clear();
    conns_.clear();
  }

  // Returns the bound port, or 0 after printing why it failed.
  int listen(int port) {
    epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
    listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    epoll_fd_ = epoll_.get();
    listen_fd_ = listen_.get();
    if (epoll_fd_ < 0 || listen_fd_ < 0) return fail("socket");
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      return fail("bind");
    }
    if (::listen(listen_fd_, 4096) != 0) return fail("listen");
    socklen_t len = sizeof addr;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the listening socket
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev) != 0) return fail("epoll_ctl");
    return ntohs(addr.sin_port);
  }

  void run() {
    std::vector<epoll_event> events(1024);
    rbuf_.resize(kRecvChunk);
    for (;;) {
      const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        std::perror("epoll_wait");
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Conn*>(events[i].data.ptr);
        if (c == nullptr) {
          acceptAll();
          continue;
        }
        if (c->dead) continue;
        if ((events[i].events & EPOLLOUT) != 0) flush(*c);
        if (!c->dead && (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) read(*c);
      }
      // Freed only now: a later event of the same batch may still point at it.
      for (Conn* c : graveyard_) freeConn(c);
      graveyard_.clear();
    }
  }

 private:
  int fail(const char* what) {
    std::perror(what);
    return 0;
  }

  void acceptAll() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // EAGAIN, or out of descriptors: the rest stay in the backlog for the next wakeup.
        return;
      }
      // Each delivery must leave at once as its own segment: that is what is measured.
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto owned = std::make_unique<Conn>();
      owned->socket.reset(fd);
      owned->fd = fd;
      Conn* c = owned.get();
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = c;
      if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) continue;  // `owned` closes it
      conns_.emplace(fd, std::move(owned));
    }
  }

  void read(Conn& c) {
    const ssize_t n = ::recv(c.fd, rbuf_.data(), rbuf_.size(), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n <= 0) {
      kill(c);
      return;
    }
    // Parse straight from the shared buffer; only a trailing partial piece is kept.
    std::string_view data(rbuf_.data(), static_cast<size_t>(n));
    if (!c.in.empty()) {
      c.in.append(data);
      data = c.in;
    }
    size_t used = 0;
    if (!c.upgraded) {
      const size_t end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (data.size() > kMaxHead) return kill(c);
        if (c.in.empty()) c.in.assign(data);
        return;
      }
      if (end + 4 > kMaxHead) return kill(c);
      const std::string_view key = upgradeKey(data.substr(0, end + 2));
      if (key.empty()) return kill(c);
      std::string reply =
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Accept: ";
      reply += acceptFor(key);
      reply += "\r\n\r\n";
      c.upgraded = true;
      write(c, reply);
      used = end + 4;
    }
    while (!c.dead) {
      const size_t frame = consumeFrame(c, data.substr(used));
      if (frame == 0) break;
      used += frame;
    }
    if (c.dead) return;
    if (used == data.size()) {
      c.in.clear();
    } else if (c.in.empty()) {
      c.in.assign(data.substr(used));
    } else {
      c.in.erase(0, used);
    }
  }

  // Handles one client frame at the front of d; returns its size, or 0 when incomplete
  // (or when the connection was closed).
  size_t consumeFrame(Conn& c, std::string_view d) {
    if (d.size() < 2) return 0;
    const auto b0 = static_cast<uint8_t>(d[0]);
    const auto b1 = static_cast<uint8_t>(d[1]);
    size_t len = b1 & 0x7F;
    size_t head = 2;
    if ((b1 & 0x80) == 0 || len == 127) {  // unmasked, or a 64-bit length: not a bench frame
      kill(c);
      return 0;
    }
    if (len == 126) {
      if (d.size() < 4) return 0;
      len = (static_cast<size_t>(static_cast<uint8_t>(d[2])) << 8) | static_cast<uint8_t>(d[3]);
      head = 4;
    }
    if (len > kMaxClientFrame) {
      kill(c);
      return 0;
    }
    if (d.size() < head + 4 + len) return 0;
    const auto* mask = reinterpret_cast<const uint8_t*>(d.data() + head);
    // Unmasked in place: the bytes are ours (the shared buffer or c.in).
    char* payload = const_cast<char*>(d.data()) + head + 4;
    for (size_t i = 0; i < len; ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
    const std::string_view p(payload, len);
    const bool fin = (b0 & 0x80) != 0;
    switch (b0 & 0x0F) {
      case 0x1:  // text: only whole ones, the bench never fragments
        if (fin) onText(c, p);
        break;
      case 0x8:  // close: answer with the same status, then drop
        scratch_.clear();
        appendFrameHeader(scratch_, 0x8, std::min<size_t>(len, 2));
        scratch_.append(p.substr(0, 2));
        ::send(c.fd, scratch_.data(), scratch_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        kill(c);
        return 0;
      case 0x9:  // ping
        if (len <= 125) {
          scratch_.clear();
          appendFrameHeader(scratch_, 0xA, len);
          scratch_.append(p);
          write(c, scratch_);
        }
        break;
      default:  // pong, binary, continuation: nothing the protocol needs
        break;
    }
    return head + 4 + len;
  }

  void onText(Conn& c, std::string_view text) {
    Fields f;
    if (!parseFields(text, f) || f.topic.empty() || f.topic.size() > kMaxTopicBytes) return;
    if (f.op == "sub") {
      subscribe(c, f.topic);
      scratch_.clear();
      const size_t n = std::strlen(R"({"op":"suback","topic":""})") + f.topic.size();
      appendFrameHeader(scratch_, 0x1, n);
      scratch_ += R"({"op":"suback","topic":")";
      scratch_ += f.topic;
      scratch_ += "\"}";
      write(c, scratch_);
    } else if (f.op == "unsub") {
      auto it = topics_.find(std::string(f.topic));
      if (it != topics_.end()) leave(c, it->second.get());
    } else if (f.op == "pub" && f.has_data) {
      auto it = topics_.find(std::string(f.topic));
      if (it == topics_.end()) return;
      // Built once per publish; the same bytes go to every subscriber.
      scratch_.clear();
      const size_t n =
          std::strlen(R"({"op":"msg","topic":"","data":""})") + f.topic.size() + f.data.size();
      appendFrameHeader(scratch_, 0x1, n);
      scratch_ += R"({"op":"msg","topic":")";
      scratch_ += f.topic;
      scratch_ += R"(","data":")";
      scratch_ += f.data;
      scratch_ += "\"}";
      // A failed send only marks its connection dead; the list does not change meanwhile.
      for (Conn* sub : it->second->conns) {
        if (!sub->dead) write(*sub, scratch_);
      }
    }
  }

  void subscribe(Conn& c, std::string_view name) {
    auto& slot = topics_[std::string(name)];
    if (!slot) {
      slot = std::make_unique<Topic>();
      slot->name = std::string(name);
    }
    Topic* t = slot.get();
    for (auto& [topic, index] : c.subs) {
      if (topic == t) return;  // subscribing twice is harmless
    }
    c.subs.emplace_back(t, t->conns.size());
    t->conns.push_back(&c);
  }

  void leave(Conn& c, Topic* t) {
    for (size_t i = 0; i < c.subs.size(); ++i) {
      if (c.subs[i].first != t) continue;
      const size_t index = c.subs[i].second;
      // Swap-remove, then tell the moved connection its new index.
      Conn* moved = t->conns.back();
      t->conns[index] = moved;
      t->conns.pop_back();
      if (moved != &c) {
        for (auto& [topic, idx] : moved->subs) {
          if (topic == t) idx = index;
        }
      }
      c.subs[i] = c.subs.back();
      c.subs.pop_back();
      // Empty topics go, so a long run with changing topics does not grow. The key is
      // copied: erasing destroys the topic that holds its name.
      if (t->conns.empty()) topics_.erase(std::string(t->name));
      return;
    }
  }

  // One send() when nothing is queued (the floor: one write per delivery); otherwise, or
  // for what the kernel did not take, the bytes wait in c.out for EPOLLOUT.
  void write(Conn& c, std::string_view bytes) {
    if (c.out.size() > c.out_off) {
      c.out.append(bytes);
      return;
    }
    const ssize_t n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return kill(c);
    const size_t sent = n < 0 ? 0 : static_cast<size_t>(n);
    if (sent == bytes.size()) return;
    c.out.assign(bytes.substr(sent));
    c.out_off = 0;
    setWantOut(c, true);
  }

  void flush(Conn& c) {
    while (c.out_off < c.out.size()) {
      const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR) continue;
        return kill(c);
      }
      c.out_off += static_cast<size_t>(n);
    }
    c.out.clear();
    c.out_off = 0;
    setWantOut(c, false);
  }

  void setWantOut(Conn& c, bool on) {
    if (c.want_out == on) return;
    c.want_out = on;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.ptr = &c;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  void kill(Conn& c) {
    if (c.dead) return;
    c.dead = true;
    graveyard_.push_back(&c);
  }

  // Leaves every topic, then frees the connection; its socket's close also removes it
  // from epoll.
  void freeConn(Conn* c) {
    while (!c->subs.empty()) leave(*c, c->subs.back().first);
    const int fd = c->fd;  // erase destroys *c
    conns_.erase(fd);
  }

  UniqueFd epoll_;
  UniqueFd listen_;
  int epoll_fd_ = -1;   // epoll_.get()
  int listen_fd_ = -1;  // listen_.get()
  std::unordered_map<int, std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, std::unique_ptr<Topic>> topics_;
  std::vector<Conn*> graveyard_;
  std::vector<char> rbuf_;
  std::string scratch_;  // the frame being built (one publish, one suback, one pong)
};

int parsePort(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--port") != 0) continue;
    if (i + 1 >= argc) break;
    char* end = nullptr;
    const long port = std::strtol(argv[i + 1], &end, 10);
    if (*argv[i + 1] == '\0' || *end != '\0' || port < 0 || port > 65535) {
      std::fprintf(stderr, "bad --port %s\n", argv[i + 1]);
      std::exit(2);
    }
    return static_cast<int>(port);
  }
  return 0;
}

}  // namespace
}  // namespace wsfleet::bench

int main(int argc, char** argv) {
  // Tens of thousands of connections need descriptors; take what the hard limit allows.
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  signal(SIGPIPE, SIG_IGN);
  wsfleet::bench::FloorServer server;
  const int port = server.listen(wsfleet::bench::parsePort(argc, argv));
  if (port == 0) return 1;
  std::printf("listening %d\n", port);
  std::fflush(stdout);
  server.run();
  return 1;
}
