#pragma once
// The [nats] section every daemon shares: which servers of its region's NATS cluster to
// reach, with which credentials, and how its link behaves (common/nats_link.h). One option
// table, checked the same way for the edge and the bridge.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_toml.h"
#include "common/nats_link.h"

namespace wsfleet {

struct NatsConfig {
  std::vector<std::string> servers;  // nats://host:port or tls://host:port
  std::string token;                 // at most one of token, user/password, creds_file
  std::string user;
  std::string password;
  std::string creds_file;
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  uint64_t reconnect_wait_ms = 250;
  uint64_t reconnect_wait_max_ms = 5000;
  uint64_t reconnect_buffer_bytes = 8u << 20;
  uint64_t ping_interval_ms = 5000;
  uint64_t max_pending_ops = 65536;
  uint64_t max_pending_bytes = 64u << 20;
  uint64_t request_timeout_ms = 5000;
  bool enabled() const { return !servers.empty(); }
};

// Keys relative to [nats] ("servers", "token", ...); lift them with liftOptions.
const std::vector<ConfigOption<NatsConfig>>& natsOptions();

// The checks across keys (one credential kind, TLS files exist, ...). Relative file names
// are resolved against `base_dir`. `error(key, message)` receives each problem.
void checkNatsConfig(NatsConfig& nats, std::string_view base_dir,
                     const std::function<void(const char* key, std::string message)>& error);

// The link options of a connection made with this section; name and metric labels are
// the caller's.
NatsLinkOptions natsLinkOptions(const NatsConfig& nats);

}  // namespace wsfleet
