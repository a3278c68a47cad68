#pragma once
// The fleet's topology: its regions (one NATS cluster each), where clients of each region
// reconnect, which client networks each region serves, the order in which regions take
// over from one another, and the operator's pins and moves. Every process of the fleet
// reads the same file (conf/topology.toml), so every process computes the same owners.
//
// Pure: parseTopology() takes the text and a name for messages; only loadTopology()
// touches the file system.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_network.h"
#include "common/status.h"

namespace wsfleet {

constexpr uint32_t kMinRegionWeight = 1;
constexpr uint32_t kMaxRegionWeight = 1000;
constexpr uint32_t kDefaultRegionWeight = 100;

struct ClientSubnet {
  IpNetwork network;
  std::string text;  // as written, for messages and rendered configs
};

// One NATS server of a region, as `wsfleetctl topology render-nats` writes its conf. Each
// address is host:port: the server listens there and its peers dial it there.
struct NatsServerSpec {
  std::string name;     // server_name: [A-Za-z0-9_-]{1,64}, unique across the fleet
  std::string client;   // client connections
  std::string cluster;  // routes from the region's other servers
  std::string gateway;  // gateway connections from the other regions
  std::string monitor;  // HTTP monitoring (/varz, /gatewayz, /healthz)
};

struct RegionSpec {
  std::string name;  // [A-Za-z0-9_-]{1,64}, unique
  // nats:// or tls://host:port, at least one; nats://<client> of each server by default.
  std::vector<std::string> nats_urls;
  std::vector<std::string> public_urls;      // ws:// or wss://, at least one
  std::vector<ClientSubnet> client_subnets;  // for geo-DNS; no overlap across regions
  std::vector<std::string> failover;         // other regions, most preferred first
  uint32_t weight = kDefaultRegionWeight;    // share of rendezvous ownership, 1..1000
  std::string gateway_url;                   // host:port of the NATS gateway; may be empty
  std::vector<NatsServerSpec> servers;       // optional; in file order
  std::vector<std::string> dns_addresses;    // IP literals geo-DNS answers with; optional
};

// Every channel of `ns` in `tenant` is owned by `region` (while it is healthy).
struct NamespacePin {
  std::string tenant;
  std::string ns;
  std::string region;
};

// An operator moved one channel to `region`; this outranks pins and hashing.
struct ChannelMove {
  std::string tenant;
  std::string channel;
  std::string region;
};

struct Topology {
  std::vector<RegionSpec> regions;  // in file order
  std::vector<NamespacePin> pins;
  std::vector<ChannelMove> moves;

  const RegionSpec* findRegion(std::string_view name) const;
  const NamespacePin* findPin(std::string_view tenant, std::string_view ns) const;
  const ChannelMove* findMove(std::string_view tenant, std::string_view channel) const;
};

// Parses and validates a topology. On failure: Code::kConfig, reason "config_invalid",
// the message every problem as "SOURCE:LINE:COL: ..." one per line.
Result<Topology> parseTopology(std::string_view text, std::string_view source_name);

// Reads `path` and parses it with the path as the source name.
Result<Topology> loadTopology(const std::string& path);

// What a daemon of region `region` loads: the topology, which must name that region
// (Code::kConfig "region_not_in_topology" otherwise).
Result<std::shared_ptr<const Topology>> loadTopologyOf(const std::string& path,
                                                       std::string_view region);

}  // namespace wsfleet
