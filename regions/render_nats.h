#pragma once
// nats-server configurations for every server of every region of a topology: the region is
// a cluster (cluster name = region name) whose servers route to each other, and the regions
// form a supercluster through gateways (gateway name = region name). JetStream is on with
// its store under `data_dir`/<server name>.
//
// Pure: the topology in, the files' text out (wsfleetctl topology render-nats writes them).

#include <string>
#include <vector>

#include "common/status.h"
#include "regions/rendered_file.h"
#include "regions/topology.h"

namespace wsfleet {

constexpr const char* kDefaultNatsDataDir = "/var/lib/wsfleet/nats";

struct NatsRenderOptions {
  std::string source;                          // the topology's name, for the header comment
  std::string data_dir = kDefaultNatsDataDir;  // JetStream stores go in data_dir/<server>
};

// One "<server>.conf" per server, regions in file order. Code::kConfig
// "topology_incomplete" when a region lists no [[regions.servers]]; "config_invalid" for a
// data_dir that a conf cannot hold.
Result<std::vector<RenderedFile>> renderNatsConfs(const Topology& topology,
                                                  const NatsRenderOptions& options);

}  // namespace wsfleet
