// wsfleetctl: the operator CLI. Parsing and dispatch only; the commands live beside it.

#include <CLI/CLI.hpp>

#include "tools/ctl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"wsfleetctl: operate a wsfleet fleet"};
  app.require_subcommand(1);
  int exit_code = wsfleet::ctl::kExitOk;
  wsfleet::ctl::addTokenCommands(app, exit_code);
  wsfleet::ctl::addConfigCommands(app, exit_code);
  wsfleet::ctl::addTopologyCommands(app, exit_code);
  wsfleet::ctl::addOwnerCommands(app, exit_code);
  wsfleet::ctl::addRegionCommands(app, exit_code);
  wsfleet::ctl::addFleetCommands(app, exit_code);
  wsfleet::ctl::addTopCommand(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);  // --help
  } catch (const CLI::ParseError& e) {
    app.exit(e);  // prints the problem and a hint to stderr
    return wsfleet::ctl::kExitUsage;
  }
  return exit_code;
}
