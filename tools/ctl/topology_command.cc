#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/channel.h"
#include "regions/ownership.h"
#include "regions/topology.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/topology_render_command.h"

namespace wsfleet::ctl {
namespace {

struct OwnerArgs {
  std::string path;
  std::string tenant;
  std::string channel;
  std::string user;
  std::vector<std::string> down;
};

int runCheck(const std::string& path) {
  Result<Topology> topology = loadTopology(path);
  if (!topology) {
    std::cerr << topology.status().message() << "\n";
    return kExitUsage;
  }
  std::cout << path << ": ok (" << topology->regions.size() << " region(s), "
            << topology->pins.size() << " pin(s), " << topology->moves.size() << " move(s))\n";
  return kExitOk;
}

int runOwner(const OwnerArgs& args) {
  Result<Topology> topology = loadTopology(args.path);
  if (!topology) {
    std::cerr << topology.status().message() << "\n";
    return kExitUsage;
  }
  if (args.channel.empty() == args.user.empty()) {
    std::cerr << "give exactly one of --channel or --user\n";
    return kExitUsage;
  }
  const Status name_ok =
      args.user.empty() ? validateChannelName(args.channel) : validateUserId(args.user);
  if (!name_ok) {
    std::cerr << name_ok.message() << "\n";
    return kExitUsage;
  }
  HealthySet healthy;
  for (const RegionSpec& region : topology->regions) healthy.insert(region.name);
  for (const std::string& name : args.down) {
    if (healthy.erase(name) == 0 && topology->findRegion(name) == nullptr) {
      std::cerr << "--down: '" << name << "' is not a region of " << args.path << "\n";
      return kExitUsage;
    }
  }
  if (!args.user.empty()) {
    Result<std::string> home = homeRegion(*topology, healthy, args.tenant, args.user);
    if (!home) {
      std::cerr << home.status().message() << "\n";
      return kExitFailure;
    }
    std::cout << *home << " (home of " << args.tenant << "/" << args.user << ")\n";
    return kExitOk;
  }
  Result<OwnerDecision> owner = decideOwner(*topology, healthy, args.tenant, args.channel);
  if (!owner) {
    std::cerr << owner.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << owner->region << " (" << ownerSourceName(owner->source) << ")\n";
  return kExitOk;
}

}  // namespace

void addTopologyCommands(CLI::App& app, int& exit_code) {
  CLI::App* topology = app.add_subcommand("topology", "The fleet's regions and ownership");
  topology->require_subcommand(1);

  CLI::App* check = topology->add_subcommand(
      "validate", "Validate a topology file; prints every error as FILE:LINE:COL");
  check->alias("check");
  auto check_path = std::make_shared<std::string>();
  check->add_option("file", *check_path, "topology file (TOML)")->required();
  check->callback([check_path, &exit_code] { exit_code = runCheck(*check_path); });

  CLI::App* owner = topology->add_subcommand(
      "owner", "Print a channel's owner region or a user's home region, and why");
  auto args = std::make_shared<OwnerArgs>();
  owner->add_option("file", args->path, "topology file (TOML)")->required();
  owner->add_option("--tenant", args->tenant, "tenant")->required();
  CLI::Option* channel = owner->add_option("--channel", args->channel, "channel (ns:name)");
  CLI::Option* user = owner->add_option("--user", args->user, "user id: print its home region");
  channel->excludes(user);
  owner->add_option("--down", args->down, "treat this region as unhealthy (repeatable)");
  owner->callback([args, &exit_code] { exit_code = runOwner(*args); });

  addTopologyRenderCommands(*topology, exit_code);
}

}  // namespace wsfleet::ctl
