#include "common/nats_link.h"

#include <nats/nats.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <random>
#include <utility>

#include "common/log.h"
#include "common/unique_fd.h"

namespace wsfleet {

namespace {

template <auto Destroy>
struct NatsDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p != nullptr) Destroy(p);
  }
};
using NatsOptionsPtr = std::unique_ptr<natsOptions, NatsDeleter<natsOptions_Destroy>>;
using NatsMsgPtr = std::unique_ptr<natsMsg, NatsDeleter<natsMsg_Destroy>>;
using NatsInboxPtr = std::unique_ptr<natsInbox, NatsDeleter<natsInbox_Destroy>>;

Status natsFailure(natsStatus s, const char* reason, std::string_view what) {
  return Status(Code::kUnavailable, reason, std::string(what) + ": " + natsStatus_GetText(s));
}

std::vector<NatsHeader> headersOf(natsMsg* msg) {
  std::vector<NatsHeader> out;
  const char** keys = nullptr;
  int count = 0;
  if (natsMsgHeader_Keys(msg, &keys, &count) != NATS_OK) return out;
  out.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    const char* value = nullptr;
    if (natsMsgHeader_Get(msg, keys[i], &value) == NATS_OK && value != nullptr) {
      out.push_back({keys[i], value});
    }
  }
  free(static_cast<void*>(keys));
  return out;
}

}  // namespace

const char* natsLinkStateName(NatsLinkState state) {
  switch (state) {
    case NatsLinkState::kConnecting:
      return "connecting";
    case NatsLinkState::kConnected:
      return "connected";
    case NatsLinkState::kReconnecting:
      return "reconnecting";
    case NatsLinkState::kClosed:
      return "closed";
  }
  return "unknown";
}

const std::string* NatsInbound::header(std::string_view name) const {
  for (const auto& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0) {
      return &h.value;
    }
  }
  return nullptr;
}

// Everything a cnats thread may touch. Held by shared_ptr from the link and from every
// closure handed to cnats, so a callback that runs late (cnats delivers on its own
// threads) never sees freed memory or a reused descriptor.
struct NatsLink::Shared {
  UniqueFd wake_fd;
  std::mutex mu;
  std::vector<NatsInbound> inbound;
  size_t max_inbound = 0;
  size_t max_inbound_bytes = 0;
  size_t inbound_bytes = 0;  // payload bytes in `inbound`
  std::atomic<NatsLinkState> state{NatsLinkState::kConnecting};
  std::atomic<int64_t> pending_bytes{0};
  int64_t reconnect_wait_ms = 0;
  int64_t reconnect_wait_max_ms = 0;
  std::mutex rng_mu;
  std::mt19937_64 rng{std::random_device{}()};

  Counter* dropped_inbound_full = nullptr;
  Counter* dropped_slow_consumer = nullptr;
  Counter* reconnects = nullptr;
  Counter* disconnects = nullptr;

  void push(NatsInbound item) {
    bool wake = false;
    {
      std::lock_guard lock(mu);
      // State changes always get through: a lost "connected" would leave the loop
      // believing the link is down (and skip the catch-up after a reconnect).
      const bool full =
          inbound.size() >= max_inbound || inbound_bytes + item.data.size() > max_inbound_bytes;
      if (full && item.kind != NatsInbound::Kind::kState) {
        dropped_inbound_full->inc();
        return;
      }
      wake = inbound.empty();
      inbound_bytes += item.data.size();
      inbound.push_back(std::move(item));
    }
    // One wake-up per batch: the loop takes everything at once.
    if (wake) {
      uint64_t one = 1;
      ssize_t n;
      do {
        n = ::write(wake_fd.get(), &one, sizeof one);
      } while (n < 0 && errno == EINTR);
    }
  }

  void setState(NatsLinkState next) {
    state.store(next, std::memory_order_release);
    NatsInbound item;
    item.kind = NatsInbound::Kind::kState;
    item.state = next;
    push(std::move(item));
  }
};

struct NatsLink::SubClosure {
  std::shared_ptr<Shared> shared;
  uint64_t sub_id = 0;
  std::string reply_prefix;  // the reply subscription's: "<inbox>."
};

// The closure of one cnats connection's callbacks. Owned by the link (never by a
// callback), so no path can free it twice; cnats' last callback marks it closed, and the
// link frees closed ones.
struct NatsLink::ConnClosure {
  std::shared_ptr<Shared> shared;
  std::atomic<bool> closed{false};
};

struct NatsLink::Op {
  enum class Kind : uint8_t { kSubscribe, kUnsubscribe, kPublish, kRequest };
  Kind kind = Kind::kPublish;
  uint64_t id = 0;  // sub id or request id
  std::string subject;
  std::string data;
  std::vector<NatsHeader> headers;
};

// cnats objects, touched only by the link thread.
struct NatsLink::Conn {
  natsConnection* nc = nullptr;
  natsSubscription* inbox_sub = nullptr;
  std::unordered_map<uint64_t, natsSubscription*> subs;
};

// cnats callbacks. They run on cnats threads: they only build an inbound item and push it.
struct NatsCallbacks {
  static void message(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
    NatsMsgPtr msg(raw);
    auto* c = static_cast<NatsLink::SubClosure*>(closure);
    NatsInbound item;
    item.kind = NatsInbound::Kind::kMessage;
    item.sub_id = c->sub_id;
    item.subject = natsMsg_GetSubject(msg.get());
    if (const char* reply = natsMsg_GetReply(msg.get())) item.reply = reply;
    item.data.assign(natsMsg_GetData(msg.get()),
                     static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
    item.headers = headersOf(msg.get());
    c->shared->push(std::move(item));
  }

  static void reply(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
    NatsMsgPtr msg(raw);
    auto* c = static_cast<NatsLink::SubClosure*>(closure);
    std::string_view subject = natsMsg_GetSubject(msg.get());
    const std::string& prefix = c->reply_prefix;
    if (subject.size() <= prefix.size() || subject.substr(0, prefix.size()) != prefix) return;
    uint64_t id = 0;
    for (char ch : subject.substr(prefix.size())) {
      if (ch < '0' || ch > '9') return;
      id = id * 10 + static_cast<uint64_t>(ch - '0');
    }
    NatsInbound item;
    item.kind = NatsInbound::Kind::kReply;
    item.request_id = id;
    item.subject = subject;
    item.data.assign(natsMsg_GetData(msg.get()),
                     static_cast<size_t>(natsMsg_GetDataLength(msg.get())));
    item.headers = headersOf(msg.get());
    if (const std::string* status = item.header("Status")) item.status = *status;
    c->shared->push(std::move(item));
  }

  static void subscriptionDone(void* closure) {
    delete static_cast<NatsLink::SubClosure*>(closure);
  }

  static std::shared_ptr<NatsLink::Shared>& sharedOf(void* closure) {
    return static_cast<NatsLink::ConnClosure*>(closure)->shared;
  }

  static void connected(natsConnection*, void* closure) {
    sharedOf(closure)->setState(NatsLinkState::kConnected);
  }
  static void reconnected(natsConnection*, void* closure) {
    auto& shared = sharedOf(closure);
    shared->reconnects->inc();
    shared->setState(NatsLinkState::kConnected);
  }
  static void disconnected(natsConnection* nc, void* closure) {
    // Also called once when a connection that never came up is closed.
    if (natsConnection_IsClosed(nc)) return;
    const char* why = nullptr;
    if (natsConnection_GetLastError(nc, &why) != NATS_OK && why != nullptr && *why != '\0') {
      logWarn("nats_error", {{"error", why}});
    }
    auto& shared = sharedOf(closure);
    shared->disconnects->inc();
    shared->setState(NatsLinkState::kReconnecting);
  }
  static void closed(natsConnection* nc, void* closure) {
    const char* why = nullptr;
    natsStatus s = natsConnection_GetLastError(nc, &why);
    if (s != NATS_OK) {
      logWarn("nats_error",
              {{"error", why != nullptr && *why != '\0' ? why : natsStatus_GetText(s)}});
    }
    auto* holder = static_cast<NatsLink::ConnClosure*>(closure);
    holder->shared->setState(NatsLinkState::kClosed);
    holder->closed.store(true, std::memory_order_release);  // cnats' last call with it
  }
  static void error(natsConnection*, natsSubscription*, natsStatus err, void* closure) {
    if (err == NATS_SLOW_CONSUMER) {
      sharedOf(closure)->dropped_slow_consumer->inc();
      return;
    }
    logWarn("nats_error", {{"error", natsStatus_GetText(err)}});
  }
  static int64_t reconnectDelay(natsConnection*, int attempts, void* closure) {
    auto& shared = sharedOf(closure);
    int shift = std::clamp(attempts - 1, 0, 16);
    int64_t base = shared->reconnect_wait_ms;
    int64_t delay = std::min(base << shift, shared->reconnect_wait_max_ms);
    std::lock_guard lock(shared->rng_mu);
    return delay + static_cast<int64_t>(shared->rng() % static_cast<uint64_t>(base + 1));
  }
};

NatsLink::NatsLink(NatsLinkOptions options, MetricsRegistry& registry)
    : options_(std::move(options)),
      shared_(std::make_shared<Shared>()),
      dropped_queue_full_(
          registry.counter("wsfleet_nats_dropped_total",
                           "NATS operations and messages dropped by the edge, by reason",
                           [&] {
                             Labels l = options_.metric_labels;
                             l.emplace_back("reason", "outbound_queue_full");
                             return l;
                           }())),
      dropped_publish_failed_(registry.counter("wsfleet_nats_dropped_total", "",
                                               [&] {
                                                 Labels l = options_.metric_labels;
                                                 l.emplace_back("reason", "publish_failed");
                                                 return l;
                                               }())),
      dropped_subscribe_failed_(registry.counter("wsfleet_nats_dropped_total", "", [&] {
        Labels l = options_.metric_labels;
        l.emplace_back("reason", "subscribe_failed");
        return l;
      }())) {
  auto labelled = [&](const char* reason) {
    Labels l = options_.metric_labels;
    l.emplace_back("reason", reason);
    return l;
  };
  shared_->max_inbound = options_.max_inbound_items;
  shared_->max_inbound_bytes = options_.max_queue_bytes;
  shared_->reconnect_wait_ms = std::max<int64_t>(options_.reconnect_wait_ms, 1);
  shared_->reconnect_wait_max_ms =
      std::max(options_.reconnect_wait_max_ms, shared_->reconnect_wait_ms);
  shared_->dropped_inbound_full =
      &registry.counter("wsfleet_nats_dropped_total", "", labelled("inbound_queue_full"));
  shared_->dropped_slow_consumer =
      &registry.counter("wsfleet_nats_dropped_total", "", labelled("slow_consumer"));
  shared_->reconnects = &registry.counter("wsfleet_nats_reconnects_total",
                                          "Times the NATS link came back after losing its server",
                                          options_.metric_labels);
  shared_->disconnects =
      &registry.counter("wsfleet_nats_disconnects_total", "Times the NATS link lost its server",
                        options_.metric_labels);
  std::weak_ptr<Shared> weak = shared_;
  registry.gaugeCallback("wsfleet_nats_connected", "1 while the NATS link is connected to a server",
                         options_.metric_labels, [weak] {
                           auto s = weak.lock();
                           return s && s->state.load() == NatsLinkState::kConnected ? 1.0 : 0.0;
                         });
  registry.gaugeCallback("wsfleet_nats_pending_bytes",
                         "Bytes the NATS link holds that no server has received yet",
                         options_.metric_labels, [weak] {
                           auto s = weak.lock();
                           return s ? static_cast<double>(s->pending_bytes.load()) : 0.0;
                         });
}

Result<std::unique_ptr<NatsLink>> NatsLink::start(NatsLinkOptions options,
                                                  MetricsRegistry& registry) {
  if (options.servers.empty()) {
    return Status(Code::kConfig, "nats_no_servers", "no NATS server URL configured");
  }
  std::unique_ptr<NatsLink> link(new NatsLink(std::move(options), registry));
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return Status(Code::kInternal, "eventfd_failed", "eventfd() failed");
  link->shared_->wake_fd.reset(fd);
  link->thread_ = std::thread([raw = link.get()] { raw->run(); });
  return link;
}

NatsLink::~NatsLink() {
  {
    std::lock_guard lock(out_mu_);
    stopping_ = true;
  }
  out_cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  // cnats finishes its callbacks on its own threads: subscription closures drop their
  // reference when done, connection closures are marked by the closed callback. Bounded:
  // a stuck cnats thread must not hang the shutdown.
  auto done = [this] {
    for (const auto& c : conn_closures_) {
      if (!c->closed.load(std::memory_order_acquire)) return false;
    }
    return shared_.use_count() == 1 + static_cast<long>(conn_closures_.size());
  };
  for (int i = 0; i < 2000 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  conn_closures_.clear();
}

int NatsLink::wakeFd() const {
  return shared_->wake_fd.get();
}

NatsLinkState NatsLink::state() const {
  return shared_->state.load(std::memory_order_acquire);
}

int64_t NatsLink::pendingBytes() const {
  return shared_->pending_bytes.load(std::memory_order_relaxed);
}

bool NatsLink::post(Op op) {
  {
    std::lock_guard lock(out_mu_);
    // Subscribes and unsubscribes always get through: a lost one would leave the loop's
    // idea of its interest and the server's apart (a channel never delivered, or a
    // subscription left behind that delivers twice after the next subscribe).
    const bool control = op.kind == Op::Kind::kSubscribe || op.kind == Op::Kind::kUnsubscribe;
    const size_t bytes = op.data.size();
    if (!control && (out_queue_.size() >= options_.max_outbound_ops ||
                     out_queue_bytes_ + bytes > options_.max_queue_bytes)) {
      dropped_queue_full_.inc();
      return false;
    }
    out_queue_bytes_ += bytes;
    out_queue_.push_back(std::move(op));
  }
  out_cv_.notify_one();
  return true;
}

bool NatsLink::subscribe(uint64_t sub_id, std::string subject, std::string queue_group) {
  // A subscribe carries its queue group where a publish carries its payload.
  return post(Op{Op::Kind::kSubscribe, sub_id, std::move(subject), std::move(queue_group), {}});
}

bool NatsLink::unsubscribe(uint64_t sub_id) {
  return post(Op{Op::Kind::kUnsubscribe, sub_id, {}, {}, {}});
}

bool NatsLink::publish(std::string subject, std::string data, std::vector<NatsHeader> headers) {
  return post(Op{Op::Kind::kPublish, 0, std::move(subject), std::move(data), std::move(headers)});
}

bool NatsLink::request(uint64_t request_id, std::string subject, std::string data,
                       std::vector<NatsHeader> headers) {
  return post(
      Op{Op::Kind::kRequest, request_id, std::move(subject), std::move(data), std::move(headers)});
}

void NatsLink::takeInbound(std::vector<NatsInbound>& out) {
  uint64_t counter = 0;
  ssize_t n;
  do {
    n = ::read(shared_->wake_fd.get(), &counter, sizeof counter);
  } while (n < 0 && errno == EINTR);
  std::lock_guard lock(shared_->mu);
  shared_->inbound_bytes = 0;
  if (out.empty()) {
    out.swap(shared_->inbound);
  } else {
    for (auto& item : shared_->inbound) out.push_back(std::move(item));
    shared_->inbound.clear();
  }
}

Status NatsLink::connect() {
  natsOptions* raw = nullptr;
  if (natsOptions_Create(&raw) != NATS_OK) {
    return Status(Code::kInternal, "nats_options", "natsOptions_Create failed");
  }
  NatsOptionsPtr opts(raw);
  std::vector<const char*> urls;
  for (const auto& s : options_.servers) urls.push_back(s.c_str());
  // Owned by the link from here on, whatever happens (see ConnClosure).
  conn_closures_.push_back(std::make_unique<ConnClosure>());
  ConnClosure* closure = conn_closures_.back().get();
  closure->shared = shared_;
  natsStatus s = natsOptions_SetServers(opts.get(), urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK && !options_.name.empty())
    s = natsOptions_SetName(opts.get(), options_.name.c_str());
  if (s == NATS_OK) s = natsOptions_SetTimeout(opts.get(), options_.connect_timeout_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts.get(), -1);
  if (s == NATS_OK) {
    s = natsOptions_SetCustomReconnectDelay(opts.get(), &NatsCallbacks::reconnectDelay, closure);
  }
  if (s == NATS_OK) {
    s = natsOptions_SetReconnectBufSize(opts.get(),
                                        static_cast<int>(options_.reconnect_buffer_bytes));
  }
  if (s == NATS_OK) s = natsOptions_SetPingInterval(opts.get(), options_.ping_interval_ms);
  if (s == NATS_OK) s = natsOptions_SetMaxPingsOut(opts.get(), options_.max_pings_out);
  // This worker delivers its own publishes to its own sockets directly; an echo from the
  // server would deliver them twice.
  if (s == NATS_OK) s = natsOptions_SetNoEcho(opts.get(), true);
  // One shared delivery thread instead of one thread per subscription (a worker holds a
  // subscription per channel with local subscribers). One thread also keeps the arrival
  // order across subscriptions.
  if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(opts.get(), true);
  if (s == NATS_OK) {
    s = natsOptions_SetRetryOnFailedConnect(opts.get(), true, &NatsCallbacks::connected, closure);
  }
  if (s == NATS_OK)
    s = natsOptions_SetDisconnectedCB(opts.get(), &NatsCallbacks::disconnected, closure);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(opts.get(), &NatsCallbacks::reconnected, closure);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(opts.get(), &NatsCallbacks::closed, closure);
  if (s == NATS_OK) s = natsOptions_SetErrorHandler(opts.get(), &NatsCallbacks::error, closure);
  if (s == NATS_OK && !options_.token.empty())
    s = natsOptions_SetToken(opts.get(), options_.token.c_str());
  if (s == NATS_OK && !options_.user.empty()) {
    s = natsOptions_SetUserInfo(opts.get(), options_.user.c_str(), options_.password.c_str());
  }
  if (s == NATS_OK && !options_.creds_file.empty()) {
    s = natsOptions_SetUserCredentialsFromFiles(opts.get(), options_.creds_file.c_str(), nullptr);
  }
  if (s == NATS_OK && options_.tls) {
    s = natsOptions_SetSecure(opts.get(), true);
    if (s == NATS_OK && !options_.tls_ca_file.empty()) {
      s = natsOptions_LoadCATrustedCertificates(opts.get(), options_.tls_ca_file.c_str());
    }
    if (s == NATS_OK && !options_.tls_cert_file.empty()) {
      s = natsOptions_LoadCertificatesChain(opts.get(), options_.tls_cert_file.c_str(),
                                            options_.tls_key_file.c_str());
    }
  }
  // No connection exists yet on these paths, so cnats holds no reference to the closure.
  if (s != NATS_OK) {
    closure->closed = true;
    return natsFailure(s, "nats_options", "NATS client options");
  }

  natsInbox* inbox_raw = nullptr;
  if (natsInbox_Create(&inbox_raw) != NATS_OK) {
    closure->closed = true;
    return Status(Code::kInternal, "nats_inbox", "natsInbox_Create failed");
  }
  NatsInboxPtr inbox(inbox_raw);
  inbox_prefix_ = std::string(inbox.get()) + ".";

  conn_ = std::make_unique<Conn>();
  shared_->setState(NatsLinkState::kConnecting);
  s = natsConnection_Connect(&conn_->nc, opts.get());
  // NOT_YET_CONNECTED: no server answered yet; cnats keeps trying in the background.
  if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
    return natsFailure(s, "nats_connect", "NATS connect");
  }
  if (s == NATS_OK) shared_->setState(NatsLinkState::kConnected);

  auto* reply_closure = new SubClosure{shared_, 0, inbox_prefix_};
  s = natsConnection_Subscribe(&conn_->inbox_sub, conn_->nc, (inbox_prefix_ + "*").c_str(),
                               &NatsCallbacks::reply, reply_closure);
  if (s == NATS_OK) {
    s = natsSubscription_SetOnCompleteCB(conn_->inbox_sub, &NatsCallbacks::subscriptionDone,
                                         reply_closure);
  } else {
    delete reply_closure;
  }
  if (s != NATS_OK) return natsFailure(s, "nats_subscribe", "NATS reply subscription");
  return Status::ok();
}

void NatsLink::publishFailed(const Op& op) {
  dropped_publish_failed_.inc();
  if (op.kind != Op::Kind::kRequest) return;
  // The requester learns at once instead of waiting for its timeout.
  NatsInbound item;
  item.kind = NatsInbound::Kind::kReply;
  item.request_id = op.id;
  item.status = "503";
  shared_->push(std::move(item));
}

void NatsLink::apply(Op& op) {
  natsConnection* nc = conn_->nc;
  switch (op.kind) {
    case Op::Kind::kSubscribe: {
      if (conn_->subs.count(op.id) != 0) return;
      auto* closure = new SubClosure{shared_, op.id, {}};
      natsSubscription* sub = nullptr;
      natsStatus s = op.data.empty() ? natsConnection_Subscribe(&sub, nc, op.subject.c_str(),
                                                                &NatsCallbacks::message, closure)
                                     : natsConnection_QueueSubscribe(
                                           &sub, nc, op.subject.c_str(), op.data.c_str(),
                                           &NatsCallbacks::message, closure);
      if (s == NATS_OK) {
        s = natsSubscription_SetOnCompleteCB(sub, &NatsCallbacks::subscriptionDone, closure);
      } else {
        delete closure;
      }
      if (s != NATS_OK) {
        dropped_subscribe_failed_.inc();
        logWarn("nats_subscribe_failed",
                {{"subject", op.subject}, {"error", natsStatus_GetText(s)}});
        if (sub != nullptr) natsSubscription_Destroy(sub);
        return;
      }
      conn_->subs.emplace(op.id, sub);
      return;
    }
    case Op::Kind::kUnsubscribe: {
      auto it = conn_->subs.find(op.id);
      if (it == conn_->subs.end()) return;
      natsSubscription_Unsubscribe(it->second);
      natsSubscription_Destroy(it->second);
      conn_->subs.erase(it);
      return;
    }
    case Op::Kind::kPublish:
    case Op::Kind::kRequest: {
      std::string reply;
      if (op.kind == Op::Kind::kRequest) reply = inbox_prefix_ + std::to_string(op.id);
      natsMsg* raw = nullptr;
      natsStatus s =
          natsMsg_Create(&raw, op.subject.c_str(), reply.empty() ? nullptr : reply.c_str(),
                         op.data.data(), static_cast<int>(op.data.size()));
      NatsMsgPtr msg(raw);
      for (const auto& h : op.headers) {
        if (s == NATS_OK) s = natsMsgHeader_Set(msg.get(), h.name.c_str(), h.value.c_str());
      }
      if (s == NATS_OK) s = natsConnection_PublishMsg(nc, msg.get());
      if (s != NATS_OK) publishFailed(op);
      return;
    }
  }
}

void NatsLink::closeConnection() {
  if (!conn_) return;
  if (conn_->nc != nullptr) {
    for (auto& [id, sub] : conn_->subs) natsSubscription_Destroy(sub);
    if (conn_->inbox_sub != nullptr) natsSubscription_Destroy(conn_->inbox_sub);
    // What the loop published last (a goodbye) should reach the server before the close.
    if (natsConnection_Status(conn_->nc) == NATS_CONN_STATUS_CONNECTED) {
      natsConnection_FlushTimeout(conn_->nc, 500);
    }
    natsConnection_Close(conn_->nc);
    natsConnection_Destroy(conn_->nc);
  }
  conn_.reset();
  // Closures of connections cnats is done with (a link refused for days must not pile
  // them up). The newest stays: the next connect adds its own.
  while (conn_closures_.size() > 1 &&
         conn_closures_.front()->closed.load(std::memory_order_acquire)) {
    conn_closures_.erase(conn_closures_.begin());
  }
}

bool NatsLink::openConnection() {
  Status connected = connect();
  if (!connected.isOk()) {
    logError("nats_link_failed", {{"error", connected.toString()}});
    closeConnection();
    shared_->setState(NatsLinkState::kClosed);
    return false;
  }
  // A new connection (not a cnats reconnect, which keeps its subscriptions): everything
  // the loop subscribed is subscribed again.
  for (const auto& [id, wanted] : desired_) {
    Op op{Op::Kind::kSubscribe, id, wanted.first, wanted.second, {}};
    apply(op);
  }
  return true;
}

void NatsLink::run() {
  openConnection();
  std::deque<Op> batch;
  int64_t retry_delay_ms = options_.reconnect_wait_ms;
  auto next_attempt = std::chrono::steady_clock::now();
  for (;;) {
    {
      std::unique_lock lock(out_mu_);
      out_cv_.wait_for(lock, std::chrono::milliseconds(200),
                       [&] { return stopping_ || !out_queue_.empty(); });
      if (stopping_) {
        // What the loop posted last (a goodbye to the region) still goes out.
        batch.swap(out_queue_);
        out_queue_bytes_ = 0;
        lock.unlock();
        if (conn_ && conn_->nc != nullptr && !natsConnection_IsClosed(conn_->nc)) {
          for (auto& op : batch) apply(op);
        }
        break;
      }
      batch.swap(out_queue_);
      out_queue_bytes_ = 0;
    }
    // cnats gives up on a connection for good in some cases (every server refused the
    // credentials, say). The link does not: it starts over with a fresh connection,
    // backing off like a reconnect, so fixing the servers is enough to recover.
    const bool dead = !conn_ || conn_->nc == nullptr || natsConnection_IsClosed(conn_->nc);
    if (dead && std::chrono::steady_clock::now() >= next_attempt) {
      if (conn_ && conn_->nc != nullptr) {
        const char* why = nullptr;
        natsConnection_GetLastError(conn_->nc, &why);
        logWarn("nats_link_closed",
                {{"error", why != nullptr ? why : "unknown"},
                 {"hint",
                  "no listed server took the connection: check nats.servers, the "
                  "credentials and TLS (the servers' logs say which)"},
                 {"retry_in_ms", retry_delay_ms}});
      }
      closeConnection();
      next_attempt = std::chrono::steady_clock::now() + std::chrono::milliseconds(retry_delay_ms);
      retry_delay_ms = std::min(retry_delay_ms * 2, options_.reconnect_wait_max_ms);
      openConnection();
    } else if (!dead) {
      retry_delay_ms = options_.reconnect_wait_ms;
    }
    for (auto& op : batch) {
      if (op.kind == Op::Kind::kSubscribe) desired_[op.id] = {op.subject, op.data};
      if (op.kind == Op::Kind::kUnsubscribe) desired_.erase(op.id);
    }
    if (conn_ && conn_->nc != nullptr && !natsConnection_IsClosed(conn_->nc)) {
      for (auto& op : batch) apply(op);
      shared_->pending_bytes.store(natsConnection_Buffered(conn_->nc), std::memory_order_relaxed);
    } else {
      for (auto& op : batch) {
        if (op.kind == Op::Kind::kPublish || op.kind == Op::Kind::kRequest) publishFailed(op);
      }
    }
    batch.clear();
  }
  closeConnection();
}

}  // namespace wsfleet
