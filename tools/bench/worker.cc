#include "tools/bench/worker.h"

#include <arpa/inet.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "common/token.h"
#include "tools/bench/adapter.h"
#include "tools/bench/connection.h"
#include "tools/bench/proc_stats.h"

namespace wsfleet::bench {
namespace {

constexpr uint64_t kNsPerSec = 1000000000u;
constexpr size_t kBurstBacklog = 256 * 1024;  // stop feeding a publisher above this
constexpr uint64_t kBurstInFlight = 256;
constexpr size_t kPacedBacklog = 4u << 20;    // paced sends are skipped above this
constexpr uint64_t kQuietNs = 500 * 1000000ull;  // drain ends after this long without input

bool writeAll(int fd, const void* data, size_t len) {
  const auto* p = static_cast<const char*>(data);
  while (len > 0) {
    const ssize_t n = ::write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

std::string buildRequestPrefix(const BenchOptions& opts, const TargetUrl& target,
                               const Adapter& adapter) {
  std::string r = "GET " + adapter.requestTarget(target.path) + " HTTP/1.1\r\n";
  r += "Host: " + target.host + ":" + std::to_string(target.port) + "\r\n";
  r += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  // The accept hash is not checked: the bench trusts its own loopback server.
  r += "Sec-WebSocket-Key: d3NmbGVldC1iZW5jaC1rZQ==\r\nSec-WebSocket-Version: 13\r\n";
  if (!adapter.subprotocol().empty()) {
    r += "Sec-WebSocket-Protocol: ";
    r += adapter.subprotocol();
    r += "\r\n";
  }
  for (const std::string& h : opts.headers) r += h + "\r\n";
  return r;
}

class Worker final : public ConnEvents {
 public:
  Worker(const BenchOptions& opts, const TargetUrl& target, const WorkerPlan& plan,
         std::unique_ptr<Adapter> adapter, int ctl_fd, int report_fd)
      : opts_(opts), plan_(plan), adapter_(std::move(adapter)), ctl_fd_(ctl_fd),
        report_fd_(report_fd) {
    io_.adapter = adapter_.get();
    io_.events = this;
    io_.target = target.addr;
    io_.target_len = target.addr_len;
    io_.request_prefix = buildRequestPrefix(opts, target, *adapter_);
    io_.publish_target = target.addr;
    io_.publish_target_len = target.addr_len;
    io_.publish_request_prefix = io_.request_prefix;
    if (!opts.publish_url.empty()) {
      // Checked (loopback, well-formed) by main before any worker started.
      if (auto publish = resolveTarget(opts.publish_url); publish.isOk()) {
        io_.publish_target = publish->addr;
        io_.publish_target_len = publish->addr_len;
        io_.publish_request_prefix = buildRequestPrefix(opts, *publish, *adapter_);
      }
    }
    io_.mask_seed = static_cast<uint32_t>(::getpid()) * 2246822519u + plan.worker_index;
    if (!plan.source_ip.empty()) {
      io_.have_source = true;
      io_.source.sin_family = AF_INET;
      inet_pton(AF_INET, plan.source_ip.c_str(), &io_.source.sin_addr);
    }
    report_.worker = plan.worker_index;
    rng_.seed(io_.mask_seed);
  }

  int run();

  // ConnEvents
  void onSessionReady(Connection& c) override;
  void onSubscribed(Connection& c) override;
  void onDelivery(Connection& c, std::string_view frame) override;
  void onPublishAck(Connection&, bool ok) override {
    ++(ok ? report_.publish_acks : report_.publish_errors);
  }
  void onFailure(Connection& c, Fail why) override;

 private:
  Status prepare();
  void startMore();
  void settle(Connection& c, bool ok, Fail why);
  void pollOnce(int timeout_ms);
  void readControl();
  bool allSettled() const { return settled_ == conns_.size(); }
  void runSetup(uint64_t deadline);
  void runConnectPhase();
  void runPublishPhase();
  void publishPaced(uint64_t now);
  void publishBurst();
  void publishOne(Connection& from);
  bool sendReport(uint32_t phase);

  const BenchOptions& opts_;
  WorkerPlan plan_;
  std::unique_ptr<Adapter> adapter_;
  int ctl_fd_;
  int report_fd_;
  int epoll_fd_ = -1;
  IoContext io_;
  std::deque<Connection> conns_;   // stable addresses: epoll holds pointers
  std::vector<Connection*> publishers_;
  std::vector<std::string> channel_topics_;
  std::vector<std::string> inbox_topics_;
  std::vector<Connection*> flushing_;
  size_t next_start_ = 0;
  size_t inflight_ = 0;
  size_t settled_ = 0;
  bool go_ = false;
  bool quit_ = false;
  uint64_t run_start_ = 0;
  uint64_t seq_ = 0;
  std::string payload_;
  std::mt19937_64 rng_;
  WorkerReport report_;
  int ctl_tag_ = 0;        // address used as the epoll tag of the control pipe
};

Status Worker::prepare() {
  std::optional<TokenKey> key;
  if (!opts_.hs256_secret.empty()) {
    key.emplace();
    key->kid = opts_.kid;
    key->alg = TokenAlg::kHS256;
    key->secret = opts_.hs256_secret;
  }
  const int64_t now_s = static_cast<int64_t>(std::time(nullptr));
  auto make_token = [&](Connection& c, const std::string& user) -> Status {
    if (!opts_.tokens.empty()) {
      c.token = opts_.tokens[c.globalIndex() % opts_.tokens.size()];
    } else if (key) {
      TokenToSign t;
      t.claims.sub = user;
      t.claims.tnt = opts_.tenant;
      t.claims.exp = now_s + opts_.token_ttl_s;
      t.claims.iat = now_s;
      t.aud = opts_.audience;
      WSF_ASSIGN_OR_RETURN(c.token, signToken(*key, t));
    }
    return Status::ok();
  };
  const uint32_t total = opts_.connections;
  for (uint32_t i = 0; i < plan_.count; ++i) {
    const uint32_t g = plan_.first_conn + i;
    Connection& c = conns_.emplace_back(g, i);
    WSF_RETURN_IF_ERROR(make_token(c, "bench-u" + std::to_string(g)));
  }
  for (uint32_t j = 0; j < plan_.publishers; ++j) {
    const uint32_t g = total + j;
    Connection& c = conns_.emplace_back(g, plan_.count + j);
    c.publisher = true;
    WSF_RETURN_IF_ERROR(make_token(c, "bench-p" + std::to_string(j)));
  }
  for (uint32_t ch = 0; ch < std::max<uint32_t>(opts_.channels, 1); ++ch) {
    channel_topics_.push_back(adapter_->channelTopic(ch));
  }
  if (opts_.scenario == Scenario::kDirect) {
    inbox_topics_.reserve(total);
    for (uint32_t u = 0; u < total; ++u) inbox_topics_.push_back(adapter_->inboxTopic(u));
  }
  payload_.assign(std::max<size_t>(opts_.payload_bytes, kStampBytes), 'x');
  return Status::ok();
}

void Worker::startMore() {
  while (inflight_ < opts_.concurrency && next_start_ < conns_.size()) {
    Connection& c = conns_[next_start_++];
    ++report_.attempted;
    c.started_ns = monotonicNs();
    Fail why = Fail::kConnectError;
    ++inflight_;
    if (!c.start(io_, &why)) settle(c, false, why);
  }
}

void Worker::settle(Connection& c, bool ok, Fail why) {
  if (c.settled) return;
  c.settled = true;
  ++settled_;
  if (inflight_ > 0) --inflight_;
  if (ok) {
    ++report_.ready;
    report_.handshake.record(monotonicNs() - c.started_ns);
    if (c.publisher) publishers_.push_back(&c);
  } else {
    c.failed = true;
    ++report_.failures[static_cast<size_t>(why)];
    c.close(io_, false);
  }
}

void Worker::onSessionReady(Connection& c) {
  c.session_ready = true;
  if (opts_.scenario == Scenario::kConnect || c.publisher) {
    settle(c, true, Fail::kCount);
    return;
  }
  if (opts_.scenario == Scenario::kDirect) {
    if (!adapter_->directNeedsSubscription()) {
      settle(c, true, Fail::kCount);
      return;
    }
    c.pending_subs = 1;
    adapter_->subscribe(c, inbox_topics_[c.globalIndex()], 0);
    return;
  }
  c.pending_subs = 1;
  const uint32_t ch = c.globalIndex() % static_cast<uint32_t>(channel_topics_.size());
  adapter_->subscribe(c, channel_topics_[ch], ch);
}

void Worker::onSubscribed(Connection& c) {
  if (c.pending_subs > 0 && --c.pending_subs == 0) settle(c, true, Fail::kCount);
}

void Worker::onDelivery(Connection&, std::string_view frame) {
  const uint64_t now = io_.now_ns;
  ++report_.delivered;
  if (report_.first_delivery_ns == 0) report_.first_delivery_ns = now;
  report_.last_delivery_ns = now;
  uint64_t sent = 0;
  if (findStamp(frame, &sent) && sent <= now) {
    report_.latency.record(now - sent);
  } else {
    ++report_.delivered_unstamped;
  }
}

void Worker::onFailure(Connection& c, Fail why) {
  if (!c.settled) {
    settle(c, false, why);
    return;
  }
  if (!c.failed) {
    c.failed = true;
    ++report_.failures[static_cast<size_t>(why == Fail::kClosedBeforeReady
                                               ? Fail::kClosedByServer
                                               : why)];
  }
  c.close(io_, false);
}

void Worker::readControl() {
  char buf[16];
  const ssize_t n = ::read(ctl_fd_, buf, sizeof buf);
  if (n <= 0) {
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    quit_ = go_ = true;  // the parent is gone
    epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, ctl_fd_, nullptr);
    return;
  }
  for (ssize_t i = 0; i < n; ++i) {
    if (buf[i] == kCmdGo) go_ = true;
    if (buf[i] == kCmdQuit) quit_ = go_ = true;
  }
}

void Worker::pollOnce(int timeout_ms) {
  epoll_event events[512];
  const int n = epoll_wait(epoll_fd_, events, 512, timeout_ms);
  for (int i = 0; i < n; ++i) {
    if (events[i].data.ptr == &ctl_tag_) {
      readControl();
      continue;
    }
    static_cast<Connection*>(events[i].data.ptr)->onEvent(io_, events[i].events);
  }
  flushing_.swap(io_.dirty);
  for (Connection* c : flushing_) c->flush(io_);
  flushing_.clear();
}

void Worker::runSetup(uint64_t deadline) {
  const uint64_t t0 = monotonicNs();
  while (!allSettled() && !quit_) {
    startMore();
    if (allSettled()) break;
    const uint64_t now = monotonicNs();
    if (now >= deadline) {
      for (Connection& c : conns_) {
        if (!c.settled) settle(c, false, Fail::kSetupTimeout);
      }
      break;
    }
    pollOnce(10);
  }
  report_.setup_ns = monotonicNs() - t0;
}

void Worker::runConnectPhase() {
  const uint64_t deadline =
      monotonicNs() + static_cast<uint64_t>(opts_.setup_timeout_s * kNsPerSec);
  runSetup(deadline);
}

void Worker::publishOne(Connection& from) {
  const uint64_t n = seq_++;
  writeStamp(payload_.data(), monotonicNs());
  if (opts_.scenario == Scenario::kFanout) {
    adapter_->publish(from, channel_topics_[n % channel_topics_.size()], payload_, n);
  } else {
    const uint32_t to = static_cast<uint32_t>(rng_() % inbox_topics_.size());
    adapter_->direct(from, inbox_topics_[to], payload_, n);
  }
  ++report_.published;
}

// Who sends: fanout uses the publisher connections in turn; direct picks a random ready
// connection of this worker.
void Worker::publishPaced(uint64_t now) {
  const double share = opts_.scenario == Scenario::kFanout
                           ? opts_.rate
                           : opts_.rate / std::max<uint32_t>(opts_.procs, 1);
  // The first message goes at t = 0, so a window of D seconds at rate R sends R * D
  // messages (sending at 1/R, 2/R, ... would send one fewer).
  const auto due =
      static_cast<uint64_t>(share * static_cast<double>(now - run_start_) / kNsPerSec) + 1;
  uint64_t budget = 10000;  // after a stall, catch up gradually
  while (report_.published + report_.publish_skipped < due && budget-- > 0) {
    Connection* from = nullptr;
    if (opts_.scenario == Scenario::kFanout) {
      if (publishers_.empty()) return;
      from = publishers_[(report_.published + report_.publish_skipped) % publishers_.size()];
    } else {
      from = &conns_[rng_() % conns_.size()];
    }
    if (from->state() != Connection::State::kOpen || from->pendingOut() > kPacedBacklog) {
      ++report_.publish_skipped;
      continue;
    }
    publishOne(*from);
  }
}

void Worker::publishBurst() {
  // Servers that acknowledge publishes are kept at most kBurstInFlight ahead, so the window
  // measures what the server sustains rather than how deep its input queue is.
  if (adapter_->publishAcked() &&
      report_.published - report_.publish_acks - report_.publish_errors >= kBurstInFlight) {
    return;
  }
  if (opts_.scenario == Scenario::kFanout) {
    for (Connection* p : publishers_) {
      for (int i = 0; i < 64 && p->state() == Connection::State::kOpen &&
                      p->pendingOut() < kBurstBacklog;
           ++i) {
        publishOne(*p);
      }
    }
    return;
  }
  for (int i = 0; i < 256; ++i) {
    Connection& from = conns_[rng_() % conns_.size()];
    if (from.state() != Connection::State::kOpen || from.pendingOut() >= kBurstBacklog) continue;
    publishOne(from);
  }
}

void Worker::runPublishPhase() {
  run_start_ = monotonicNs();
  const uint64_t window_end = run_start_ + static_cast<uint64_t>(opts_.duration_s * kNsPerSec);
  const uint64_t drain_end = window_end + static_cast<uint64_t>(opts_.drain_s * kNsPerSec);
  const bool sends = opts_.scenario == Scenario::kDirect || !publishers_.empty();
  for (;;) {
    const uint64_t now = monotonicNs();
    if (quit_) break;
    if (now < window_end) {
      if (sends) {
        if (opts_.burst) {
          publishBurst();
        } else {
          publishPaced(now);
        }
      }
      pollOnce(opts_.burst ? 0 : 1);
      continue;
    }
    const uint64_t last = std::max(report_.last_delivery_ns, window_end);
    if (now >= drain_end || now - last >= kQuietNs) break;
    pollOnce(5);
  }
  report_.run_start_ns = run_start_;
  report_.run_end_ns = window_end;
}

bool Worker::sendReport(uint32_t phase) {
  report_.phase = phase;
  report_.bytes_in = io_.bytes_in;
  report_.bytes_out = io_.bytes_out;
  report_.recv_calls = io_.recv_calls;
  report_.frames_in = io_.frames_in;
  report_.cpu_us = selfAndChildrenCpuMicros();
  return writeAll(report_fd_, &report_, sizeof report_);
}

int Worker::run() {
  if (Status s = prepare(); !s.isOk()) {
    fprintf(stderr, "wsfleet-bench worker %u: %s\n", plan_.worker_index, s.toString().c_str());
    return 2;
  }
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  io_.epoll_fd = epoll_fd_;
  epoll_event cev{};
  cev.events = EPOLLIN;
  cev.data.ptr = &ctl_tag_;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, ctl_fd_, &cev);

  if (opts_.scenario != Scenario::kConnect) {
    runSetup(monotonicNs() + static_cast<uint64_t>(opts_.setup_timeout_s * kNsPerSec));
  }
  if (!sendReport(1)) return 3;
  while (!go_) pollOnce(50);
  if (!quit_) {
    switch (opts_.scenario) {
      case Scenario::kConnect: {
        const uint64_t t0 = monotonicNs();
        runConnectPhase();
        report_.run_start_ns = t0;
        report_.run_end_ns = monotonicNs();
        break;
      }
      case Scenario::kFanout:
      case Scenario::kDirect:
        runPublishPhase();
        break;
      case Scenario::kIdle:
        report_.run_start_ns = report_.run_end_ns = monotonicNs();
        break;
    }
  }
  if (!sendReport(2)) return 3;
  // Hold the connections until the parent has read the server's counters.
  while (!quit_) pollOnce(50);
  for (Connection& c : conns_) c.close(io_, true);
  ::close(epoll_fd_);
  return 0;
}

}  // namespace

void writeStamp(char* at, uint64_t ns) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::memcpy(at, "wsfb", 4);
  for (int i = 15; i >= 0; --i) {
    at[4 + i] = kHex[ns & 0xF];
    ns >>= 4;
  }
}

bool findStamp(std::string_view frame, uint64_t* ns) {
  const size_t at = frame.find("wsfb");
  if (at == std::string_view::npos || frame.size() - at < kStampBytes) return false;
  uint64_t v = 0;
  for (size_t i = at + 4; i < at + kStampBytes; ++i) {
    const char c = frame[i];
    uint64_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else {
      return false;
    }
    v = (v << 4) | d;
  }
  *ns = v;
  return true;
}

int runWorker(const BenchOptions& opts, const TargetUrl& target, const WorkerPlan& plan,
              int ctl_fd, int report_fd) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  signal(SIGPIPE, SIG_IGN);
  auto adapter = makeAdapter(opts);
  if (!adapter.isOk()) return 2;
  Worker w(opts, target, plan, std::move(adapter).value(), ctl_fd, report_fd);
  return w.run();
}

}  // namespace wsfleet::bench
