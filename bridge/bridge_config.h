#pragma once
// wsfleet-bridge's configuration (conf/bridge.toml): its region, the fleet's topology, its
// region's NATS cluster, its admin listener and how it treats the links to other regions.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/config_values.h"
#include "common/nats_config.h"
#include "common/status.h"
#include "regions/topology.h"

namespace wsfleet {

struct LinksConfig {
  uint64_t heartbeat_interval_ms = 500;   // to the region's bridges and to every other region
  uint64_t down_after_ms = 2000;          // a bridge or region not heard this long is gone
  uint64_t forward_timeout_ms = 2000;     // one try of a forwarded publish
  uint64_t forward_attempts = 2;          // tries of a forwarded publish (same message id)
  uint64_t max_pending_forwards = 10000;  // forwarded publishes in flight; more are refused
  uint64_t interest_refresh_ms = 2000;    // full interest snapshots to owner regions
  uint64_t interest_linger_ms = 1000;     // interest outlives the last subscriber this long
};

struct BridgeConfig {
  std::string source_path;
  // [bridge]
  std::string region;
  std::string topology_path;
  std::shared_ptr<const Topology> topology;
  std::string instance;  // default <host>-<pid>, resolved at load
  std::string log_level = "info";
  // [nats]
  NatsConfig nats;
  // [admin]
  ListenAddress admin_listen{"127.0.0.1", 9190};
  // [links]
  LinksConfig links;
};

// Loads and validates, topology included. Code::kConfig with every problem as
// "FILE:LINE:COL: message", one per line.
Result<BridgeConfig> loadBridgeConfig(const std::string& path);
Result<BridgeConfig> parseBridgeConfig(std::string_view text, const std::string& source_name);

}  // namespace wsfleet
