#pragma once
// `topology render-nats` and `topology render-dns`, registered under the `topology`
// command by addTopologyCommands.

#include <CLI/CLI.hpp>

namespace wsfleet::ctl {

void addTopologyRenderCommands(CLI::App& topology, int& exit_code);

}  // namespace wsfleet::ctl
