// `topology render-nats` and `topology render-dns`: the topology rendered as nats-server
// and BIND 9 configuration. The rendering is pure (regions/render_*.h); this file reads the
// topology and writes the files.

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "regions/render_dns.h"
#include "regions/render_nats.h"
#include "regions/topology.h"
#include "tools/ctl/commands.h"
#include "tools/ctl/fleet_client.h"
#include "tools/ctl/owner_bucket.h"
#include "tools/ctl/topology_render_command.h"

namespace wsfleet::ctl {
namespace {

namespace fs = std::filesystem;

struct NatsArgs {
  std::string path;
  std::string out;
  std::string data_dir = kDefaultNatsDataDir;
};

struct DnsArgs {
  std::string path;
  std::string format = "bind";
  std::string out;
  std::string zone;
  std::string zone_dir;
  std::vector<std::string> drained;
  std::vector<std::string> name_servers;
  uint32_t ttl = kDefaultDnsTtl;
  int64_t serial = -1;  // -1: the current time
  // --nats: the drained regions are also read from the fleet's ownership bucket (the
  // marks `wsfleetctl region drain` leaves), so re-rendering after a drain follows it.
  std::vector<std::string> nats_servers;
  std::string creds_file;
  std::string token;
  std::string tls_ca_file;
};

// The regions marked drained in the fleet (wsfleetctl region drain).
Result<std::vector<std::string>> drainedInFleet(const DnsArgs& args) {
  FleetArgs fleet_args;
  fleet_args.topology_path = args.path;
  fleet_args.servers = args.nats_servers;
  fleet_args.creds_file = args.creds_file;
  fleet_args.token = args.token;
  fleet_args.tls_ca_file = args.tls_ca_file;
  WSF_ASSIGN_OR_RETURN(auto fleet, FleetClient::open(fleet_args));
  WSF_ASSIGN_OR_RETURN(std::vector<RegionRecord> marks, readRegionRecords(*fleet));
  std::vector<std::string> drained;
  for (const RegionRecord& mark : marks) {
    if (mark.drained) drained.push_back(mark.region);
  }
  return drained;
}

// Each file replaced whole (written aside, then renamed), so that a server reloading while
// we write never reads half of one.
int writeFiles(const std::string& dir, const std::vector<RenderedFile>& files) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    std::cerr << dir << ": " << error.message() << "\n";
    return kExitFailure;
  }
  for (const RenderedFile& file : files) {
    const fs::path target = fs::path(dir) / file.name;
    const fs::path aside = fs::path(dir) / ("." + file.name + ".tmp");
    {
      std::ofstream out(aside, std::ios::binary | std::ios::trunc);
      out << file.text;
      out.close();
      if (!out) {
        std::cerr << aside.string() << ": cannot write\n";
        return kExitFailure;
      }
    }
    fs::rename(aside, target, error);
    if (error) {
      std::cerr << target.string() << ": " << error.message() << "\n";
      return kExitFailure;
    }
    std::cout << "wrote " << target.string() << "\n";
  }
  return kExitOk;
}

int exitFor(const Status& status) {
  std::cerr << status.message() << "\n";
  return status.code() == Code::kConfig ? kExitUsage : kExitFailure;
}

int runRenderNats(const NatsArgs& args) {
  Result<Topology> topology = loadTopology(args.path);
  if (!topology) return exitFor(topology.status());
  NatsRenderOptions options;
  options.source = args.path;
  options.data_dir = args.data_dir;
  Result<std::vector<RenderedFile>> files = renderNatsConfs(*topology, options);
  if (!files) return exitFor(files.status());
  return writeFiles(args.out, *files);
}

int runRenderDns(const DnsArgs& args) {
  Result<Topology> topology = loadTopology(args.path);
  if (!topology) return exitFor(topology.status());
  DnsRenderOptions options;
  options.source = args.path;
  options.zone = args.zone;
  std::error_code error;
  options.zone_dir = args.zone_dir.empty()
                         ? fs::absolute(args.out, error).lexically_normal().string()
                         : args.zone_dir;
  if (!args.name_servers.empty()) options.name_servers = args.name_servers;
  options.ttl = args.ttl;
  options.serial = args.serial >= 0 ? static_cast<uint32_t>(args.serial)
                                    : static_cast<uint32_t>(std::time(nullptr));
  DrainedSet drained(args.drained.begin(), args.drained.end());
  if (!args.nats_servers.empty()) {
    auto marked = drainedInFleet(args);
    if (!marked) return exitFor(marked.status());
    drained.insert(marked->begin(), marked->end());
  }
  Result<std::vector<RenderedFile>> files = renderBindViews(*topology, drained, options);
  if (!files) return exitFor(files.status());
  return writeFiles(args.out, *files);
}

}  // namespace

void addTopologyRenderCommands(CLI::App& topology, int& exit_code) {
  CLI::App* nats = topology.add_subcommand(
      "render-nats", "Write a nats-server conf for every server of every region");
  auto nats_args = std::make_shared<NatsArgs>();
  nats->add_option("file", nats_args->path, "topology file (TOML)")->required();
  nats->add_option("--out", nats_args->out, "directory for the <server>.conf files")->required();
  nats->add_option("--data-dir", nats_args->data_dir, "JetStream stores go in DATA_DIR/<server>")
      ->capture_default_str();
  nats->callback([nats_args, &exit_code] { exit_code = runRenderNats(*nats_args); });

  CLI::App* dns = topology.add_subcommand(
      "render-dns", "Write geo-DNS configuration: one view per region's client_subnets");
  auto dns_args = std::make_shared<DnsArgs>();
  dns->add_option("file", dns_args->path, "topology file (TOML)")->required();
  dns->add_option("--format", dns_args->format, "output format")
      ->check(CLI::IsMember({"bind"}))
      ->capture_default_str();
  dns->add_option("--out", dns_args->out, "directory for the views file and zone files")
      ->required();
  dns->add_option("--zone", dns_args->zone, "the name clients resolve, e.g. ws.example.com")
      ->required();
  dns->add_option("--drained", dns_args->drained,
                  "answer this region's clients with its failover region (repeatable)");
  dns->add_option("--ttl", dns_args->ttl, "TTL of the answers, seconds")
      ->check(CLI::Range(0u, 2147483647u))
      ->capture_default_str();
  dns->add_option("--ns", dns_args->name_servers,
                  "name of a name server for the NS records, outside the zone (repeatable; "
                  "default localhost)");
  dns->add_option("--zone-dir", dns_args->zone_dir,
                  "where named will read the zone files (default: --out made absolute)");
  dns->add_option("--nats", dns_args->nats_servers,
                  "a NATS server of the fleet (repeatable): drained regions are also read from "
                  "the fleet (wsfleetctl region drain)");
  dns->add_option("--creds", dns_args->creds_file, "NATS credentials file (with --nats)");
  dns->add_option("--token", dns_args->token, "NATS token (with --nats)");
  dns->add_option("--tls-ca", dns_args->tls_ca_file, "CA file: NATS over TLS (with --nats)");
  dns->add_option("--serial", dns_args->serial, "SOA serial (default: the current Unix time)")
      ->check(CLI::Range(int64_t{0}, int64_t{4294967295}));
  dns->callback([dns_args, &exit_code] { exit_code = runRenderDns(*dns_args); });
}

}  // namespace wsfleet::ctl
