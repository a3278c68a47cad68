#pragma once
// The configuration options every daemon takes: --config FILE to run, --check-config
// FILE to validate (print every error, exit), --version.

#include <CLI/CLI.hpp>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>

namespace wsfleet {

inline constexpr int kExitConfigOk = 0;
inline constexpr int kExitConfigInvalid = 2;

struct ConfigOptions {
  std::string config_path;
  std::string check_path;
};

// Adds --config, --check-config (exclusive) and --version to `app`.
inline void addConfigOptions(CLI::App& app, ConfigOptions& options, const std::string& version) {
  auto* run_opt = app.add_option("-c,--config", options.config_path, "Configuration file (TOML)");
  auto* check_opt = app.add_option("--check-config", options.check_path,
                                   "Validate a configuration file, print every error, and exit");
  run_opt->excludes(check_opt);
  app.set_version_flag("--version", version);
}

// After parsing: with --check-config, validates and returns the exit code in `exit_code`;
// else loads --config (refusing its absence). The loaded configuration, or nullopt with
// `exit_code` set.
template <class Config, class Load>
std::optional<Config> loadFromOptions(const std::string& program, const ConfigOptions& options,
                                      Load load, int& exit_code) {
  if (!options.check_path.empty()) {
    auto config = load(options.check_path);
    if (!config.isOk()) {
      std::fprintf(stderr, "%s\n", config.status().message().c_str());
      exit_code = kExitConfigInvalid;
    } else {
      std::printf("%s: ok\n", options.check_path.c_str());
      exit_code = kExitConfigOk;
    }
    return std::nullopt;
  }
  if (options.config_path.empty()) {
    std::fprintf(stderr, "%s: --config FILE is required (see --help)\n", program.c_str());
    exit_code = kExitConfigInvalid;
    return std::nullopt;
  }
  auto config = load(options.config_path);
  if (!config.isOk()) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    exit_code = kExitConfigInvalid;
    return std::nullopt;
  }
  return std::move(config).value();
}

}  // namespace wsfleet
