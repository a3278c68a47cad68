#include "bridge/bridge_config.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

#include "common/config_toml.h"

namespace wsfleet {

namespace {

const std::vector<ConfigOption<BridgeConfig>>& bridgeOptions() {
  using C = BridgeConfig;
  static const std::vector<ConfigOption<C>> options = joinOptions<C>({
      {
          stringOption<C>("bridge.region", WSF_FIELD(C, region), "",
                          "this bridge's region (a region of the topology); required",
                          checkNodeName),
          stringOption<C>("bridge.topology", WSF_FIELD(C, topology_path), "",
                          "the fleet's topology file (relative: to this file); required"),
          stringOption<C>("bridge.instance", WSF_FIELD(C, instance), "",
                          "this bridge's name among its region's bridges; empty = host-pid"),
          enumOption<C>(
              "bridge.log_level", WSF_FIELD(C, log_level),
              std::vector<std::pair<std::string, std::string>>{
                  {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}},
              "info", "least severe log level written"),
      },
      liftOptions(natsOptions(), "nats", &C::nats),
      {
          listenOption<C>("admin.listen", &C::admin_listen, "127.0.0.1:9190",
                          "address of /healthz, /readyz, /metrics and /status"),
          intOption<C>("links.heartbeat_interval_ms", WSF_FIELD(C, links.heartbeat_interval_ms),
                       500, 50, 60000,
                       "heartbeats to the region's bridges and to every other region"),
          intOption<C>("links.down_after_ms", WSF_FIELD(C, links.down_after_ms), 2000, 100, 600000,
                       "a bridge or region not heard this long is taken as gone"),
          intOption<C>("links.forward_timeout_ms", WSF_FIELD(C, links.forward_timeout_ms), 2000, 50,
                       120000, "one try of a publish forwarded to its owner region"),
          intOption<C>("links.forward_attempts", WSF_FIELD(C, links.forward_attempts), 2, 1, 10,
                       "tries of a forwarded publish (the owner drops repeats by message id)"),
          intOption<C>("links.max_pending_forwards", WSF_FIELD(C, links.max_pending_forwards),
                       10000, 1, 10000000, "forwarded publishes in flight; more are refused"),
          intOption<C>("links.interest_refresh_ms", WSF_FIELD(C, links.interest_refresh_ms), 2000,
                       100, 600000, "full interest snapshots to owner regions this often"),
          intOption<C>("links.interest_linger_ms", WSF_FIELD(C, links.interest_linger_ms), 1000, 0,
                       600000, "interest outlives the region's last subscriber this long"),
      },
  });
  return options;
}

Result<BridgeConfig> parseWithBase(std::string_view text, const std::string& source_name,
                                   const std::string& base_dir) {
  ConfigErrors errors(source_name);
  std::optional<toml::table> root = parseToml(text, errors);
  if (!root) return errors.toStatus();
  BridgeConfig config;
  config.source_path = source_name;
  rejectUnknownKeys(*root, "", optionKeys(bridgeOptions(), {}), errors);
  applyOptions(*root, bridgeOptions(), "", config, errors);

  auto error = [&](std::string_view key, const std::string& message) {
    const toml::node* node = findPath(*root, key);
    if (node == nullptr) node = findPath(*root, key.substr(0, key.rfind('.')));
    errors.addAt(node, std::string(key) + ": " + message);
  };
  checkNatsConfig(config.nats, base_dir,
                  [&](const char* key, std::string message) { error(key, message); });
  if (config.nats.servers.empty()) {
    error("nats.servers", "is required: the bridge works through its region's NATS cluster");
  }
  if (config.region.empty()) error("bridge.region", "is required");
  if (config.topology_path.empty()) {
    error("bridge.topology", "is required");
  } else if (!config.region.empty()) {
    config.topology_path = resolveRelativePath(base_dir, config.topology_path);
    auto topology = loadTopologyOf(config.topology_path, config.region);
    if (topology) {
      config.topology = std::move(*topology);
    } else {
      error("bridge.topology", topology.status().message());
    }
  }
  if (config.instance.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      std::snprintf(host, sizeof(host), "bridge");
    }
    std::string name(host);
    name = name.substr(0, name.find('.'));
    config.instance = name + "-" + std::to_string(getpid());
    if (!checkNodeName(config.instance).empty())
      config.instance = "bridge-" + std::to_string(getpid());
  } else if (std::string problem = checkNodeName(config.instance); !problem.empty()) {
    error("bridge.instance", problem);
  }
  if (config.links.down_after_ms <= config.links.heartbeat_interval_ms) {
    error("links.down_after_ms", "must be longer than links.heartbeat_interval_ms");
  }
  if (!errors.empty()) return errors.toStatus();
  return config;
}

}  // namespace

Result<BridgeConfig> loadBridgeConfig(const std::string& path) {
  return loadConfigWith(path, parseWithBase);
}

Result<BridgeConfig> parseBridgeConfig(std::string_view text, const std::string& source_name) {
  return parseWithBase(text, source_name, configBaseDir(source_name, false));
}

}  // namespace wsfleet
