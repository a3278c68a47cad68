#include "edge/edge_config.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/openssl.h"
#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

namespace fs = std::filesystem;

// The smallest valid file: everything else takes its default.
constexpr const char* kMinimalTenant = R"(
[tenants.acme]
[[tenants.acme.keys]]
kid = "k1"
secret = "0123456789abcdef0123456789abcdef"
)";

std::string minimal(const std::string& before = "") {
  return before + kMinimalTenant;
}

// The whole error text, or "" when the config loaded.
std::string errorsOf(const std::string& text, const std::string& name = "cfg.toml") {
  Result<EdgeConfig> config = parseEdgeConfig(text, name);
  if (config) return "";
  EXPECT_EQ(config.status().code(), Code::kConfig);
  return config.status().message();
}

std::vector<std::string> splitLines(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// ---- Key material generated per test, so no key is checked in.

EvpPkeyPtr newP256Key() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  EXPECT_TRUE(key);
  return key;
}

std::string privatePem(evp_pkey_st* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int): OpenSSL's type
  return std::string(data, static_cast<size_t>(len));
}

std::string publicPem(evp_pkey_st* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_PUBKEY(bio.get(), key), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(len));
}

std::string selfSignedCertPem(evp_pkey_st* key) {
  X509Ptr cert(X509_new());
  EXPECT_EQ(X509_set_version(cert.get(), 2), 1);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  EXPECT_EQ(X509_set_issuer_name(cert.get(), name), 1);
  EXPECT_EQ(X509_set_pubkey(cert.get(), key), 1);
  EXPECT_GT(X509_sign(cert.get(), key, EVP_sha256()), 0);
  BioPtr bio(BIO_new(BIO_s_mem()));
  EXPECT_EQ(PEM_write_bio_X509(bio.get(), cert.get()), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(runtime/int)
  return std::string(data, static_cast<size_t>(len));
}

// ---- The shipped sample.

TEST(EdgeConfigSample, ParsesAndHasTheDocumentedShape) {
  const std::string path = std::string(WSFLEET_SOURCE_DIR) + "/conf/edge.toml";
  Result<EdgeConfig> loaded = loadEdgeConfig(path);
  ASSERT_TRUE(loaded) << loaded.status().message();
  const EdgeConfig& config = *loaded;
  EXPECT_EQ(config.ws_listen.host, "127.0.0.1");
  EXPECT_EQ(config.ws_listen.port, 8080);
  EXPECT_EQ(config.ws_path, "/ws");
  EXPECT_EQ(config.admin_listen.port, 9090);
  EXPECT_TRUE(config.tls_cert_file.empty());
  // storage.dir is "../var/edge" relative to conf/: the repository's var/edge.
  EXPECT_EQ(fs::path(config.storage_dir),
            fs::weakly_canonical(fs::path(WSFLEET_SOURCE_DIR) / "var" / "edge"));
  ASSERT_EQ(config.tenants.size(), 1u);
  const TenantConfig& demo = config.tenants.at("demo");
  ASSERT_EQ(demo.tokens.keys.size(), 1u);
  EXPECT_EQ(demo.tokens.keys[0].kid, "dev-1");
  EXPECT_EQ(demo.tokens.keys[0].alg, TokenAlg::kHS256);
  EXPECT_NE(demo.tokens.keys[0].secret.find("dev-only"), std::string::npos);
  ASSERT_EQ(demo.api_keys.size(), 1u);
  EXPECT_NE(demo.api_keys[0].find("dev-only"), std::string::npos);

  const NamespaceConfig& chat = demo.namespaces.at("chat");
  EXPECT_EQ(chat.history_size, 100u);
  EXPECT_EQ(chat.history_ttl_ms, 300000);
  EXPECT_TRUE(chat.presence);
  EXPECT_TRUE(chat.join_leave);
  EXPECT_EQ(chat.ordering, Ordering::kOwner);
  const NamespaceConfig& live = demo.namespaces.at("live");
  EXPECT_EQ(live.history_size, 0u);
  EXPECT_EQ(live.ordering, Ordering::kNone);
  EXPECT_EQ(live.priority, Priority::kLow);
  EXPECT_FALSE(live.presence);
}

// The sample promises to list every option with its default: loading it must give the
// same values as loading a file that sets nothing.
TEST(EdgeConfigSample, ListsTheDefaults) {
  Result<EdgeConfig> sample = loadEdgeConfig(std::string(WSFLEET_SOURCE_DIR) + "/conf/edge.toml");
  Result<EdgeConfig> bare = parseEdgeConfig(minimal(), "/x/edge.toml");
  ASSERT_TRUE(sample) << sample.status().message();
  ASSERT_TRUE(bare) << bare.status().message();
  EXPECT_EQ(sample->node_name, bare->node_name);
  EXPECT_EQ(sample->region, bare->region);
  EXPECT_EQ(sample->log_level, bare->log_level);
  EXPECT_EQ(sample->max_header_bytes, bare->max_header_bytes);
  EXPECT_EQ(sample->max_message_bytes, bare->max_message_bytes);
  EXPECT_EQ(sample->receive_buffer_bytes, bare->receive_buffer_bytes);
  EXPECT_EQ(sample->ping_interval_ms, bare->ping_interval_ms);
  EXPECT_EQ(sample->handshake_timeout_ms, bare->handshake_timeout_ms);
  EXPECT_EQ(sample->resume_window_ms, bare->resume_window_ms);
  EXPECT_EQ(sample->refresh_notice_ms, bare->refresh_notice_ms);
  EXPECT_EQ(sample->outbound_max_bytes, bare->outbound_max_bytes);
  EXPECT_EQ(sample->outbound_max_messages, bare->outbound_max_messages);
  EXPECT_EQ(sample->outbound_high_water_bytes, bare->outbound_high_water_bytes);
  EXPECT_EQ(sample->outbound_high_water_messages, bare->outbound_high_water_messages);
  EXPECT_EQ(sample->slow_consumer_grace_ms, bare->slow_consumer_grace_ms);
  EXPECT_EQ(sample->max_channels_per_connection, bare->max_channels_per_connection);
  EXPECT_EQ(sample->max_body_bytes, bare->max_body_bytes);
  EXPECT_EQ(sample->token_policy.audience, bare->token_policy.audience);
  EXPECT_EQ(sample->token_policy.leeway_s, bare->token_policy.leeway_s);
  EXPECT_EQ(sample->token_policy.max_token_bytes, bare->token_policy.max_token_bytes);
  EXPECT_EQ(sample->map_size_mb, bare->map_size_mb);
  EXPECT_EQ(sample->sync_every_commit, bare->sync_every_commit);
  EXPECT_EQ(sample->sync_interval_ms, bare->sync_interval_ms);
  EXPECT_EQ(sample->presence_ttl_ms, bare->presence_ttl_ms);
  EXPECT_EQ(sample->presence_heartbeat_ms, bare->presence_heartbeat_ms);
  EXPECT_EQ(sample->presence_flush_ms, bare->presence_flush_ms);
  EXPECT_EQ(sample->operator_token, bare->operator_token);
  EXPECT_EQ(sample->drain_window_ms, bare->drain_window_ms);
  EXPECT_EQ(sample->drain_grace_ms, bare->drain_grace_ms);
  EXPECT_EQ(sample->drain_reconnect_url, bare->drain_reconnect_url);
  const LimitsConfig& sl = sample->limits;
  const LimitsConfig& bl = bare->limits;
  EXPECT_EQ(sl.commands_per_s, bl.commands_per_s);
  EXPECT_EQ(sl.commands_burst, bl.commands_burst);
  EXPECT_EQ(sl.user_publishes_per_s, bl.user_publishes_per_s);
  EXPECT_EQ(sl.user_publishes_burst, bl.user_publishes_burst);
  EXPECT_EQ(sl.channel_publishes_per_s, bl.channel_publishes_per_s);
  EXPECT_EQ(sl.channel_publishes_burst, bl.channel_publishes_burst);
  EXPECT_EQ(sl.refusals_before_close, bl.refusals_before_close);
  EXPECT_EQ(sl.refusal_window_ms, bl.refusal_window_ms);
  EXPECT_EQ(sl.handshakes_per_ip_per_s, bl.handshakes_per_ip_per_s);
  EXPECT_EQ(sl.handshakes_per_ip_burst, bl.handshakes_per_ip_burst);
  EXPECT_EQ(sl.auth_failures_threshold, bl.auth_failures_threshold);
  EXPECT_EQ(sl.auth_failures_decay_per_s, bl.auth_failures_decay_per_s);
  EXPECT_EQ(sl.ban_s, bl.ban_s);
  EXPECT_EQ(sl.max_connections_per_ip, bl.max_connections_per_ip);
  EXPECT_EQ(sl.max_connections_per_user, bl.max_connections_per_user);
  EXPECT_EQ(sl.tracked_keys, bl.tracked_keys);
  EXPECT_EQ(sl.exempt_ips.size(), bl.exempt_ips.size());
}

// ---- Defaults.

TEST(EdgeConfigDefaults, AppliedWhenKeysAreAbsent) {
  Result<EdgeConfig> loaded = parseEdgeConfig(minimal(), "/etc/wsfleet/edge.toml");
  ASSERT_TRUE(loaded) << loaded.status().message();
  const EdgeConfig& c = *loaded;
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof(host) - 1), 0);
  std::string short_host(host);
  EXPECT_EQ(c.node_name, short_host.substr(0, short_host.find('.')));
  EXPECT_EQ(c.source_path, "/etc/wsfleet/edge.toml");
  EXPECT_EQ(c.region, "local");
  EXPECT_EQ(c.log_level, "info");
  EXPECT_EQ(c.ws_listen.host, "127.0.0.1");
  EXPECT_EQ(c.ws_listen.port, 8080);
  EXPECT_EQ(c.ws_path, "/ws");
  EXPECT_TRUE(c.allowed_origins.empty());
  EXPECT_EQ(c.max_header_bytes, 8192u);
  EXPECT_EQ(c.max_message_bytes, 65536u);
  EXPECT_EQ(c.receive_buffer_bytes, 4096u);
  EXPECT_EQ(c.ping_interval_ms, 25000u);
  EXPECT_EQ(c.handshake_timeout_ms, 10000u);
  EXPECT_EQ(c.resume_window_ms, 120000u);
  EXPECT_EQ(c.refresh_notice_ms, 30000u);
  EXPECT_EQ(c.outbound_max_bytes, 4194304u);
  EXPECT_EQ(c.outbound_max_messages, 4096u);
  EXPECT_EQ(c.outbound_high_water_bytes, 0u);  // half of outbound_max_bytes
  EXPECT_EQ(c.outbound_high_water_messages, 0u);
  EXPECT_EQ(c.slow_consumer_grace_ms, 5000u);
  EXPECT_EQ(c.max_channels_per_connection, 256u);
  EXPECT_EQ(c.admin_listen.port, 9090);
  EXPECT_EQ(c.max_body_bytes, 1048576u);
  EXPECT_EQ(c.token_policy.audience, "wsfleet");
  EXPECT_EQ(c.token_policy.leeway_s, 30);
  EXPECT_EQ(c.token_policy.max_token_bytes, 4096u);
  EXPECT_EQ(c.storage_dir, "/var/lib/wsfleet");
  EXPECT_EQ(c.map_size_mb, 256u);
  EXPECT_FALSE(c.sync_every_commit);
  EXPECT_EQ(c.sync_interval_ms, 1000u);
  EXPECT_EQ(c.presence_ttl_ms, 30000u);
  EXPECT_EQ(c.presence_heartbeat_ms, 5000u);
  EXPECT_EQ(c.presence_flush_ms, 20u);
  EXPECT_TRUE(c.operator_token.empty());
  EXPECT_EQ(c.drain_window_ms, 30000u);
  EXPECT_EQ(c.drain_grace_ms, 5000u);
  EXPECT_TRUE(c.drain_reconnect_url.empty());

  const TenantConfig& acme = c.tenants.at("acme");
  EXPECT_EQ(acme.name, "acme");
  EXPECT_TRUE(acme.api_keys.empty());
  ASSERT_EQ(acme.default_subs.size(), 1u);
  EXPECT_EQ(acme.default_subs[0].text(), ">");
  ASSERT_EQ(acme.default_pubs.size(), 1u);
  EXPECT_TRUE(acme.client_send);
  EXPECT_TRUE(acme.namespaces.empty());
}

TEST(EdgeConfigDefaults, NamespaceDefaults) {
  Result<EdgeConfig> loaded = parseEdgeConfig(minimal("") + "[tenants.acme.namespaces.n]\n", "e");
  ASSERT_TRUE(loaded) << loaded.status().message();
  const NamespaceConfig& ns = loaded->tenants.at("acme").namespaces.at("n");
  EXPECT_EQ(ns.name, "n");
  EXPECT_EQ(ns.history_size, 0u);
  EXPECT_EQ(ns.history_ttl_ms, 0);
  EXPECT_FALSE(ns.presence);
  EXPECT_FALSE(ns.join_leave);
  EXPECT_EQ(ns.max_message_bytes, 0u);
  EXPECT_EQ(ns.ordering, Ordering::kOwner);
  EXPECT_EQ(ns.priority, Priority::kNormal);
  EXPECT_TRUE(ns.allow_publish);
}

TEST(EdgeConfigDefaults, ValuesFromTheFileOverrideDefaults) {
  Result<EdgeConfig> loaded = parseEdgeConfig(minimal(R"(
[node]
name = "edge-7"
region = "eu-west"
log_level = "debug"
[websocket]
listen = "[::1]:8443"
allowed_origins = ["HTTPS://App.Example.com", "http://localhost:3000"]
ping_interval_ms = 1000
[admin]
listen = "localhost:9191"
[auth]
audience = ""
leeway_s = 0
)"),
                                              "e.toml");
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->node_name, "edge-7");
  EXPECT_EQ(loaded->region, "eu-west");
  EXPECT_EQ(loaded->log_level, "debug");
  EXPECT_EQ(loaded->ws_listen.host, "::1");
  EXPECT_EQ(loaded->ws_listen.port, 8443);
  EXPECT_EQ(loaded->admin_listen.host, "localhost");
  EXPECT_EQ(loaded->admin_listen.port, 9191);
  ASSERT_EQ(loaded->allowed_origins.size(), 2u);
  EXPECT_EQ(loaded->allowed_origins[0], "https://app.example.com");  // lower-cased
  EXPECT_EQ(loaded->ping_interval_ms, 1000u);
  EXPECT_EQ(loaded->token_policy.audience, "");
  EXPECT_EQ(loaded->token_policy.leeway_s, 0);
}

// ---- Error reporting.

TEST(EdgeConfigErrors, UnknownKeyWithLocationAndHint) {
  const std::string text = minimal("[websocket]\nlisten = \"127.0.0.1:8080\"\npong_timeout = 5\n");
  EXPECT_EQ(errorsOf(text), "cfg.toml:3:1: unknown key 'websocket.pong_timeout'");
  EXPECT_NE(errorsOf(minimal("[websocket]\npaht = \"/x\"\n")).find("did you mean 'websocket.path'"),
            std::string::npos);
}

TEST(EdgeConfigErrors, UnknownKeysEverywhere) {
  const std::string text = R"([nodes]
x = 1
[tenants.acme]
colour = "red"
[[tenants.acme.keys]]
secret = "0123456789abcdef0123456789abcdef"
size = 3
[tenants.acme.namespaces.chat]
histroy_size = 4
)";
  const std::vector<std::string> lines = splitLines(errorsOf(text));
  ASSERT_EQ(lines.size(), 4u) << errorsOf(text);
  EXPECT_EQ(lines[0], "cfg.toml:1:2: unknown key 'nodes' (did you mean 'node'?)");
  EXPECT_EQ(lines[1], "cfg.toml:4:1: unknown key 'tenants.acme.colour'");
  EXPECT_EQ(lines[2], "cfg.toml:7:1: unknown key 'tenants.acme.keys[0].size'");
  EXPECT_EQ(lines[3],
            "cfg.toml:9:1: unknown key 'tenants.acme.namespaces.chat.histroy_size' (did you "
            "mean 'tenants.acme.namespaces.chat.history_size'?)");
}

TEST(EdgeConfigErrors, AllErrorsAtOnceInFileOrder) {
  const std::string text = minimal(R"([websocket]
ping_interval_ms = 10
max_header_bytes = "big"
[node]
log_level = "loud"
bogus = true
)");
  const std::vector<std::string> lines = splitLines(errorsOf(text));
  ASSERT_EQ(lines.size(), 4u) << errorsOf(text);
  EXPECT_EQ(lines[0],
            "cfg.toml:2:20: websocket.ping_interval_ms: 10 is out of range (1000..3600000)");
  EXPECT_EQ(lines[1],
            "cfg.toml:3:20: websocket.max_header_bytes: expected an integer, got a string");
  EXPECT_EQ(lines[2], "cfg.toml:5:13: node.log_level: 'loud' is not one of debug|info|warn|error");
  EXPECT_EQ(lines[3], "cfg.toml:6:1: unknown key 'node.bogus'");
}

TEST(EdgeConfigErrors, WrongTypes) {
  EXPECT_EQ(errorsOf(minimal("[storage]\nsync_every_commit = 1\n")),
            "cfg.toml:2:21: storage.sync_every_commit: expected true or false, got an integer");
  EXPECT_EQ(errorsOf(minimal("[presence]\nttl_ms = 30000.0\n")),
            "cfg.toml:2:10: presence.ttl_ms: expected an integer, got a float");
  EXPECT_EQ(errorsOf(minimal("[websocket]\nallowed_origins = \"https://a.example\"\n")),
            "cfg.toml:2:19: websocket.allowed_origins: expected an array of strings, got a "
            "string");
  EXPECT_EQ(errorsOf(minimal("[websocket]\nallowed_origins = [1]\n")),
            "cfg.toml:2:20: websocket.allowed_origins[0]: expected a string, got an integer");
  EXPECT_EQ(errorsOf(minimal("websocket = 3\n")),
            "cfg.toml:1:1: 'websocket' must be a table, not an integer");
}

TEST(EdgeConfigErrors, BadListenAddresses) {
  for (const char* bad : {"127.0.0.1", "example.com:80", "127.0.0.1:0", "127.0.0.1:65536", "::1:80",
                          "[::1]80", "[nonsense]:80", "127.0.0.1:8o", ":80", "1.2.3:80"}) {
    const std::string text = minimal(std::string("[websocket]\nlisten = \"") + bad + "\"\n");
    const std::string errors = errorsOf(text);
    EXPECT_EQ(errors.rfind("cfg.toml:2:10: websocket.listen: ", 0), 0u) << bad << ": " << errors;
    EXPECT_EQ(splitLines(errors).size(), 1u) << errors;
  }
  for (const char* good : {"0.0.0.0:1", "[::]:65535", "localhost:8080", "[::1]:80"}) {
    EXPECT_EQ(errorsOf(minimal(std::string("[admin]\nlisten = \"") + good + "\"\n")), "") << good;
  }
  EXPECT_NE(errorsOf(minimal("[admin]\nlisten = \"127.0.0.1:8080\"\n"))
                .find("admin.listen: must differ from websocket.listen"),
            std::string::npos);
}

TEST(EdgeConfigErrors, BadEnumValues) {
  EXPECT_EQ(errorsOf(minimal("[tenants.acme.namespaces.chat]\nordering = \"sometimes\"\n")),
            "cfg.toml:2:12: tenants.acme.namespaces.chat.ordering: 'sometimes' is not one of "
            "owner|none");
  EXPECT_EQ(errorsOf(minimal("[tenants.acme.namespaces.chat]\npriority = \"HIGH\"\n")),
            "cfg.toml:2:12: tenants.acme.namespaces.chat.priority: 'HIGH' is not one of "
            "normal|low");
  const std::string text = R"([tenants.acme]
[[tenants.acme.keys]]
alg = "none"
secret = "0123456789abcdef0123456789abcdef"
)";
  EXPECT_EQ(errorsOf(text),
            "cfg.toml:3:7: tenants.acme.keys[0].alg: 'none' is not one of HS256|ES256");
}

TEST(EdgeConfigErrors, RangeAndCrossFieldChecks) {
  EXPECT_NE(errorsOf(minimal("[websocket]\nmax_message_bytes = 0\n")).find("out of range"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[websocket]\nmax_message_bytes = -5\n")).find("out of range"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[storage]\nmap_size_mb = 0\n")).find("out of range"),
            std::string::npos);
  EXPECT_EQ(errorsOf(minimal("[websocket]\nmax_message_bytes = 2000\noutbound_max_bytes = 1000\n")),
            "cfg.toml:3:22: websocket.outbound_max_bytes: must be at least "
            "websocket.max_message_bytes, or one message could never be queued");
  EXPECT_EQ(errorsOf(minimal("[websocket]\noutbound_max_bytes = 100000\n"
                             "outbound_high_water_bytes = 100001\n")),
            "cfg.toml:3:29: websocket.outbound_high_water_bytes: must not exceed "
            "websocket.outbound_max_bytes (100000)");
  EXPECT_EQ(errorsOf(minimal("[websocket]\noutbound_high_water_messages = 5000\n")),
            "cfg.toml:2:32: websocket.outbound_high_water_messages: must not exceed "
            "websocket.outbound_max_messages (4096)");
  EXPECT_EQ(errorsOf(minimal("[websocket]\noutbound_max_bytes = 100000\n"
                             "outbound_high_water_bytes = 100000\nslow_consumer_grace_ms = 0\n")),
            "");
  EXPECT_NE(errorsOf(minimal("[websocket]\nslow_consumer_grace_ms = -1\n")).find("out of range"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[presence]\nheartbeat_ms = 30000\n")).find("presence.heartbeat_ms"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[auth]\nmax_token_bytes = 9000\n")).find("auth.max_token_bytes"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[websocket]\npath = \"ws\"\n")).find("websocket.path"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[node]\nname = \"a.b\"\n")).find("node.name"), std::string::npos);
  EXPECT_NE(errorsOf(minimal("[websocket]\npublic_url = \"https://x.example/ws\"\n"))
                .find("websocket.public_url"),
            std::string::npos);
  EXPECT_EQ(errorsOf(minimal("[websocket]\npublic_url = \"wss://rt.example.com:8443/ws\"\n")), "");
}

TEST(EdgeConfigLimits, DefaultsAndOverrides) {
  Result<EdgeConfig> bare = parseEdgeConfig(minimal(), "cfg.toml");
  ASSERT_TRUE(bare) << bare.status().message();
  EXPECT_EQ(bare->limits.commands_per_s, 100u);
  EXPECT_EQ(bare->limits.commands_burst, 400u);
  EXPECT_EQ(bare->limits.user_publishes_per_s, 50u);
  EXPECT_EQ(bare->limits.channel_publishes_burst, 2000u);
  EXPECT_EQ(bare->limits.handshakes_per_ip_per_s, 50u);
  EXPECT_EQ(bare->limits.auth_failures_threshold, 20u);
  EXPECT_EQ(bare->limits.ban_s, 60u);
  EXPECT_EQ(bare->limits.max_connections_per_ip, 1000u);
  EXPECT_EQ(bare->limits.max_connections_per_user, 100u);
  EXPECT_TRUE(bare->limits.exempt_ips.empty());

  Result<EdgeConfig> set =
      parseEdgeConfig(minimal("[limits]\ncommands_per_s = 0\nban_s = 5\n"
                              "max_connections_per_ip = 0\nmax_connections_per_user = 3\n"
                              "exempt_ips = [\"10.0.0.0/8\", \"::1\", \"2001:db8::/32\"]\n"),
                      "cfg.toml");
  ASSERT_TRUE(set) << set.status().message();
  EXPECT_EQ(set->limits.commands_per_s, 0u);
  EXPECT_EQ(set->limits.ban_s, 5u);
  EXPECT_EQ(set->limits.max_connections_per_ip, 0u);  // unlimited
  EXPECT_EQ(set->limits.max_connections_per_user, 3u);
  ASSERT_EQ(set->limits.exempt_ips.size(), 3u);
  IpAddress inside;
  ASSERT_TRUE(parseIpAddress("10.1.2.3", &inside));
  EXPECT_TRUE(set->limits.exempt_ips[0].contains(inside));
}

TEST(EdgeConfigLimits, BadValuesAreRefusedWithTheirPosition) {
  EXPECT_EQ(errorsOf(minimal("[limits]\ncommands_burst = 0\n")),
            "cfg.toml:2:18: limits.commands_burst: 0 is out of range (1..1000000)");
  EXPECT_NE(errorsOf(minimal("[limits]\nban_s = 0\n")).find("cfg.toml:2:9: limits.ban_s"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[limits]\nexempt_ips = [\"10.0.0.1/8\"]\n"))
                .find("cfg.toml:2:15: limits.exempt_ips[0]: '10.0.0.1/8' has bits set"),
            std::string::npos);
  EXPECT_NE(
      errorsOf(minimal("[limits]\nexempt_ips = [\"localhost\"]\n")).find("limits.exempt_ips[0]"),
      std::string::npos);
  EXPECT_NE(errorsOf(minimal("[limits]\nhandshake_per_ip = 5\n")).find("limits.handshake_per_ip"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[limits]\nmax_connections_per_user = -1\n"))
                .find("cfg.toml:2:28: limits.max_connections_per_user"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[limits]\nmax_connections_per_ip = \"many\"\n"))
                .find("cfg.toml:2:26: limits.max_connections_per_ip"),
            std::string::npos);
}

TEST(EdgeConfigErrors, Origins) {
  for (const char* bad : {"app.example.com", "https://app.example.com/", "https://", "https://a:0",
                          "https://a.example/path", "://x", "https://user@a.example"}) {
    const std::string errors =
        errorsOf(minimal(std::string("[websocket]\nallowed_origins = [\"") + bad + "\"]\n"));
    EXPECT_NE(errors.find("websocket.allowed_origins[0]: "), std::string::npos) << bad;
  }
  EXPECT_EQ(
      errorsOf(minimal("[websocket]\nallowed_origins = [\"http://[::1]:3000\", \"app://x\"]\n")),
      "");
}

TEST(EdgeConfigErrors, TomlSyntaxErrorHasItsOwnPosition) {
  const std::string text = "[node]\nname = \"a\"\n\n[websocket\nlisten = 1\n";
  const std::string errors = errorsOf(text);
  ASSERT_EQ(splitLines(errors).size(), 1u) << errors;
  EXPECT_EQ(errors.rfind("cfg.toml:4:", 0), 0u) << errors;
  EXPECT_NE(errors.find("TOML syntax error"), std::string::npos) << errors;
  // A key defined twice is a TOML error too, pointing at the second definition.
  EXPECT_EQ(errorsOf("[node]\nname = \"a\"\nname = \"b\"\n").rfind("cfg.toml:3:", 0), 0u);
}

TEST(EdgeConfigErrors, MissingFileIsAnError) {
  Result<EdgeConfig> loaded = loadEdgeConfig("/nonexistent/dir/edge.toml");
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().code(), Code::kConfig);
  EXPECT_NE(loaded.status().message().find("/nonexistent/dir/edge.toml"), std::string::npos);
}

// ---- Tenants.

TEST(EdgeConfigTenants, AtLeastOneTenantWithAKey) {
  EXPECT_EQ(errorsOf("[node]\nregion = \"x\"\n"),
            "cfg.toml:1:1: at least one tenant is required ([tenants.NAME] with its token "
            "keys [[tenants.NAME.keys]]): no client can connect until keys are configured");
  EXPECT_EQ(errorsOf("[tenants.acme]\nclient_send = false\n"),
            "cfg.toml:1:1: tenants.acme: a tenant needs at least one token key "
            "([[tenants.acme.keys]])");
  EXPECT_NE(errorsOf("[tenants.acme]\nkeys = [1]\n").find("tenants.acme.keys: expected"),
            std::string::npos);
  EXPECT_NE(errorsOf("[tenants.acme]\nkeys = []\n").find("needs at least one token key"),
            std::string::npos);
}

TEST(EdgeConfigTenants, NamesAreChecked) {
  const std::string bad_tenant = R"([tenants.Acme]
[[tenants.Acme.keys]]
secret = "0123456789abcdef0123456789abcdef"
)";
  EXPECT_NE(errorsOf(bad_tenant).find("cfg.toml:1:10: tenants.Acme: tenant name 'Acme' must be"),
            std::string::npos)
      << errorsOf(bad_tenant);
  EXPECT_NE(errorsOf(minimal("[tenants.acme.namespaces.\"a:b\"]\n"))
                .find("tenants.acme.namespaces.a:b: namespace name"),
            std::string::npos);
  EXPECT_EQ(errorsOf(minimal("[tenants.acme.namespaces.\"Chat@2=x+y,z_-\"]\n")), "");
  EXPECT_NE(errorsOf(minimal("[tenants.acme.namespaces]\nchat = 1\n")).find("expected a table"),
            std::string::npos);
}

// Tenants a and b, each with one key; a holds one API key, b the ones listed (line 6).
std::string twoTenants(const std::string& b_api_keys) {
  return "[tenants.a]\n"
         "api_keys = [\"aaaaaaaaaaaaaaaa-shared-key\"]\n"
         "[[tenants.a.keys]]\n"
         "secret = \"0123456789abcdef0123456789abcdef\"\n"
         "[tenants.b]\n"
         "api_keys = [" +
         b_api_keys +
         "]\n"
         "[[tenants.b.keys]]\n"
         "secret = \"0123456789abcdef0123456789abcdef\"\n";
}

TEST(EdgeConfigTenants, ApiKeysLongEnoughAndUnique) {
  Result<EdgeConfig> loaded =
      parseEdgeConfig(twoTenants("\"short-key\", \"aaaaaaaaaaaaaaaa-shared-key\""), "cfg.toml");
  ASSERT_FALSE(loaded);
  const std::vector<std::string> lines = splitLines(loaded.status().message());
  ASSERT_EQ(lines.size(), 1u) << loaded.status().message();
  EXPECT_EQ(lines[0],
            "cfg.toml:6:13: tenants.b.api_keys[0]: an API key must be at least 16 characters");

  const std::string dup =
      twoTenants("\"bbbbbbbbbbbbbbbb-own-key\", \"aaaaaaaaaaaaaaaa-shared-key\"");
  EXPECT_EQ(errorsOf(dup),
            "cfg.toml:6:41: tenants.b.api_keys[1]: the same API key is already "
            "tenants.a.api_keys[0]");
}

TEST(EdgeConfigTenants, PatternsAreParsed) {
  Result<EdgeConfig> loaded = parseEdgeConfig(
      "[tenants.acme]\ndefault_subs = [\"chat:*\", \"live:>\"]\ndefault_pubs = []\n"
      "[[tenants.acme.keys]]\nsecret = \"0123456789abcdef0123456789abcdef\"\n",
      "e");
  ASSERT_TRUE(loaded) << loaded.status().message();
  const TenantConfig& acme = loaded->tenants.at("acme");
  ASSERT_EQ(acme.default_subs.size(), 2u);
  EXPECT_TRUE(acme.default_subs[0].matches("chat:room1"));
  EXPECT_FALSE(acme.default_subs[0].matches("chat:a:b"));
  EXPECT_TRUE(acme.default_pubs.empty());
  EXPECT_NE(errorsOf("[tenants.acme]\ndefault_subs = [\"chat:>:x\"]\n"
                     "[[tenants.acme.keys]]\nsecret = \"0123456789abcdef0123456789abcdef\"\n")
                .find("cfg.toml:2:17: tenants.acme.default_subs[0]: "),
            std::string::npos);
}

TEST(EdgeConfigTenants, NamespaceCrossChecks) {
  EXPECT_NE(
      errorsOf(minimal("[tenants.acme.namespaces.n]\nordering = \"none\"\nhistory_size = 5\n"))
          .find("cfg.toml:3:16: tenants.acme.namespaces.n.history_size: must be 0"),
      std::string::npos);
  EXPECT_EQ(
      errorsOf(minimal("[tenants.acme.namespaces.n]\npriority = \"low\"\nhistory_size = 5\n")),
      "cfg.toml:2:12: tenants.acme.namespaces.n.priority: \"low\" needs history_size = 0 "
      "(low-priority messages may be coalesced or dropped, which resume cannot account for)");
  EXPECT_EQ(errorsOf(minimal("[tenants.acme.namespaces.n]\npriority = \"low\"\n")), "");
  EXPECT_NE(errorsOf(minimal("[tenants.acme.namespaces.n]\nmax_message_bytes = 70000\n"))
                .find("must not exceed websocket.max_message_bytes"),
            std::string::npos);
  EXPECT_NE(errorsOf(minimal("[tenants.acme.namespaces.n]\njoin_leave = true\n"))
                .find("join_leave: needs presence"),
            std::string::npos);
}

TEST(EdgeConfigTenants, HmacKeys) {
  // secret_base64 in either alphabet, with or without padding: 32 bytes of 0xfb.
  const std::string b64 = R"([tenants.acme]
[[tenants.acme.keys]]
kid = "a"
secret_base64 = "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s="
[[tenants.acme.keys]]
kid = "b"
secret_base64 = "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s"
)";
  Result<EdgeConfig> loaded = parseEdgeConfig(b64, "e");
  ASSERT_TRUE(loaded) << loaded.status().message();
  const auto& keys = loaded->tenants.at("acme").tokens.keys;
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].secret, std::string(32, '\xfb'));
  EXPECT_EQ(keys[1].secret, keys[0].secret);

  EXPECT_NE(errorsOf("[tenants.a]\n[[tenants.a.keys]]\nkid = \"x\"\n")
                .find("needs exactly one of secret or secret_base64"),
            std::string::npos);
  EXPECT_NE(errorsOf("[tenants.a]\n[[tenants.a.keys]]\nsecret_base64 = \"***\"\n")
                .find("cfg.toml:3:17: tenants.a.keys[0].secret_base64: is not valid base64"),
            std::string::npos);
  const std::string dup_kid = R"([tenants.a]
[[tenants.a.keys]]
kid = "k"
secret = "0123456789abcdef0123456789abcdef"
[[tenants.a.keys]]
kid = "k"
secret = "fedcba9876543210fedcba9876543210"
)";
  EXPECT_EQ(errorsOf(dup_kid),
            "cfg.toml:6:7: tenants.a.keys[1].kid: 'k' is used by another key of this tenant");
  EXPECT_NE(
      errorsOf("[tenants.a]\n[[tenants.a.keys]]\nsecret = \"0123456789abcdef0123456789abcdef\""
               "\npublic_key = \"x\"\n")
          .find("cfg.toml:4:14: tenants.a.keys[0].public_key: is for ES256 keys"),
      std::string::npos);
}

TEST(EdgeConfigTenants, SecretsNeverAppearInErrors) {
  const std::string short_secret = "tooshort-secret-XYZZY";
  const std::string short_api_key = "apikey-PLUGH";
  const std::string text = "[tenants.a]\napi_keys = [\"" + short_api_key +
                           "\"]\n[[tenants.a.keys]]\nsecret = \"" + short_secret + "\"\n";
  const std::string errors = errorsOf(text);
  ASSERT_EQ(splitLines(errors).size(), 2u) << errors;
  EXPECT_NE(errors.find("cfg.toml:4:10: tenants.a.keys[0].secret: an HS256 secret must be at "
                        "least 32 bytes"),
            std::string::npos)
      << errors;
  EXPECT_EQ(errors.find("XYZZY"), std::string::npos);
  EXPECT_EQ(errors.find("PLUGH"), std::string::npos);

  const std::string b64_errors =
      errorsOf("[tenants.a]\n[[tenants.a.keys]]\nsecret_base64 = \"c2VjcmV0LVhZWlpZ\"\n");
  EXPECT_NE(b64_errors.find("at least 32 bytes"), std::string::npos);
  EXPECT_EQ(b64_errors.find("c2VjcmV0LVhZWlpZ"), std::string::npos);
  EXPECT_EQ(b64_errors.find("XYZZY"), std::string::npos);

  // A duplicated API key is reported by position, not by value.
  const std::string dup =
      "[tenants.a]\napi_keys = [\"PLUGH-0123456789abcdef\", "
      "\"PLUGH-0123456789abcdef\"]\n" +
      std::string(kMinimalTenant);
  const std::string dup_errors = errorsOf(dup);
  EXPECT_NE(dup_errors.find("tenants.a.api_keys[1]: the same API key"), std::string::npos)
      << dup_errors;
  EXPECT_EQ(dup_errors.find("PLUGH"), std::string::npos);
}

// ---- ES256 keys, files and relative paths.

TEST(EdgeConfigFiles, Es256KeysFromFilesRelativeToTheConf) {
  TempDir dir;
  EvpPkeyPtr key = newP256Key();
  EvpPkeyPtr other = newP256Key();
  dir.write("keys/pub.pem", publicPem(key.get()));
  dir.write("keys/priv.pem", privatePem(key.get()));
  dir.write("keys/other.pem", privatePem(other.get()));
  const std::string conf = dir.write("conf/edge.toml", R"([storage]
dir = "../data"
[tenants.acme]
[[tenants.acme.keys]]
kid = "ec"
alg = "ES256"
public_key_file = "../keys/pub.pem"
private_key_file = "../keys/priv.pem"
)");
  Result<EdgeConfig> loaded = loadEdgeConfig(conf);
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->storage_dir, dir.file("data"));
  const TokenKey& tk = loaded->tenants.at("acme").tokens.keys.at(0);
  EXPECT_EQ(tk.alg, TokenAlg::kES256);
  EXPECT_EQ(tk.public_key_pem, publicPem(key.get()));
  EXPECT_EQ(tk.private_key_pem, privatePem(key.get()));

  // What the loader accepted must sign tokens the verifier accepts.
  TokenToSign token;
  token.claims.sub = "alice";
  token.claims.tnt = "acme";
  token.claims.kid = "ec";
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  token.claims.iat = now;
  token.claims.exp = now + 60;
  token.aud = loaded->token_policy.audience;
  Result<std::string> signed_token = signToken(tk, token);
  ASSERT_TRUE(signed_token) << signed_token.status().message();
  TokenVerifier verifier(loaded->token_policy);
  ASSERT_TRUE(verifier.addTenant("acme", loaded->tenants.at("acme").tokens).isOk());
  Result<TokenClaims> claims = verifier.verify(*signed_token, now);
  ASSERT_TRUE(claims) << claims.status().message();
  EXPECT_EQ(claims->sub, "alice");

  // A private key of another pair is refused, at the private key line.
  const std::string mismatched = dir.write("conf/bad.toml", R"([tenants.acme]
[[tenants.acme.keys]]
alg = "ES256"
public_key_file = "../keys/pub.pem"
private_key_file = "../keys/other.pem"
)");
  Result<EdgeConfig> bad = loadEdgeConfig(mismatched);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().message(),
            mismatched +
                ":5:20: tenants.acme.keys[0].private_key_file: does not belong to the "
                "public key");
  EXPECT_EQ(bad.status().message().find("PRIVATE KEY"), std::string::npos);

  // A missing key file and a public key that is not one.
  const std::string missing = dir.write("conf/missing.toml", R"([tenants.acme]
[[tenants.acme.keys]]
alg = "ES256"
public_key_file = "nope.pem"
[[tenants.acme.keys]]
kid = "2"
alg = "ES256"
public_key = "not a pem"
)");
  const std::vector<std::string> lines = splitLines(loadEdgeConfig(missing).status().message());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].rfind(missing + ":4:19: tenants.acme.keys[0].public_key_file: cannot open '" +
                               dir.file("conf/nope.pem") + "'",
                           0),
            0u)
      << lines[0];
  EXPECT_EQ(lines[1].rfind(missing + ":5:1: tenants.acme.keys[1]: ", 0), 0u) << lines[1];
}

TEST(EdgeConfigFiles, Es256InlinePem) {
  EvpPkeyPtr key = newP256Key();
  const std::string text =
      "[tenants.acme]\n[[tenants.acme.keys]]\nalg = \"ES256\"\n"
      "public_key = \"\"\"\n" +
      publicPem(key.get()) + "\"\"\"\n";
  Result<EdgeConfig> loaded = parseEdgeConfig(text, "e");
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->tenants.at("acme").tokens.keys.at(0).public_key_pem, publicPem(key.get()));
  EXPECT_TRUE(loaded->tenants.at("acme").tokens.keys.at(0).private_key_pem.empty());
}

TEST(EdgeConfigFiles, RelativePathsOfParsedText) {
  Result<EdgeConfig> loaded =
      parseEdgeConfig(minimal("[storage]\ndir = \"state/./edge\"\n"), "/etc/wsfleet/edge.toml");
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->storage_dir, "/etc/wsfleet/state/edge");
  loaded = parseEdgeConfig(minimal("[storage]\ndir = \"/srv/edge\"\n"), "/etc/wsfleet/edge.toml");
  ASSERT_TRUE(loaded);
  EXPECT_EQ(loaded->storage_dir, "/srv/edge");
}

// ---- TLS.

TEST(EdgeConfigTls, HalfConfiguredIsRefused) {
  EXPECT_EQ(errorsOf(minimal("[websocket]\ntls_cert = \"cert.pem\"\n")),
            "cfg.toml:2:12: websocket.tls_cert: websocket.tls_cert and websocket.tls_key must be "
            "set together (both empty: plain ws)");
  EXPECT_EQ(errorsOf(minimal("[websocket]\ntls_key = \"key.pem\"\n")),
            "cfg.toml:2:11: websocket.tls_key: websocket.tls_cert and websocket.tls_key must be "
            "set together (both empty: plain ws)");
}

TEST(EdgeConfigTls, MissingFiles) {
  TempDir dir;
  const std::string conf = dir.write(
      "edge.toml", minimal("[websocket]\ntls_cert = \"cert.pem\"\ntls_key = \"key.pem\"\n"));
  Result<EdgeConfig> loaded = loadEdgeConfig(conf);
  ASSERT_FALSE(loaded);
  const std::vector<std::string> lines = splitLines(loaded.status().message());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], conf + ":2:12: websocket.tls_cert: file '" + dir.file("cert.pem") +
                          "' does not exist or is not a regular file");
  EXPECT_EQ(lines[1].rfind(conf + ":3:11: websocket.tls_key: file '", 0), 0u);
}

TEST(EdgeConfigTls, MatchingAndMismatchedPairs) {
  TempDir dir;
  EvpPkeyPtr key = newP256Key();
  EvpPkeyPtr other = newP256Key();
  dir.write("tls/cert.pem", selfSignedCertPem(key.get()));
  dir.write("tls/key.pem", privatePem(key.get()));
  dir.write("tls/other.pem", privatePem(other.get()));
  dir.write("tls/garbage.pem", "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n");

  const std::string good =
      dir.write("good.toml",
                minimal("[websocket]\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/key.pem\"\n"));
  Result<EdgeConfig> loaded = loadEdgeConfig(good);
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->tls_cert_file, dir.file("tls/cert.pem"));
  EXPECT_EQ(loaded->tls_key_file, dir.file("tls/key.pem"));
  EXPECT_TRUE(checkTlsKeyPair(loaded->tls_cert_file, loaded->tls_key_file).isOk());

  const std::string bad =
      dir.write("bad.toml",
                minimal("[websocket]\ntls_cert = \"tls/cert.pem\"\ntls_key = \"tls/other.pem\"\n"));
  Result<EdgeConfig> mismatched = loadEdgeConfig(bad);
  ASSERT_FALSE(mismatched);
  EXPECT_EQ(mismatched.status().message(),
            bad + ":3:11: websocket.tls_key: the private key does not match the certificate '" +
                dir.file("tls/cert.pem") + "'");
  EXPECT_EQ(mismatched.status().message().find("PRIVATE"), std::string::npos);

  const std::string garbage = dir.write(
      "garbage.toml",
      minimal("[websocket]\ntls_cert = \"tls/garbage.pem\"\ntls_key = \"tls/key.pem\"\n"));
  Result<EdgeConfig> unparsable = loadEdgeConfig(garbage);
  ASSERT_FALSE(unparsable);
  EXPECT_EQ(unparsable.status().message().rfind(garbage + ":2:12: websocket.tls_cert: ", 0), 0u)
      << unparsable.status().message();
  EXPECT_NE(unparsable.status().message().find("does not contain a PEM certificate"),
            std::string::npos);
}

// ---- Look-ups.

TEST(EdgeConfigLookup, FindNamespace) {
  Result<EdgeConfig> loaded = parseEdgeConfig(
      minimal("[tenants.acme.namespaces.chat]\n[tenants.acme.namespaces.live]\n"), "e");
  ASSERT_TRUE(loaded) << loaded.status().message();
  const TenantConfig& acme = loaded->tenants.at("acme");
  const NamespaceConfig* chat = findNamespace(acme, "chat:room42");
  ASSERT_NE(chat, nullptr);
  EXPECT_EQ(chat->name, "chat");
  ASSERT_NE(findNamespace(acme, "live:a:b"), nullptr);
  EXPECT_EQ(findNamespace(acme, "live:a:b")->name, "live");
  EXPECT_EQ(findNamespace(acme, "news:x"), nullptr);
  EXPECT_EQ(findNamespace(acme, "cha:x"), nullptr);
  EXPECT_EQ(findNamespace(acme, "chatroom"), nullptr);
}

// ---- Drain and operator options.

TEST(EdgeConfigDrain, OptionsAreReadAndChecked) {
  Result<EdgeConfig> loaded =
      parseEdgeConfig(minimal("[admin]\noperator_token = \"operator-token-0123456789\"\n"
                              "[drain]\nwindow_ms = 1500\ngrace_ms = 0\n"
                              "reconnect_url = \"wss://eu-west.example.com/ws\"\n"),
                      "e");
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->operator_token, "operator-token-0123456789");
  EXPECT_EQ(loaded->drain_window_ms, 1500u);
  EXPECT_EQ(loaded->drain_grace_ms, 0u);
  EXPECT_EQ(loaded->drain_reconnect_url, "wss://eu-west.example.com/ws");

  const std::string errors =
      errorsOf(minimal("[admin]\noperator_token = \"short\"\n"
                       "[drain]\nwindow_ms = -1\nreconnect_url = \"http://x.example\"\n"));
  EXPECT_NE(errors.find("cfg.toml:2:18: admin.operator_token: an operator token must be at "
                        "least 16 characters"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("cfg.toml:4:13: drain.window_ms"), std::string::npos) << errors;
  EXPECT_NE(errors.find("cfg.toml:5:17: drain.reconnect_url"), std::string::npos) << errors;
}

TEST(EdgeConfigDrain, OperatorTokenIsNeverATenantApiKey) {
  const std::string errors = errorsOf(
      minimal("[admin]\noperator_token = \"shared-secret-0123456789\"\n"
              "[tenants.b]\napi_keys = [\"shared-secret-0123456789\"]\n"
              "[[tenants.b.keys]]\nkid = \"k\"\nsecret = \"0123456789abcdef0123456789abcdef\"\n"));
  EXPECT_NE(errors.find("cfg.toml:2:18: admin.operator_token: must differ from every API key "
                        "(it equals tenants.b.api_keys[0])"),
            std::string::npos)
      << errors;
  // The key itself is never quoted back.
  EXPECT_EQ(errors.find("shared-secret"), std::string::npos) << errors;
}

// ---- Reload: what needs a restart.

TEST(EdgeConfigReload, RestartOnlyChangesAreNamedAndKept) {
  Result<EdgeConfig> running = parseEdgeConfig(minimal(), "/etc/wsfleet/edge.toml");
  ASSERT_TRUE(running) << running.status().message();
  EXPECT_TRUE(restartOnlyChanges(*running, *running).empty());

  Result<EdgeConfig> next =
      parseEdgeConfig(minimal("[node]\nregion = \"eu\"\n"
                              "[websocket]\nlisten = \"127.0.0.1:8081\"\nmax_message_bytes = 1000\n"
                              "ping_interval_ms = 5000\n"
                              "[admin]\nlisten = \"127.0.0.1:9090\"\nmax_body_bytes = 2048\n"
                              "[storage]\ndir = \"/srv/other\"\n[presence]\nflush_ms = 40\n"),
                      "/etc/wsfleet/edge.toml");
  ASSERT_TRUE(next) << next.status().message();
  EXPECT_EQ(restartOnlyChanges(*running, *next),
            (std::vector<std::string>{"node.region", "websocket.listen", "storage.dir",
                                      "presence.flush_ms"}));
  keepRestartOnly(*running, *next);
  EXPECT_TRUE(restartOnlyChanges(*running, *next).empty());
  EXPECT_EQ(next->region, "local");
  EXPECT_EQ(next->ws_listen.port, 8080);
  EXPECT_EQ(next->storage_dir, running->storage_dir);
  EXPECT_EQ(next->presence_flush_ms, 20u);
  // What a reload may change is left as the new file says.
  EXPECT_EQ(next->max_message_bytes, 1000u);
  EXPECT_EQ(next->ping_interval_ms, 5000u);
  EXPECT_EQ(next->max_body_bytes, 2048u);
}

}  // namespace
}  // namespace wsfleet
