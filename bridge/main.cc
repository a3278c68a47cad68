// wsfleet-bridge: arguments, then one poll loop over the NATS link, the admin listener
// and the signals. Everything else is in the wsfleet_bridge library, which the tests link.
#include <CLI/CLI.hpp>

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "bridge/admin_server.h"
#include "bridge/bridge.h"
#include "bridge/bridge_config.h"
#include "common/clock.h"
#include "common/config_cli.h"
#include "common/log.h"
#include "common/service_notify.h"
#include "common/unique_fd.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
// The loop wakes at least this often for heartbeats, expiries and retries.
constexpr int kTickMs = 20;
// After SIGTERM: time for the goodbyes to reach the servers.
constexpr int64_t kGoodbyeFlushMs = 200;
// ... and for the publishes being forwarded to be answered, at most.
constexpr int64_t kForwardDrainMs = 5000;

int run(const wsfleet::BridgeConfig& config) {
  using namespace wsfleet;
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  UniqueFd signals(signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!signals.valid()) {
    logError("bridge_start_failed", {{"error", "signalfd failed"}});
    return kExitFailure;
  }

  MetricsRegistry registry;
  auto bridge = Bridge::start(config, registry);
  if (!bridge) {
    logError("bridge_start_failed", {{"error", bridge.status().toString()}});
    return kExitFailure;
  }
  Bridge& b = **bridge;
  auto admin = AdminServer::listen(
      config.admin_listen,
      [&](const std::string& path) -> AdminAnswer {
        if (path == "/healthz") return {200, "text/plain; charset=utf-8", "ok\n"};
        if (path == "/readyz") {
          return b.ready() ? AdminAnswer{200, "text/plain; charset=utf-8", "ready\n"}
                           : AdminAnswer{503, "text/plain; charset=utf-8",
                                         "not connected to the region's NATS cluster\n"};
        }
        if (path == "/metrics") {
          return {200, "text/plain; version=0.0.4; charset=utf-8", registry.renderPrometheus()};
        }
        if (path == "/status") return {200, "application/json", b.statusJson() + "\n"};
        return {404, "text/plain; charset=utf-8", "not found\n"};
      },
      registry);
  if (!admin) {
    logError("bridge_start_failed", {{"error", admin.status().toString()}});
    return kExitFailure;
  }
  logInfo("bridge_started",
          {{"region", config.region},
           {"instance", config.instance},
           {"admin", config.admin_listen.host + ":" + std::to_string(config.admin_listen.port)}});
  notifyReady("bridge of region " + config.region + " started");

  std::vector<pollfd> fds;
  int64_t stop_at = 0;
  int64_t give_up_at = 0;
  for (;;) {
    fds.clear();
    fds.push_back({b.wakeFd(), POLLIN, 0});
    fds.push_back({signals.get(), POLLIN, 0});
    (*admin)->pollFds(fds, nowMonoMs());
    ::poll(fds.data(), fds.size(), kTickMs);
    const int64_t now = nowMonoMs();
    if (fds[0].revents & POLLIN) b.onWake();
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      while (::read(signals.get(), &info, sizeof info) == sizeof info) {
        if (info.ssi_signo == SIGHUP) {
          logInfo("bridge_reload_ignored",
                  {{"why", "the bridge reads its configuration at start; restart it"}});
          continue;
        }
        if (stop_at == 0) {
          logInfo("bridge_stopping", {{"signal", static_cast<int>(info.ssi_signo)}});
          notifyStopping("saying goodbye, finishing forwarded publishes");
          b.beginStop();
          stop_at = now + kGoodbyeFlushMs;
          give_up_at = now + kForwardDrainMs;
        }
      }
    }
    (*admin)->onEvents(fds, now);
    b.tick(now);
    // Stops once the goodbyes are out and the publishes being forwarded were answered
    // (or their deadline passed).
    if (stop_at != 0 && now >= stop_at && (b.pendingPublishes() == 0 || now >= give_up_at)) {
      break;
    }
  }
  logInfo("bridge_stopped", {});
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wsfleet;
  CLI::App app{
      "wsfleet-bridge: carries channel interest, publishes and messages between its region "
      "and the other regions of the fleet"};
  ConfigOptions options;
  addConfigOptions(app, options, std::string("wsfleet-bridge ") + WSFLEET_VERSION);
  CLI11_PARSE(app, argc, argv);
  int exit_code = kExitOk;
  auto config =
      loadFromOptions<BridgeConfig>("wsfleet-bridge", options, loadBridgeConfig, exit_code);
  if (!config) return exit_code;
  LogLevel level = LogLevel::kInfo;
  parseLogLevel(config->log_level, &level);
  setLogLevel(level);
  setLogProcessTag("bridge");
  return run(*config);
}
