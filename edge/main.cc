// wsfleet-edge: arguments, logging set-up, then the server. Everything else is in the
// wsfleet_edge library, which the tests link.
#include <CLI/CLI.hpp>

#include <unistd.h>

#include <cstdio>
#include <string>

#include "common/config_cli.h"
#include "common/log.h"
#include "edge/edge_config.h"
#include "edge/edge_server.h"
#include "edge/supervisor.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 2;

// One worker: the whole edge in this process (workers = 1), or a child of the supervisor.
int runWorker(const wsfleet::EdgeConfig& config, wsfleet::WorkerSlot slot) {
  using namespace wsfleet;
  auto server = EdgeServer::create(config, slot);
  if (!server.isOk()) {
    logError("edge_start_failed", {{"error", server.status().toString()}});
    if (slot.supervised) return kWorkerExitStartFailed;
    return server.status().code() == Code::kConfig ? kExitConfig : kExitFailure;
  }
  return (*server)->run() == 0 ? kExitOk : kExitFailure;
}

int workerCount(const wsfleet::EdgeConfig& config) {
  if (config.workers != 0) return static_cast<int>(config.workers);
  const long cores = sysconf(_SC_NPROCESSORS_ONLN);
  return cores > 0 ? static_cast<int>(cores) : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace wsfleet;
  CLI::App app{
      "wsfleet-edge: terminates client WebSockets, authenticates them, keeps presence "
      "and fans messages out"};
  ConfigOptions options;
  addConfigOptions(app, options, std::string("wsfleet-edge ") + WSFLEET_VERSION);
  CLI11_PARSE(app, argc, argv);
  int exit_code = kExitOk;
  auto config = loadFromOptions<EdgeConfig>("wsfleet-edge", options, loadEdgeConfig, exit_code);
  if (!config) return exit_code;
  LogLevel level = LogLevel::kInfo;
  parseLogLevel(config->log_level, &level);
  setLogLevel(level);

  const int workers = workerCount(*config);
  if (workers == 1) return runWorker(*config, WorkerSlot{});
  setLogProcessTag("supervisor");
  Supervisor supervisor(workers, RestartPolicy{},
                        [&config](WorkerSlot slot) { return runWorker(*config, slot); });
  return supervisor.run();
}
