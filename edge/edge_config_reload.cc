// Which options a running edge can take from a reloaded file (SIGHUP) and which need a
// restart. The restart-only ones are what the process has already built from its config:
// sockets (listen addresses, TLS), the libwebsockets context (header buffer, handshake
// timeout), the LMDB environment and its syncer, the worker's identity (node name,
// region: presence records and session ids carry them) and the presence timing the tick
// loop was sized for.
#include <functional>

#include "edge/edge_config.h"

namespace wsfleet {
namespace {

bool sameAddress(const ListenAddress& a, const ListenAddress& b) {
  return a.host == b.host && a.port == b.port;
}

// One restart-only option: its key, whether it differs, and how to keep the running value.
struct RestartOnly {
  const char* key;
  std::function<bool(const EdgeConfig&, const EdgeConfig&)> same;
  std::function<void(const EdgeConfig&, EdgeConfig&)> keep;
};

#define WSF_RESTART_ONLY(key, field)                                                  \
  RestartOnly {                                                                       \
    key, [](const EdgeConfig& a, const EdgeConfig& b) { return a.field == b.field; }, \
        [](const EdgeConfig& from, EdgeConfig& to) { to.field = from.field; }         \
  }

const std::vector<RestartOnly>& restartOnlyOptions() {
  static const std::vector<RestartOnly> options = {
      WSF_RESTART_ONLY("node.name", node_name),
      WSF_RESTART_ONLY("node.region", region),
      WSF_RESTART_ONLY("node.workers", workers),
      // Owners are computed from the topology read at start; a reload keeps it (ownership
      // moves at run time are the bridges' business).
      RestartOnly{"node.topology",
                  [](const EdgeConfig& a, const EdgeConfig& b) {
                    return a.topology_path == b.topology_path;
                  },
                  [](const EdgeConfig& from, EdgeConfig& to) {
                    to.topology_path = from.topology_path;
                    to.topology = from.topology;
                  }},
      RestartOnly{"websocket.listen",
                  [](const EdgeConfig& a, const EdgeConfig& b) {
                    return sameAddress(a.ws_listen, b.ws_listen);
                  },
                  [](const EdgeConfig& from, EdgeConfig& to) { to.ws_listen = from.ws_listen; }},
      WSF_RESTART_ONLY("websocket.path", ws_path),
      WSF_RESTART_ONLY("websocket.receive_buffer_bytes", receive_buffer_bytes),
      WSF_RESTART_ONLY("websocket.tls_cert", tls_cert_file),
      WSF_RESTART_ONLY("websocket.tls_key", tls_key_file),
      WSF_RESTART_ONLY("websocket.max_header_bytes", max_header_bytes),
      WSF_RESTART_ONLY("websocket.handshake_timeout_ms", handshake_timeout_ms),
      RestartOnly{
          "admin.listen",
          [](const EdgeConfig& a, const EdgeConfig& b) {
            return sameAddress(a.admin_listen, b.admin_listen);
          },
          [](const EdgeConfig& from, EdgeConfig& to) { to.admin_listen = from.admin_listen; }},
      WSF_RESTART_ONLY("storage.dir", storage_dir),
      WSF_RESTART_ONLY("storage.map_size_mb", map_size_mb),
      WSF_RESTART_ONLY("storage.sync_every_commit", sync_every_commit),
      WSF_RESTART_ONLY("storage.sync_interval_ms", sync_interval_ms),
      WSF_RESTART_ONLY("presence.ttl_ms", presence_ttl_ms),
      WSF_RESTART_ONLY("presence.heartbeat_ms", presence_heartbeat_ms),
      WSF_RESTART_ONLY("presence.flush_ms", presence_flush_ms),
  };
  return options;
}

#undef WSF_RESTART_ONLY

}  // namespace

std::vector<std::string> restartOnlyChanges(const EdgeConfig& running, const EdgeConfig& next) {
  std::vector<std::string> changed;
  for (const RestartOnly& option : restartOnlyOptions()) {
    if (!option.same(running, next)) changed.emplace_back(option.key);
  }
  return changed;
}

void keepRestartOnly(const EdgeConfig& running, EdgeConfig& next) {
  for (const RestartOnly& option : restartOnlyOptions()) option.keep(running, next);
}

}  // namespace wsfleet
