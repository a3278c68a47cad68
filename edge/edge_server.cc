#include "edge/edge_server.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <string>

#include "common/clock.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "edge/supervisor.h"

namespace wsfleet {

namespace {

int wsCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* server = static_cast<EdgeServer*>(lws_context_user(lws_get_context(wsi)));
  return server->onWebSocketEvent(wsi, reason, user, in, len);
}

int adminCallback(lws* wsi, lws_callback_reasons reason, void* user, void* in, size_t len) {
  auto* server = static_cast<EdgeServer*>(lws_context_user(lws_get_context(wsi)));
  return server->onAdminEvent(wsi, reason, user, in, len);
}

// lws's own log lines go through our JSON-lines logger; only warnings and errors.
void lwsLogEmit(int level, const char* line) {
  std::string_view text(line);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (level & LLL_ERR) {
    logWarn("lws_error", {{"message", text}});
  } else {
    logDebug("lws", {{"message", text}});
  }
}

// lws binds every interface when given an IPv4 literal unless IPv6 is disabled on the
// vhost (the address would land in the IPv6 flowinfo field).
constexpr size_t kTxPacketBytes = 64 * 1024;

// Connections the kernel queues for us before accept4(); capped by net.core.somaxconn.
constexpr int kListenBacklog = 4096;

bool isIpv6Literal(const std::string& host) {
  return host.find(':') != std::string::npos;
}

std::string bindAddress(const std::string& host) {
  return host == "localhost" ? "127.0.0.1" : host;
}

}  // namespace

EdgeServer::EdgeServer(const EdgeConfig& config, WorkerSlot slot)
    : config_(config), slot_(slot) {
  tick_.server = this;
}

EdgeServer::~EdgeServer() {
  // The context goes first: destroying it closes every wsi, which calls back into the
  // service to clean up the connections. The loop outlives it (lws stops its watchers).
  listener_.reset();
  bus_.reset();
  context_.reset();
  lingering_.reset();
  service_.reset();
  if (loop_) {
    ev_signal_stop(loop_.get(), &sigterm_watcher_);
    ev_signal_stop(loop_.get(), &sigint_watcher_);
    ev_signal_stop(loop_.get(), &sighup_watcher_);
    ev_timer_stop(loop_.get(), &wakeup_timer_);
    ev_io_stop(loop_.get(), &region_watcher_);
    ev_prepare_stop(loop_.get(), &prepare_watcher_);
  }
}

Result<std::unique_ptr<EdgeServer>> EdgeServer::create(const EdgeConfig& config,
                                                       WorkerSlot slot) {
  std::unique_ptr<EdgeServer> server(new EdgeServer(config, slot));
  WSF_ASSIGN_OR_RETURN(server->service_, EdgeService::create(config, server->registry_, *server));
  WSF_RETURN_IF_ERROR(server->start());
  return server;
}

namespace {

// Descriptors a worker needs besides its clients: listeners, the admin listener, LMDB, the
// NATS connection, the host bus, the event loop, sockets in a lingering close.
constexpr rlim_t kDescriptorReserve = 512;

// libwebsockets sizes its descriptor table from the process's limit when its context is
// created, and Debian's build (without NDEBUG) walks the whole table on every socket it
// adopts and every one it closes. So the limit is what the worker's connections need, not
// what the service manager allows: a million-entry table would cost most of a millisecond
// per connect. Raised towards it too when the soft limit is lower and the hard one allows.
void limitDescriptors(uint64_t max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  const rlim_t wanted = static_cast<rlim_t>(max_connections) + kDescriptorReserve;
  const rlim_t soft = limit.rlim_max == RLIM_INFINITY ? wanted : std::min(wanted, limit.rlim_max);
  if (soft < wanted) {
    logWarn("descriptor_limit_capped", {{"wanted", static_cast<uint64_t>(wanted)},
                                        {"hard_limit", static_cast<uint64_t>(limit.rlim_max)}});
  }
  if (soft == limit.rlim_cur) return;
  const rlim_t before = limit.rlim_cur;
  limit.rlim_cur = soft;
  if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
    logWarn("descriptor_limit_not_set", {{"wanted", static_cast<uint64_t>(soft)},
                                         {"error", std::strerror(errno)}});
    return;
  }
  logInfo("descriptor_limit", {{"from", static_cast<uint64_t>(before)},
                               {"to", static_cast<uint64_t>(soft)},
                               {"max_connections_per_worker", max_connections}});
}

}  // namespace

Status EdgeServer::start() {
  lws_set_log_level(LLL_ERR | (logLevel() == LogLevel::kDebug ? LLL_WARN : 0), lwsLogEmit);
  limitDescriptors(config_.max_connections_per_worker);

  // rx (websocket.receive_buffer_bytes): lws allocates this buffer for every connection
  // for its whole life and reads at most this much per recv(); inbound messages arrive in
  // pieces this big and the glue reassembles them. Small saves memory per idle
  // connection; large lets one read take many publishes, so that a fan-out burst queues
  // many frames per connection between writes (see docs/BENCHMARKS.md). tx 64 KiB: lws
  // writes at most this much per send() (by default the rx size), so one coalesced write
  // of queued frames is one syscall.
  ws_protocols_[0] = {"wsfleet.v1", wsCallback, sizeof(WsSession),
                      static_cast<size_t>(config_.receive_buffer_bytes), 0, nullptr,
                      kTxPacketBytes};
  ws_protocols_[1] = {nullptr, nullptr, 0, 0, 0, nullptr, 0};
  static const lws_protocols kAdminProtocols[] = {
      {"wsfleet-admin", adminCallback, sizeof(AdminSession), 0, 0, nullptr, 0},
      {nullptr, nullptr, 0, 0, 0, nullptr, 0},
  };

  // EVFLAG_NOSIGMASK: libev must not touch the signal mask (LMDB's syncer thread runs
  // beside the loop). epoll only: poll/select would bring back the O(n) wakeups.
  loop_.reset(ev_loop_new(static_cast<unsigned int>(EVBACKEND_EPOLL) |
                          static_cast<unsigned int>(EVFLAG_NOSIGMASK)));
  if (!loop_) {
    return Status(Code::kInternal, "event_loop", "cannot create the epoll event loop");
  }
  void* foreign_loops[1] = {loop_.get()};

  const bool tls = !config_.tls_cert_file.empty();
  lws_context_creation_info info;
  std::memset(&info, 0, sizeof(info));
  // lws reads VALIDATE_UTF8 from the context's options (not the vhost's): invalid UTF-8
  // in text frames and close reasons closes with 1007. LIBEV with a foreign loop: lws
  // registers its sockets and timers on our loop and installs no signal handler.
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                 LWS_SERVER_OPTION_LIBEV;
  info.foreign_loops = foreign_loops;
  if (tls) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.user = this;
  // lws hangs up (no response) on a request head larger than its header buffer, so the
  // buffer is well over our own cap: heads over the cap reach our check and get a 431.
  // The buffers exist only while a handshake is being read, and at most
  // max_http_header_pool of them at once (later handshakes wait for one).
  info.max_http_header_data = static_cast<unsigned short>(
      std::min<uint64_t>(std::max<uint64_t>(config_.max_header_bytes * 4, 16384), 65535));
  info.max_http_header_pool = 1024;
  info.timeout_secs =
      static_cast<unsigned int>(std::max<uint64_t>(1, config_.handshake_timeout_ms / 1000));
  info.port = CONTEXT_PORT_NO_LISTEN;
  lws_context* ctx = lws_create_context(&info);
  if (ctx == nullptr) {
    return Status(Code::kInternal, "lws_context",
                  "libwebsockets could not create its context (its libev plugin comes with "
                  "the Debian package libwebsockets-evlib-ev: is it installed?)");
  }
  context_.reset(ctx);
  lingering_ = std::make_unique<LingeringClose>(loop_.get(), LingeringClose::Options{});

  // Client WebSocket listener.
  const std::string ws_host = bindAddress(config_.ws_listen.host);
  lws_context_creation_info ws;
  std::memset(&ws, 0, sizeof(ws));
  ws.vhost_name = "wsfleet-ws";
  // The vhost serves sockets we accept ourselves (ws_listener.cc): lws's listener cannot
  // share the port between worker processes.
  ws.port = CONTEXT_PORT_NO_LISTEN_SERVER;
  ws.iface = ws_host.c_str();
  ws.protocols = ws_protocols_;
  // No lws validity (ping/hangup) timers: lws keeps them in one sorted list, so every
  // connection established or pong received walked all the others (connection set-up
  // cost grew with the connections held). Our own timer wheel sends the pings.
  static const lws_retry_bo_t kNoValidityTimers{};
  ws.retry_and_idle_policy = &kNoValidityTimers;
  ws.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
  if (!isIpv6Literal(ws_host)) ws.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  ws.timeout_secs = info.timeout_secs;
  // A connection that has not completed its request head within the handshake timeout
  // is closed (slowloris). lws reads this from the vhost, not the context (default 10 s).
  ws.timeout_secs_ah_idle = info.timeout_secs;
  if (tls) {
    ws.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    ws.ssl_cert_filepath = config_.tls_cert_file.c_str();
    ws.ssl_private_key_filepath = config_.tls_key_file.c_str();
  }
  lws_vhost* ws_vhost = lws_create_vhost(ctx, &ws);
  if (ws_vhost == nullptr) {
    return Status(Code::kUnavailable, "listen_failed",
                  "cannot serve WebSockets on " + ws_host + ":" +
                      std::to_string(config_.ws_listen.port) + " (TLS files unusable?)");
  }
  // Bound now, accepting from run(): a port in use fails the start, not the first accept.
  auto socket = openReusePortListener(config_.ws_listen, kListenBacklog);
  if (!socket.isOk()) return socket.takeStatus();
  WsListener::Limits limits;
  limits.connections = &service_->metrics().connections_active;
  limits.max_connections = config_.max_connections_per_worker;
  limits.paused_error = &service_->metrics().accept_errors;
  limits.paused_full = &service_->metrics().accept_full;
  limits.adopt_failed = [this] { service_->metrics().handshakeRejected("adopt_failed"); };
  listener_ = std::make_unique<WsListener>(loop_.get(), ws_vhost, std::move(*socket), limits);

  // Admin listener: health, metrics, backend API. Never TLS here; keep it on loopback or
  // a private interface.
  const std::string admin_host = bindAddress(config_.admin_listen.host);
  lws_context_creation_info admin;
  std::memset(&admin, 0, sizeof(admin));
  admin.vhost_name = "wsfleet-admin";
  admin.port = config_.admin_listen.port + slot_.index;
  admin.iface = admin_host.c_str();
  admin.protocols = kAdminProtocols;
  if (!isIpv6Literal(admin_host)) admin.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
  admin.timeout_secs = info.timeout_secs;
  admin.timeout_secs_ah_idle = info.timeout_secs;
  if (lws_create_vhost(ctx, &admin) == nullptr) {
    return Status(Code::kUnavailable, "listen_failed",
                  "cannot listen for the admin API on " + admin_host + ":" +
                      std::to_string(config_.admin_listen.port + slot_.index));
  }
  if (slot_.count > 1) {
    HostBus::Options bus;
    std::error_code ec;
    const auto storage = std::filesystem::weakly_canonical(config_.storage_dir, ec);
    bus.scope = hostBusScope(ec ? config_.storage_dir : storage.string(), config_.ws_listen.port);
    bus.index = slot_.index;
    bus.count = slot_.count;
    bus.max_message_bytes = 2 * config_.max_message_bytes + 65536;  // frame + envelope
    EdgeService* service = service_.get();
    auto opened = HostBus::open(
        loop_.get(), bus,
        [service](std::string_view bytes) {
          auto message = decodePeerMessage(bytes);
          if (!message) {
            service->metrics().dropped("bus_malformed");
            return;
          }
          service->onPeerMessage(*message);
        },
        [service](const char* reason) { service->metrics().dropped(reason); });
    if (!opened.isOk()) return opened.takeStatus();
    bus_ = std::move(*opened);
    bus_buffered_ = &registry_.gauge("wsfleet_host_bus_buffered_bytes",
                                     "Bytes waiting to go to the host's other workers");
    bus_peers_ = &registry_.gauge("wsfleet_host_bus_peers_connected",
                                  "Other workers of the host this worker has a link to");
  }
  WSF_RETURN_IF_ERROR(service_->startRegion(slot_.index));
  if (service_->regionWakeFd() >= 0) {
    ev_io_init(&region_watcher_, &EdgeServer::onRegionReadable, service_->regionWakeFd(), EV_READ);
    region_watcher_.data = this;
    ev_io_start(loop_.get(), &region_watcher_);
  }
  // Per worker: each worker serves its own /metrics (admin port + index).
  const std::string worker = std::to_string(slot_.index);
  registry_.gauge("wsfleet_worker_info", "This worker's slot and the host's worker count",
                  {{"worker", worker}, {"workers", std::to_string(slot_.count)}})
      .set(1);
  registry_.gauge("wsfleet_worker_restarts", "Times the supervisor restarted this worker slot",
                  {{"worker", worker}})
      .set(slot_.restarts);
  scheduleTick();
  return Status::ok();
}

void EdgeServer::drainHost() {
  // The supervisor forwards SIGTERM (a drain) to every other worker of the host.
  if (slot_.supervised) ::kill(getppid(), SIGUSR1);
}

void EdgeServer::onRegionReadable(struct ev_loop* /*loop*/, ev_io* watcher, int /*revents*/) {
  static_cast<EdgeServer*>(watcher->data)->service_->onRegionWake();
}

void EdgeServer::answerHttp(uint64_t ticket, HttpResponse response) {
  auto it = deferred_http_.find(ticket);
  if (it == deferred_http_.end()) return;  // the client went away
  lws* wsi = it->second;
  deferred_http_.erase(it);
  http_answers_[wsi] = std::move(response);
  lws_callback_on_writable(wsi);
}

void EdgeServer::toPeers(const PeerMessage& message) {
  if (bus_) bus_->broadcast(encodePeerMessage(message));
}

void EdgeServer::scheduleTick() {
  lws_sul_schedule(context_.get(), 0, &tick_.sul, &EdgeServer::onTick,
                   static_cast<lws_usec_t>(service_->tickIntervalMs()) * LWS_US_PER_MS);
}

void EdgeServer::onTick(lws_sorted_usec_list_t* sul) {
  auto* tick = reinterpret_cast<Tick*>(sul);
  tick->server->service_->tick();
  if (HostBus* bus = tick->server->bus_.get()) {
    tick->server->bus_buffered_->set(static_cast<int64_t>(bus->bufferedBytes()));
    tick->server->bus_peers_->set(bus->connectedPeers());
  }
  if (tick->server->service_->drainComplete()) tick->server->requestStop();
  tick->server->scheduleTick();
}

void EdgeServer::wantWrite(Connection& conn) {
  // Frames are written at the end of the loop iteration that queued them, directly: a
  // fan-out queues one frame to many connections, and waiting for WRITEABLE would cost
  // two epoll_ctl calls per connection (write interest on, then off) and a callback, on
  // top of the write itself. Everything queued in the same iteration still goes out in
  // one write. Pings and closes keep the WRITEABLE path.
  if (conn.close_code != 0 || conn.ping_due) {
    lws_callback_on_writable(static_cast<lws*>(conn.transport));
    return;
  }
  if (conn.flush_queued) return;
  conn.flush_queued = true;
  to_flush_.push_back(&conn);
}

void EdgeServer::onPrepare(struct ev_loop* /*loop*/, ev_prepare* watcher, int /*revents*/) {
  static_cast<EdgeServer*>(watcher->data)->flushWrites();
}

void EdgeServer::flushWrites() {
  if (to_flush_.empty()) return;
  std::vector<Connection*> batch;
  batch.swap(to_flush_);
  for (Connection* conn : batch) {
    conn->flush_queued = false;
    auto* wsi = static_cast<lws*>(conn->transport);
    // Closing, pinging, or lws still holds unsent bytes: the ordinary path.
    if (conn->close_code != 0 || conn->peer_close_code != 0 || conn->ping_due ||
        lws_partial_buffered(wsi)) {
      if (conn->close_code != 0 || !conn->out.empty() || conn->ping_due) {
        lws_callback_on_writable(wsi);
      }
      continue;
    }
    if (conn->out.empty()) continue;
    // A failed write cannot return -1 to lws here: the connection is killed instead, and
    // lws reports it closed as for any other close.
    if (!writeQueued(wsi, *conn)) kill(*conn);
  }
}

void EdgeServer::resetOnClose(Connection& conn) {
  // Linger 0: closing sends a reset and frees at once what the kernel still holds for
  // the peer (megabytes for a slow consumer), instead of leaving it in FIN-WAIT-1 until
  // the peer has crawled through it.
  const int fd = lws_get_socket_fd(static_cast<lws*>(conn.transport));
  if (fd >= 0) {
    const linger reset{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  }
}

void EdgeServer::kill(Connection& conn) {
  resetOnClose(conn);  // it did not read its close frame in time: it reads nothing
  // Closes at the next service pass without waiting for the socket to become writable.
  lws_set_timeout(static_cast<lws*>(conn.transport), PENDING_TIMEOUT_KILLED_BY_PARENT,
                  LWS_TO_KILL_ASYNC);
}

void EdgeServer::requestStop() {
  stop_requested_ = true;
  if (loop_) ev_break(loop_.get(), EVBREAK_ALL);
}

void EdgeServer::onStopSignal(struct ev_loop*, ev_signal* watcher, int) {
  auto* server = static_cast<EdgeServer*>(watcher->data);
  const bool term = watcher->signum == SIGTERM;
  logInfo("signal", {{"signal", term ? "SIGTERM" : "SIGINT"}});
  // SIGTERM drains (the service manager's stop); SIGINT, or SIGTERM during a drain, is
  // the operator insisting: stop now.
  notifyStopping(term ? "draining" : "stopping");
  if (term && server->service_->beginDrain(std::nullopt, "SIGTERM")) return;
  server->requestStop();
}

void EdgeServer::onReloadSignal(struct ev_loop*, ev_signal* watcher, int) {
  auto* server = static_cast<EdgeServer*>(watcher->data);
  logInfo("signal", {{"signal", "SIGHUP"}});
  // Errors are logged and counted by the service; the running config stays.
  (void)server->service_->reload();
  notifyStatus("configuration reload done");  // no RELOADING=1: see Supervisor::run
}

void EdgeServer::onWakeup(struct ev_loop*, ev_timer*, int) {}

int EdgeServer::run() {
  // Signals arrive as loop events (libev's self-pipe), so their handlers may do anything.
  ev_signal_init(&sigterm_watcher_, &EdgeServer::onStopSignal, SIGTERM);
  sigterm_watcher_.data = this;
  ev_signal_start(loop_.get(), &sigterm_watcher_);
  ev_signal_init(&sigint_watcher_, &EdgeServer::onStopSignal, SIGINT);
  sigint_watcher_.data = this;
  ev_signal_start(loop_.get(), &sigint_watcher_);
  ev_signal_init(&sighup_watcher_, &EdgeServer::onReloadSignal, SIGHUP);
  sighup_watcher_.data = this;
  ev_signal_start(loop_.get(), &sighup_watcher_);
  signal(SIGPIPE, SIG_IGN);
  listener_->start();

  logInfo("edge_ready",
          {{"node", config_.node_name},
           {"ws", config_.ws_listen.host + ":" + std::to_string(config_.ws_listen.port)},
           {"path", config_.ws_path},
           {"admin", config_.admin_listen.host + ":" +
                         std::to_string(config_.admin_listen.port + slot_.index)},
           {"worker", slot_.index},
           {"tls", !config_.tls_cert_file.empty()}});
  reportWorkerReady(slot_, "serving " + config_.ws_listen.host + ":" +
                               std::to_string(config_.ws_listen.port));

  ev_prepare_init(&prepare_watcher_, &EdgeServer::onPrepare);
  prepare_watcher_.data = this;
  ev_prepare_start(loop_.get(), &prepare_watcher_);

  while (!stop_requested_) ev_run(loop_.get(), 0);

  // Graceful stop: readiness goes 503, clients get 1001 and a bounded time to close.
  logInfo("edge_stopping", {{"connections", service_->connectionCount()}});
  listener_->close();
  service_->shutdown();
  ev_timer_init(&wakeup_timer_, &EdgeServer::onWakeup, 0.05, 0.05);
  ev_timer_start(loop_.get(), &wakeup_timer_);
  const int64_t deadline = nowMonoMs() + 3000;
  while (service_->connectionCount() > 0 && nowMonoMs() < deadline) {
    ev_run(loop_.get(), EVRUN_ONCE);
  }
  ev_timer_stop(loop_.get(), &wakeup_timer_);
  context_.reset();
  service_->flushNow();  // the presence removals of the connections just closed
  logInfo("edge_stopped");
  return 0;
}

}  // namespace wsfleet
