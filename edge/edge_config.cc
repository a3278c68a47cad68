#include "edge/edge_config.h"

#include <unistd.h>

#include <filesystem>

#include "common/openssl.h"
#include "edge/edge_config_internal.h"

namespace wsfleet {
namespace {

constexpr int64_t kHourMs = 3600 * 1000;
constexpr int64_t kDayMs = 24 * kHourMs;
constexpr int64_t kMiB = 1 << 20;

using edge_config_detail::checkNodeName;
using edge_config_detail::checkNonEmpty;
using edge_config_detail::checkOperatorToken;
using edge_config_detail::checkPublicUrl;
using edge_config_detail::checkWsPath;
using edge_config_detail::Loader;
using edge_config_detail::parseOrigin;

// ---- The option tables. Defaults here are the ones in force; conf/edge.toml repeats them
// with longer explanations.

using EdgeOption = ConfigOption<EdgeConfig>;

const std::vector<EdgeOption>& edgeOptions() {
  static const std::vector<EdgeOption> options = joinOptions<EdgeConfig>(
      {{
           // [node]
           stringOption<EdgeConfig>("node.name", WSF_FIELD(EdgeConfig, node_name), "",
                                    "this node's name in logs, metrics and welcome frames; "
                                    "empty = the host name"),
           stringOption<EdgeConfig>("node.region", WSF_FIELD(EdgeConfig, region), "local",
                                    "the region this edge belongs to", checkNodeName),
           stringOption<EdgeConfig>("node.topology", WSF_FIELD(EdgeConfig, topology_path), "",
                                    "the fleet's topology file (relative: to this file); empty = "
                                    "one region, which owns every channel"),
           enumOption<EdgeConfig>(
               "node.log_level", WSF_FIELD(EdgeConfig, log_level),
               std::vector<std::pair<std::string, std::string>>{
                   {"debug", "debug"}, {"info", "info"}, {"warn", "warn"}, {"error", "error"}},
               "info", "least severe log level written"),
           intOption<EdgeConfig>("node.workers", WSF_FIELD(EdgeConfig, workers), 0, 0, 256,
                                 "worker processes sharing the port; 0 = one per core"),
           intOption<EdgeConfig>("node.max_connections_per_worker",
                                 WSF_FIELD(EdgeConfig, max_connections_per_worker), 20000, 16,
                                 1048576,
                                 "client connections one worker holds at most (its descriptor "
                                 "limit); more per host: more workers"),
           // [websocket]
           listenOption<EdgeConfig>("websocket.listen", &EdgeConfig::ws_listen, "127.0.0.1:8080",
                                    "address the WebSocket listener binds"),
           stringOption<EdgeConfig>("websocket.path", WSF_FIELD(EdgeConfig, ws_path), "/ws",
                                    "HTTP path of the WebSocket endpoint", checkWsPath),
           stringOption<EdgeConfig>("websocket.tls_cert", WSF_FIELD(EdgeConfig, tls_cert_file), "",
                                    "PEM certificate chain; with tls_key enables wss"),
           stringOption<EdgeConfig>("websocket.tls_key", WSF_FIELD(EdgeConfig, tls_key_file), "",
                                    "PEM private key of tls_cert"),
           listOption<EdgeConfig>(
               "websocket.allowed_origins", WSF_FIELD(EdgeConfig, allowed_origins), {},
               "Origin allowlist (scheme://host[:port]); empty = any",
               std::function<std::string(std::string_view, std::string&)>(parseOrigin)),
           stringOption<EdgeConfig>("websocket.public_url", WSF_FIELD(EdgeConfig, public_url), "",
                                    "URL announced to clients; empty = derived from listen",
                                    checkPublicUrl),
           intOption<EdgeConfig>("websocket.max_header_bytes",
                                 WSF_FIELD(EdgeConfig, max_header_bytes), 8192, 1024, kMiB,
                                 "cap on the handshake request head (431 above)"),
           intOption<EdgeConfig>("websocket.max_message_bytes",
                                 WSF_FIELD(EdgeConfig, max_message_bytes), 65536, 1, 64 * kMiB,
                                 "cap on one inbound message (close 1009 above)"),
           intOption<EdgeConfig>("websocket.receive_buffer_bytes",
                                 WSF_FIELD(EdgeConfig, receive_buffer_bytes), 4096, 128, 65536,
                                 "per-connection receive buffer (memory vs. reads per publish)"),
           intOption<EdgeConfig>("websocket.ping_interval_ms",
                                 WSF_FIELD(EdgeConfig, ping_interval_ms), 25000, 1000, kHourMs,
                                 "server ping period"),
           intOption<EdgeConfig>("websocket.handshake_timeout_ms",
                                 WSF_FIELD(EdgeConfig, handshake_timeout_ms), 10000, 100,
                                 10 * 60000, "time allowed for the HTTP upgrade"),
           intOption<EdgeConfig>("websocket.resume_window_ms",
                                 WSF_FIELD(EdgeConfig, resume_window_ms), 120000, 0, kDayMs,
                                 "how long a session can be resumed"),
           intOption<EdgeConfig>("websocket.refresh_notice_ms",
                                 WSF_FIELD(EdgeConfig, refresh_notice_ms), 30000, 0, kDayMs,
                                 "refresh_required is sent this long before the token expires"),
           intOption<EdgeConfig>(
               "websocket.outbound_max_bytes", WSF_FIELD(EdgeConfig, outbound_max_bytes), 4 * kMiB,
               1, 1024 * kMiB, "per-connection send queue cap in bytes (close 4009 above)"),
           intOption<EdgeConfig>("websocket.outbound_max_messages",
                                 WSF_FIELD(EdgeConfig, outbound_max_messages), 4096, 1, 1000000,
                                 "per-connection send queue cap in messages"),
           intOption<EdgeConfig>("websocket.outbound_high_water_bytes",
                                 WSF_FIELD(EdgeConfig, outbound_high_water_bytes), 0, 0,
                                 1024 * kMiB,
                                 "queue bytes over which a connection is behind "
                                 "(0 = half of outbound_max_bytes)"),
           intOption<EdgeConfig>("websocket.outbound_high_water_messages",
                                 WSF_FIELD(EdgeConfig, outbound_high_water_messages), 0, 0, 1000000,
                                 "queued messages over which a connection is behind "
                                 "(0 = half of outbound_max_messages)"),
           intOption<EdgeConfig>("websocket.slow_consumer_grace_ms",
                                 WSF_FIELD(EdgeConfig, slow_consumer_grace_ms), 5000, 0, kHourMs,
                                 "a connection behind for longer than this is closed with 4009"),
           intOption<EdgeConfig>("websocket.max_channels_per_connection",
                                 WSF_FIELD(EdgeConfig, max_channels_per_connection), 256, 1, 100000,
                                 "subscriptions one connection may hold"),
           // [admin]
           listenOption<EdgeConfig>("admin.listen", &EdgeConfig::admin_listen, "127.0.0.1:9090",
                                    "address of /metrics, /healthz, /readyz and the backend API"),
           intOption<EdgeConfig>("admin.max_body_bytes", WSF_FIELD(EdgeConfig, max_body_bytes),
                                 kMiB, 1, 64 * kMiB, "cap on a backend API request body"),
           stringOption<EdgeConfig>("admin.operator_token", WSF_FIELD(EdgeConfig, operator_token),
                                    "",
                                    "bearer credential of POST /admin/drain; empty = loopback "
                                    "peers only",
                                    checkOperatorToken),
           // [drain]
           intOption<EdgeConfig>("drain.window_ms", WSF_FIELD(EdgeConfig, drain_window_ms), 30000,
                                 0, kHourMs, "reconnect hints are spread over this long"),
           intOption<EdgeConfig>("drain.grace_ms", WSF_FIELD(EdgeConfig, drain_grace_ms), 5000, 0,
                                 10 * 60000,
                                 "after the window, clients still here are closed (1001)"),
           stringOption<EdgeConfig>(
               "drain.reconnect_url", WSF_FIELD(EdgeConfig, drain_reconnect_url), "",
               "URL the reconnect hints name; empty = websocket.public_url", checkPublicUrl),
       },
       liftOptions(natsOptions(), "nats", &EdgeConfig::nats),
       {
           // [nats], the edge's own
           intOption<EdgeConfig>("nats.history_replicas", WSF_FIELD(EdgeConfig, history_replicas),
                                 3, 1, 5,
                                 "replicas of the region's history stream (at most the servers)"),
           // [auth]
           stringOption<EdgeConfig>("auth.audience", WSF_FIELD(EdgeConfig, token_policy.audience),
                                    "wsfleet", "required token `aud`; empty = not checked"),
           intOption<EdgeConfig>("auth.leeway_s", WSF_FIELD(EdgeConfig, token_policy.leeway_s), 30,
                                 0, 3600, "clock skew tolerated on exp, nbf and iat"),
           intOption<EdgeConfig>("auth.max_token_bytes",
                                 WSF_FIELD(EdgeConfig, token_policy.max_token_bytes), 4096, 256,
                                 65536, "longest token accepted"),
           // [storage]
           stringOption<EdgeConfig>("storage.dir", WSF_FIELD(EdgeConfig, storage_dir),
                                    "/var/lib/wsfleet", "LMDB directory (relative: to this file)",
                                    checkNonEmpty),
           intOption<EdgeConfig>("storage.map_size_mb", WSF_FIELD(EdgeConfig, map_size_mb), 256, 1,
                                 1 << 20, "LMDB map size, the store's maximum size"),
           boolOption<EdgeConfig>("storage.sync_every_commit",
                                  WSF_FIELD(EdgeConfig, sync_every_commit), false,
                                  "fsync each commit instead of periodically"),
           intOption<EdgeConfig>("storage.sync_interval_ms",
                                 WSF_FIELD(EdgeConfig, sync_interval_ms), 1000, 1, kHourMs,
                                 "period of the background fsync"),
           // [presence]
           intOption<EdgeConfig>("presence.ttl_ms", WSF_FIELD(EdgeConfig, presence_ttl_ms), 30000,
                                 1000, kDayMs,
                                 "a presence record without heartbeat expires after this"),
           intOption<EdgeConfig>("presence.heartbeat_ms",
                                 WSF_FIELD(EdgeConfig, presence_heartbeat_ms), 5000, 100, kHourMs,
                                 "how often live connections are refreshed"),
           intOption<EdgeConfig>("presence.flush_ms", WSF_FIELD(EdgeConfig, presence_flush_ms), 20,
                                 1, 10000, "presence writes are batched for this long"),
           // [limits]
           intOption<EdgeConfig>("limits.commands_per_s",
                                 WSF_FIELD(EdgeConfig, limits.commands_per_s), 100, 0, 1000000,
                                 "client commands per second per connection (0 = off)"),
           intOption<EdgeConfig>("limits.commands_burst",
                                 WSF_FIELD(EdgeConfig, limits.commands_burst), 400, 1, 1000000,
                                 "commands a connection may send at once"),
           intOption<EdgeConfig>("limits.user_publishes_per_s",
                                 WSF_FIELD(EdgeConfig, limits.user_publishes_per_s), 50, 0, 1000000,
                                 "publishes per second per user on this worker (0 = off)"),
           intOption<EdgeConfig>("limits.user_publishes_burst",
                                 WSF_FIELD(EdgeConfig, limits.user_publishes_burst), 100, 1,
                                 1000000, "publishes a user may send at once"),
           intOption<EdgeConfig>("limits.channel_publishes_per_s",
                                 WSF_FIELD(EdgeConfig, limits.channel_publishes_per_s), 1000, 0,
                                 10000000,
                                 "publishes per second per channel, clients and API (0 = off)"),
           intOption<EdgeConfig>("limits.channel_publishes_burst",
                                 WSF_FIELD(EdgeConfig, limits.channel_publishes_burst), 2000, 1,
                                 10000000, "publishes a channel may take at once"),
           intOption<EdgeConfig>(
               "limits.refusals_before_close", WSF_FIELD(EdgeConfig, limits.refusals_before_close),
               50, 0, 1000000,
               "rate_limited replies per window before close 4008 (0 = never close)"),
           intOption<EdgeConfig>("limits.refusal_window_ms",
                                 WSF_FIELD(EdgeConfig, limits.refusal_window_ms), 10000, 100,
                                 kHourMs, "window of refusals_before_close"),
           intOption<EdgeConfig>(
               "limits.handshakes_per_ip_per_s",
               WSF_FIELD(EdgeConfig, limits.handshakes_per_ip_per_s), 50, 0, 1000000,
               "WebSocket handshakes per second per IPv4 address or IPv6 /64 (0 = off)"),
           intOption<EdgeConfig>("limits.handshakes_per_ip_burst",
                                 WSF_FIELD(EdgeConfig, limits.handshakes_per_ip_burst), 100, 1,
                                 1000000, "handshakes an address may make at once"),
           intOption<EdgeConfig>("limits.auth_failures_threshold",
                                 WSF_FIELD(EdgeConfig, limits.auth_failures_threshold), 20, 0,
                                 1000000,
                                 "failed tokens from an address before it is banned (0 = no bans)"),
           intOption<EdgeConfig>("limits.auth_failures_decay_per_s",
                                 WSF_FIELD(EdgeConfig, limits.auth_failures_decay_per_s), 1, 1,
                                 1000000, "failures forgiven per second"),
           intOption<EdgeConfig>("limits.ban_s", WSF_FIELD(EdgeConfig, limits.ban_s), 60, 1,
                                 7 * 86400, "how long a banned address is refused"),
           intOption<EdgeConfig>(
               "limits.max_connections_per_ip",
               WSF_FIELD(EdgeConfig, limits.max_connections_per_ip), 1000, 0, 100000000,
               "open connections per IPv4 address or IPv6 /64 on the host (0 = unlimited)"),
           intOption<EdgeConfig>("limits.max_connections_per_user",
                                 WSF_FIELD(EdgeConfig, limits.max_connections_per_user), 100, 0,
                                 100000000,
                                 "open connections per tenant + user on the host (0 = unlimited)"),
           intOption<EdgeConfig>("limits.tracked_keys", WSF_FIELD(EdgeConfig, limits.tracked_keys),
                                 65536, 16, 16777216,
                                 "entries per limiter table (users, channels, addresses)"),
           listOption<EdgeConfig, IpNetwork>(
               "limits.exempt_ips", WSF_FIELD(EdgeConfig, limits.exempt_ips), {},
               "addresses or CIDR networks never limited per address nor banned",
               std::function<std::string(std::string_view, IpNetwork&)>(
                   [](std::string_view text, IpNetwork& out) {
                     return parseIpNetwork(text, &out);
                   })),
       }});
  return options;
}

}  // namespace

namespace edge_config_detail {

const std::vector<ConfigOption<TenantConfig>>& tenantOptions() {
  static const std::vector<ConfigOption<TenantConfig>> options = {
      stringOption<TenantConfig>("issuer", WSF_FIELD(TenantConfig, tokens.issuer), "",
                                 "required token `iss`; empty = not checked"),
      listOption<TenantConfig>(
          "api_keys", WSF_FIELD(TenantConfig, api_keys), {}, "bearer keys of the backend HTTP API",
          std::function<std::string(std::string_view, std::string&)>(checkApiKey)),
      listOption<TenantConfig, ChannelPattern>(
          "default_subs", WSF_FIELD(TenantConfig, default_subs), {">"},
          "patterns a token without `subs` may subscribe to", convertPattern),
      listOption<TenantConfig, ChannelPattern>(
          "default_pubs", WSF_FIELD(TenantConfig, default_pubs), {">"},
          "patterns a token without `pubs` may publish to", convertPattern),
      boolOption<TenantConfig>("client_send", WSF_FIELD(TenantConfig, client_send), true,
                               "clients may send direct messages to users"),
      intOption<TenantConfig>("inbox_ttl_ms", WSF_FIELD(TenantConfig, inbox_ttl_ms), 86400000, 0,
                              30 * kDayMs,
                              "region mode: how long an offline user's direct messages wait "
                              "(0 = no inbox)"),
      intOption<TenantConfig>("inbox_max_messages", WSF_FIELD(TenantConfig, inbox_max_messages),
                              100, 1, 100000, "direct messages kept per offline user"),
  };
  return options;
}

const std::vector<ConfigOption<KeySpec>>& keyOptions() {
  static const std::vector<ConfigOption<KeySpec>> options = {
      stringOption<KeySpec>("kid", WSF_FIELD(KeySpec, kid), "",
                            "key id matched against the token header's kid"),
      enumOption<KeySpec>("alg", WSF_FIELD(KeySpec, alg),
                          std::vector<std::pair<std::string, TokenAlg>>{
                              {"HS256", TokenAlg::kHS256}, {"ES256", TokenAlg::kES256}},
                          "HS256", "signature algorithm"),
      stringOption<KeySpec>("secret", WSF_FIELD(KeySpec, secret), "",
                            "HS256 secret, raw (at least 32 bytes)"),
      stringOption<KeySpec>("secret_base64", WSF_FIELD(KeySpec, secret_base64), "",
                            "HS256 secret, base64 or base64url"),
      stringOption<KeySpec>("public_key", WSF_FIELD(KeySpec, public_key), "",
                            "ES256 P-256 public key, PEM"),
      stringOption<KeySpec>("public_key_file", WSF_FIELD(KeySpec, public_key_file), "",
                            "ES256 public key PEM file (relative: to this file)"),
      stringOption<KeySpec>("private_key", WSF_FIELD(KeySpec, private_key), "",
                            "ES256 private key, PEM; only for minting tokens"),
      stringOption<KeySpec>("private_key_file", WSF_FIELD(KeySpec, private_key_file), "",
                            "ES256 private key PEM file; only for minting tokens"),
  };
  return options;
}

const std::vector<ConfigOption<NamespaceConfig>>& namespaceOptions() {
  static const std::vector<ConfigOption<NamespaceConfig>> options = {
      intOption<NamespaceConfig>("history_size", WSF_FIELD(NamespaceConfig, history_size), 0, 0,
                                 1000000, "messages kept per channel for resume (0 = none)"),
      intOption<NamespaceConfig>("history_ttl_ms", WSF_FIELD(NamespaceConfig, history_ttl_ms), 0, 0,
                                 365 * kDayMs, "age limit of history (0 = none)"),
      boolOption<NamespaceConfig>("presence", WSF_FIELD(NamespaceConfig, presence), false,
                                  "track who is in each channel"),
      boolOption<NamespaceConfig>("join_leave", WSF_FIELD(NamespaceConfig, join_leave), false,
                                  "send join and leave events to subscribers"),
      intOption<NamespaceConfig>("max_message_bytes", WSF_FIELD(NamespaceConfig, max_message_bytes),
                                 0, 0, 64 * kMiB, "message cap (0 = websocket.max_message_bytes)"),
      enumOption<NamespaceConfig>("ordering", WSF_FIELD(NamespaceConfig, ordering),
                                  std::vector<std::pair<std::string, Ordering>>{
                                      {"owner", Ordering::kOwner}, {"none", Ordering::kNone}},
                                  "owner", "owner: sequenced and stored; none: at-most-once"),
      enumOption<NamespaceConfig>("priority", WSF_FIELD(NamespaceConfig, priority),
                                  std::vector<std::pair<std::string, Priority>>{
                                      {"normal", Priority::kNormal}, {"low", Priority::kLow}},
                                  "normal", "low: dropped first when a client lags"),
      boolOption<NamespaceConfig>("allow_publish", WSF_FIELD(NamespaceConfig, allow_publish), true,
                                  "clients may publish (the backend API always may)"),
  };
  return options;
}

#undef WSF_FIELD

// ---- Cross-field checks of the top-level sections (the tenant sections are loaded and
// checked in edge_config_tenants.cc).

void Loader::checkNode() {
  if (config.node_name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
      error("node.name", "the host name is unavailable; set node.name");
      return;
    }
    // A fully qualified host name has dots, which node names may not: keep the first label.
    std::string name(host);
    name = name.substr(0, name.find('.'));
    if (!checkNodeName(name).empty()) {
      error("node.name", "the host name " + quoteForError(name) +
                             " is not a valid node name ([A-Za-z0-9_-]); set node.name");
      return;
    }
    config.node_name = std::move(name);
    return;
  }
  const std::string problem = checkNodeName(config.node_name);
  if (!problem.empty()) error("node.name", problem);
}

void Loader::checkTopology() {
  if (config.topology_path.empty()) return;
  config.topology_path = resolveRelativePath(base_dir, config.topology_path);
  if (!config.nats.enabled()) {
    error("node.topology", "needs nats.servers: regions reach each other over NATS");
    return;
  }
  auto topology = loadTopologyOf(config.topology_path, config.region);
  if (!topology) {
    error("node.topology", topology.status().message());
    return;
  }
  config.topology = std::move(*topology);
}

void Loader::checkWebsocket() {
  if (config.outbound_max_bytes < config.max_message_bytes) {
    error("websocket.outbound_max_bytes",
          "must be at least websocket.max_message_bytes, or one message could never be queued");
  }
  if (config.outbound_high_water_bytes > config.outbound_max_bytes) {
    error("websocket.outbound_high_water_bytes", "must not exceed websocket.outbound_max_bytes (" +
                                                     std::to_string(config.outbound_max_bytes) +
                                                     ")");
  }
  if (config.outbound_high_water_messages > config.outbound_max_messages) {
    error("websocket.outbound_high_water_messages",
          "must not exceed websocket.outbound_max_messages (" +
              std::to_string(config.outbound_max_messages) + ")");
  }
  if (config.token_policy.max_token_bytes >= config.max_header_bytes) {
    error("auth.max_token_bytes",
          "must be less than websocket.max_header_bytes, which must also hold the token");
  }
  if (config.ws_listen.host == config.admin_listen.host &&
      config.ws_listen.port == config.admin_listen.port) {
    error("admin.listen", "must differ from websocket.listen");
  }
}

void Loader::checkTls() {
  std::string& cert = config.tls_cert_file;
  std::string& key = config.tls_key_file;
  if (cert.empty() && key.empty()) return;
  if (cert.empty() || key.empty()) {
    error(cert.empty() ? "websocket.tls_key" : "websocket.tls_cert",
          "websocket.tls_cert and websocket.tls_key must be set together (both empty: plain ws)");
    return;
  }
  cert = resolveRelativePath(base_dir, cert);
  key = resolveRelativePath(base_dir, key);
  bool files_ok = true;
  for (auto [path_key, file] :
       {std::pair{"websocket.tls_cert", &cert}, std::pair{"websocket.tls_key", &key}}) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(*file, ec)) {
      error(path_key, "file '" + *file + "' does not exist or is not a regular file");
      files_ok = false;
    }
  }
  if (!files_ok) return;
  Result<X509Ptr> x509 = readCertificatePemFile(cert);
  if (!x509) error("websocket.tls_cert", x509.status().message());
  Result<EvpPkeyPtr> pkey = readPrivateKeyPemFile(key);
  if (!pkey) error("websocket.tls_key", pkey.status().message());
  if (x509 && pkey && !keyMatchesCertificate(x509->get(), pkey->get())) {
    error("websocket.tls_key", "the private key does not match the certificate '" + cert + "'");
  }
}

void Loader::checkOther() {
  if (config.presence_heartbeat_ms >= config.presence_ttl_ms) {
    error("presence.heartbeat_ms",
          "must be less than presence.ttl_ms, or live connections would expire");
  }
  config.storage_dir = resolveRelativePath(base_dir, config.storage_dir);
}

void Loader::checkNats() {
  checkNatsConfig(config.nats, base_dir,
                  [this](const char* key, std::string message) { error(key, std::move(message)); });
}

void Loader::checkOperatorToken() {
  // A tenant's API key must never be able to drain the edge: the two credentials are
  // different roles even when the same people hold them.
  if (!config.operator_token.empty() && api_key_owner.count(config.operator_token) != 0) {
    error("admin.operator_token", "must differ from every API key (it equals " +
                                      api_key_owner.at(config.operator_token) + ")");
  }
}

}  // namespace edge_config_detail

namespace {

Result<EdgeConfig> parseWithBase(std::string_view text, const std::string& source_name,
                                 const std::string& base_dir) {
  ConfigErrors errors(source_name);
  std::optional<toml::table> root = parseToml(text, errors);
  if (!root) return errors.toStatus();

  EdgeConfig config;
  config.source_path = source_name;
  rejectUnknownKeys(*root, "", optionKeys(edgeOptions(), {"tenants"}), errors);
  applyOptions(*root, edgeOptions(), "", config, errors);

  Loader loader{errors, *root, base_dir, config, {}};
  loader.checkNode();
  loader.checkWebsocket();
  loader.checkTls();
  loader.checkOther();
  loader.checkNats();
  loader.checkTopology();
  loader.loadTenants();
  loader.checkOperatorToken();
  if (!errors.empty()) return errors.toStatus();
  return config;
}

}  // namespace

Result<EdgeConfig> loadEdgeConfig(const std::string& path) {
  return loadConfigWith(path, parseWithBase);
}

Result<EdgeConfig> parseEdgeConfig(std::string_view text, const std::string& source_name) {
  return parseWithBase(text, source_name, configBaseDir(source_name, false));
}

const NamespaceConfig* findNamespace(const TenantConfig& tenant, std::string_view channel) {
  const std::string ns(channel.substr(0, channel.find(':')));
  const auto it = tenant.namespaces.find(ns);
  return it == tenant.namespaces.end() ? nullptr : &it->second;
}

}  // namespace wsfleet
