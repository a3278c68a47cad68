#pragma once
// The edge's configuration (TOML). Every option, its type, default and meaning is in the
// one table in edge_config.cc; conf/edge.toml is the commented sample. Loading reports
// every error at once, each as "FILE:LINE:COL: message", and refuses unknown keys.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/channel.h"
#include "common/config_values.h"
#include "common/ip_network.h"
#include "common/nats_config.h"
#include "common/status.h"
#include "common/token.h"
#include "regions/topology.h"

namespace wsfleet {

enum class Ordering { kOwner, kNone };  // kOwner: sequenced + stored; kNone: at-most-once
enum class Priority { kNormal, kLow };

struct NamespaceConfig {
  std::string name;
  uint64_t history_size = 0;   // messages kept per channel (0 = no history)
  int64_t history_ttl_ms = 0;  // age limit (0 = none)
  bool presence = false;
  bool join_leave = false;
  uint64_t max_message_bytes = 0;  // 0 = websocket.max_message_bytes
  Ordering ordering = Ordering::kOwner;
  Priority priority = Priority::kNormal;
  bool allow_publish = true;  // clients may publish (backend API always may)
};

struct TenantConfig {
  std::string name;
  TenantTokenConfig tokens;                  // issuer + keys
  std::vector<std::string> api_keys;         // backend API bearer keys
  std::vector<ChannelPattern> default_subs;  // when the token has no `subs`
  std::vector<ChannelPattern> default_pubs;  // when the token has no `pubs`
  bool client_send = true;                   // clients may use `send`
  // Region mode: direct messages to a user offline in the whole region are kept this long
  // (0: no inbox, they are dropped), at most inbox_max_messages per user.
  uint64_t inbox_ttl_ms = 86400000;
  uint64_t inbox_max_messages = 100;
  std::map<std::string, NamespaceConfig> namespaces;
};

// Inbound protection ([limits]). Rates are per second; a rate of 0 disables that limit.
struct LimitsConfig {
  uint64_t commands_per_s = 100;       // per connection, every client command
  uint64_t commands_burst = 400;       // > max_channels_per_connection: resubscribing at once
  uint64_t user_publishes_per_s = 50;  // per tenant + user, across its connections
  uint64_t user_publishes_burst = 100;
  uint64_t channel_publishes_per_s = 1000;  // per tenant + channel, clients and backend API
  uint64_t channel_publishes_burst = 2000;
  uint64_t refusals_before_close = 50;    // rate-limited commands tolerated per window (0: never)
  uint64_t refusal_window_ms = 10000;     // close 4008 beyond that
  uint64_t handshakes_per_ip_per_s = 50;  // per IPv4 address / IPv6 /64
  uint64_t handshakes_per_ip_burst = 100;
  uint64_t auth_failures_threshold = 20;  // failed tokens in a burst before a ban (0: no bans)
  uint64_t auth_failures_decay_per_s = 1;
  uint64_t ban_s = 60;
  // Open connections on the whole host (all workers), 0 = unlimited: per IPv4 address /
  // IPv6 /64 (exempt_ips are not capped), and per tenant + user.
  uint64_t max_connections_per_ip = 1000;
  uint64_t max_connections_per_user = 100;
  uint64_t tracked_keys = 65536;      // entries per table (users, channels, addresses)
  std::vector<IpNetwork> exempt_ips;  // never limited per address nor banned
};

struct EdgeConfig {
  std::string source_path;  // the file it was loaded from

  // [node]
  std::string node_name;  // default: host name
  std::string region = "local";
  // [node] topology: the fleet's regions and who owns which channel (regions/). Empty:
  // every channel is owned by this edge's region. Loaded with the configuration.
  std::string topology_path;
  std::shared_ptr<const Topology> topology;
  std::string log_level = "info";
  uint64_t workers = 0;  // worker processes; 0 = one per core
  // Client connections one worker holds at most: its descriptor limit is set to this
  // plus a reserve before libwebsockets sizes its tables (edge_server.cc).
  uint64_t max_connections_per_worker = 20000;

  // [websocket]
  ListenAddress ws_listen{"127.0.0.1", 8080};
  std::string ws_path = "/ws";
  std::string tls_cert_file;  // both set: TLS (wss); both empty: plain
  std::string tls_key_file;
  std::vector<std::string> allowed_origins;  // empty: any Origin (and none) accepted
  std::string public_url;                    // announced in welcome.regions; default derived
  uint64_t max_header_bytes = 8192;          // whole request head, 431 above
  uint64_t max_message_bytes = 65536;        // inbound frame/message cap, close 1009
  uint64_t receive_buffer_bytes = 4096;      // lws per-connection receive buffer
  uint64_t ping_interval_ms = 25000;
  uint64_t handshake_timeout_ms = 10000;
  uint64_t resume_window_ms = 120000;
  uint64_t refresh_notice_ms = 30000;      // refresh_required this long before exp
  uint64_t outbound_max_bytes = 4u << 20;  // per-connection queue, close 4009 above
  uint64_t outbound_max_messages = 4096;
  // Over either high-water mark a connection is behind: low-priority frames are coalesced
  // or dropped, and staying there for slow_consumer_grace_ms closes it with 4009.
  // 0 = half of the matching cap (resolved by EdgeService).
  uint64_t outbound_high_water_bytes = 0;
  uint64_t outbound_high_water_messages = 0;
  uint64_t slow_consumer_grace_ms = 5000;
  uint64_t max_channels_per_connection = 256;

  // [admin]
  ListenAddress admin_listen{"127.0.0.1", 9090};
  uint64_t max_body_bytes = 1u << 20;
  // Bearer credential of the operator routes (POST /admin/drain). Empty: those routes
  // answer only loopback peers. Never a tenant API key (checked at load).
  std::string operator_token;

  // [drain]
  uint64_t drain_window_ms = 30000;  // reconnect hints are spread over this long
  uint64_t drain_grace_ms = 5000;    // then this long to leave before the 1001 close
  std::string drain_reconnect_url;   // the hints' url; empty = the public URL

  // [auth]
  TokenPolicy token_policy;  // audience, leeway_s, max_token_bytes

  // [nats]: the region's NATS cluster. No servers = standalone (the edge talks to no one).
  NatsConfig nats;
  uint64_t history_replicas = 3;  // nats.history_replicas: replicas of the region's streams

  // [storage]
  std::string storage_dir = "/var/lib/wsfleet";  // relative paths: relative to the conf file
  uint64_t map_size_mb = 256;
  bool sync_every_commit = false;
  uint64_t sync_interval_ms = 1000;

  // [presence]
  uint64_t presence_ttl_ms = 30000;
  uint64_t presence_heartbeat_ms = 5000;
  uint64_t presence_flush_ms = 20;

  // [limits]
  LimitsConfig limits;

  // [tenants.NAME] ...
  std::map<std::string, TenantConfig> tenants;
};

// Loads and validates. On failure the Status (Code::kConfig) message lists every error,
// one per line, each "FILE:LINE:COL: message".
Result<EdgeConfig> loadEdgeConfig(const std::string& path);
Result<EdgeConfig> parseEdgeConfig(std::string_view text, const std::string& source_name);

// Options that take effect only at start (listeners, TLS, storage, identity, presence
// timing): their keys ("websocket.listen", ...) whose values differ between the running
// config and a reloaded one. Empty when a reload can apply everything.
std::vector<std::string> restartOnlyChanges(const EdgeConfig& running, const EdgeConfig& next);
// Copies the restart-only options of `running` into `next`, so that a reload keeps them.
void keepRestartOnly(const EdgeConfig& running, EdgeConfig& next);

// The namespace config for a channel, or nullptr when the tenant has no such namespace.
const NamespaceConfig* findNamespace(const TenantConfig& tenant, std::string_view channel);

}  // namespace wsfleet
