#pragma once
// wsfleetctl sub-commands. Each add* function registers a command tree on the app; the
// command's callback stores its exit status in `exit_code`.

#include <CLI/CLI.hpp>

namespace wsfleet::ctl {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // the operation itself failed
constexpr int kExitUsage = 2;    // bad arguments or configuration
// Fleet commands: some region's edges or bridges did not answer in time (the output shows
// what did answer, and which regions were silent).
constexpr int kExitPartial = 3;

// `token mint`: development tokens signed with a tenant's key from the edge conf.
void addTokenCommands(CLI::App& app, int& exit_code);
// `config check`: load and validate an edge conf without starting anything.
void addConfigCommands(CLI::App& app, int& exit_code);
// `topology check` and `topology owner`: validate conf/topology.toml, ask who owns what.
void addTopologyCommands(CLI::App& app, int& exit_code);
// `owner get | list | move`: channels moved between regions (the fleet's ownership bucket).
void addOwnerCommands(CLI::App& app, int& exit_code);
// `region drain | fail | undrain | list`: whole regions out of ownership (the same bucket).
void addRegionCommands(CLI::App& app, int& exit_code);

// `status`, `edge`, `presence`, `conn`, `bridge`: the fleet over its control plane
// (common/control_subjects.h).
void addFleetCommands(CLI::App& app, int& exit_code);
// `top`: the fleet's rates, refreshed.
void addTopCommand(CLI::App& app, int& exit_code);

}  // namespace wsfleet::ctl
