#include <iostream>
#include <memory>
#include <string>

#include "edge/edge_config.h"
#include "tools/ctl/commands.h"

namespace wsfleet::ctl {

void addConfigCommands(CLI::App& app, int& exit_code) {
  CLI::App* config = app.add_subcommand("config", "Configuration files");
  config->require_subcommand(1);

  CLI::App* check = config->add_subcommand(
      "check", "Validate an edge configuration; prints every error as FILE:LINE:COL");
  auto path = std::make_shared<std::string>();
  check->add_option("--config,-c", *path, "edge configuration file (TOML)")->required();
  check->callback([path, &exit_code] {
    Result<EdgeConfig> loaded = loadEdgeConfig(*path);
    if (!loaded) {
      std::cerr << loaded.status().message() << "\n";
      exit_code = kExitUsage;
      return;
    }
    size_t namespaces = 0;
    for (const auto& [name, tenant] : loaded->tenants) namespaces += tenant.namespaces.size();
    std::cout << *path << ": ok (" << loaded->tenants.size() << " tenant(s), " << namespaces
              << " namespace(s))\n";
    exit_code = kExitOk;
  });
}

}  // namespace wsfleet::ctl
