// wsfleet-edge: arguments, logging set-up, then the server. Everything else is in the
// wsfleet_edge library, which the tests link.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "common/log.h"
#include "edge/edge_config.h"
#include "edge/edge_server.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitConfig = 2;

}  // namespace

int main(int argc, char** argv) {
  using namespace wsfleet;
  CLI::App app{
      "wsfleet-edge: terminates client WebSockets, authenticates them, keeps presence "
      "and fans messages out"};
  std::string config_path;
  std::string check_path;
  auto* run_opt = app.add_option("-c,--config", config_path, "Configuration file (TOML)");
  auto* check_opt = app.add_option("--check-config", check_path,
                                   "Validate a configuration file, print every error, and exit");
  run_opt->excludes(check_opt);
  app.set_version_flag("--version", std::string("wsfleet-edge ") + WSFLEET_VERSION);
  CLI11_PARSE(app, argc, argv);

  if (!check_path.empty()) {
    auto config = loadEdgeConfig(check_path);
    if (!config.isOk()) {
      std::fprintf(stderr, "%s\n", config.status().message().c_str());
      return kExitConfig;
    }
    std::printf("%s: ok\n", check_path.c_str());
    return kExitOk;
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "wsfleet-edge: --config FILE is required (see --help)\n");
    return kExitConfig;
  }
  auto config = loadEdgeConfig(config_path);
  if (!config.isOk()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return kExitConfig;
  }
  LogLevel level = LogLevel::kInfo;
  parseLogLevel(config->log_level, &level);
  setLogLevel(level);

  auto server = EdgeServer::create(*config);
  if (!server.isOk()) {
    logError("edge_start_failed", {{"error", server.status().toString()}});
    return server.status().code() == Code::kConfig ? kExitConfig : kExitFailure;
  }
  return (*server)->run() == 0 ? kExitOk : kExitFailure;
}
