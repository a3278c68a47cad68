#include "bridge/bridge_config.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/config_values.h"
#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

namespace fs = std::filesystem;

constexpr const char* kTopology = R"([[regions]]
name = "eu"
nats_urls = ["nats://10.0.0.1:4222"]
public_urls = ["wss://eu.example.com/ws"]

[[regions]]
name = "us"
nats_urls = ["nats://10.0.1.1:4222"]
public_urls = ["wss://us.example.com/ws"]
)";

// Line numbers below are counted from this text: keep it as it is.
constexpr const char* kGood = R"([bridge]
region = "eu"
topology = "topology.toml"
instance = "eu-b1"
log_level = "debug"

[nats]
servers = ["nats://127.0.0.1:4222", "nats://127.0.0.1:4223"]
request_timeout_ms = 1500

[admin]
listen = "127.0.0.1:9191"

[links]
heartbeat_interval_ms = 250
down_after_ms = 1000
forward_timeout_ms = 3000
forward_attempts = 3
max_pending_forwards = 500
interest_refresh_ms = 4000
interest_linger_ms = 0
)";

// A directory with the topology and a bridge.toml of `text` next to it.
class Files {
 public:
  std::string conf(const std::string& text, const std::string& name = "bridge.toml") {
    dir_.write("topology.toml", kTopology);
    return dir_.write(name, text);
  }
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
};

// The whole error text of loading `text` as <dir>/bridge.toml ("" when it loaded), and
// that file's path in `path`.
std::string errorsOf(const std::string& text, std::string* path = nullptr) {
  Files files;
  const std::string conf = files.conf(text);
  if (path != nullptr) *path = conf;
  Result<BridgeConfig> loaded = loadBridgeConfig(conf);
  if (loaded) return "";
  EXPECT_EQ(loaded.status().code(), Code::kConfig);
  return loaded.status().message();
}

// kGood with the line that starts with `prefix` replaced by `replacement` (which may be
// empty, or several lines).
std::string goodWith(const std::string& prefix, const std::string& replacement) {
  std::string text = kGood;
  const size_t at = text.find("\n" + prefix);
  EXPECT_NE(at, std::string::npos) << prefix;
  const size_t end = text.find('\n', at + 1);
  text.replace(at + 1, end - at, replacement.empty() ? "" : replacement + "\n");
  return text;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(BridgeConfig, AGoodFileParses) {
  Files files;
  const std::string conf = files.conf(kGood);
  Result<BridgeConfig> loaded = loadBridgeConfig(conf);
  ASSERT_TRUE(loaded) << loaded.status().message();
  const BridgeConfig& c = *loaded;
  EXPECT_EQ(c.source_path, conf);
  EXPECT_EQ(c.region, "eu");
  EXPECT_EQ(c.instance, "eu-b1");
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_EQ(c.topology_path, files.dir().file("topology.toml"));
  ASSERT_NE(c.topology, nullptr);
  ASSERT_EQ(c.topology->regions.size(), 2u);
  EXPECT_NE(c.topology->findRegion("us"), nullptr);
  EXPECT_EQ(c.nats.servers,
            (std::vector<std::string>{"nats://127.0.0.1:4222", "nats://127.0.0.1:4223"}));
  EXPECT_EQ(c.nats.request_timeout_ms, 1500u);
  EXPECT_EQ(c.admin_listen.host, "127.0.0.1");
  EXPECT_EQ(c.admin_listen.port, 9191);
  EXPECT_EQ(c.links.heartbeat_interval_ms, 250u);
  EXPECT_EQ(c.links.down_after_ms, 1000u);
  EXPECT_EQ(c.links.forward_timeout_ms, 3000u);
  EXPECT_EQ(c.links.forward_attempts, 3u);
  EXPECT_EQ(c.links.max_pending_forwards, 500u);
  EXPECT_EQ(c.links.interest_refresh_ms, 4000u);
  EXPECT_EQ(c.links.interest_linger_ms, 0u);
}

TEST(BridgeConfig, OnlyTheRequiredKeysGiveTheDefaults) {
  Files files;
  Result<BridgeConfig> loaded = loadBridgeConfig(files.conf(R"([bridge]
region = "us"
topology = "topology.toml"
[nats]
servers = ["nats://127.0.0.1:4222"]
)"));
  ASSERT_TRUE(loaded) << loaded.status().message();
  const BridgeConfig& c = *loaded;
  const LinksConfig defaults;
  EXPECT_EQ(c.links.heartbeat_interval_ms, defaults.heartbeat_interval_ms);
  EXPECT_EQ(c.links.down_after_ms, defaults.down_after_ms);
  EXPECT_EQ(c.links.forward_timeout_ms, defaults.forward_timeout_ms);
  EXPECT_EQ(c.links.forward_attempts, defaults.forward_attempts);
  EXPECT_EQ(c.links.max_pending_forwards, defaults.max_pending_forwards);
  EXPECT_EQ(c.links.interest_refresh_ms, defaults.interest_refresh_ms);
  EXPECT_EQ(c.links.interest_linger_ms, defaults.interest_linger_ms);
  EXPECT_EQ(c.admin_listen.port, 9190);
  EXPECT_EQ(c.log_level, "info");
  // No instance: host-pid, always a valid name (it goes into NATS subjects).
  EXPECT_FALSE(c.instance.empty());
  EXPECT_EQ(checkNodeName(c.instance), "") << c.instance;
  EXPECT_TRUE(contains(c.instance, "-" + std::to_string(getpid()))) << c.instance;
}

TEST(BridgeConfig, EveryMissingRequiredKeyIsNamedAtItsSection) {
  std::string path;
  // Line 1 is [bridge]; 7 is [nats].
  std::string errors = errorsOf(goodWith("region = ", ""), &path);
  EXPECT_TRUE(contains(errors, path + ":1:1: bridge.region: is required")) << errors;

  errors = errorsOf(goodWith("topology = ", ""), &path);
  EXPECT_TRUE(contains(errors, path + ":1:1: bridge.topology: is required")) << errors;

  errors = errorsOf(goodWith("servers = ", ""), &path);
  EXPECT_TRUE(contains(errors, path + ":7:1: nats.servers: is required")) << errors;

  // All three at once, in a file without those sections: each one named.
  errors = errorsOf("[admin]\nlisten = \"127.0.0.1:9191\"\n", &path);
  for (const char* key : {"bridge.region", "bridge.topology", "nats.servers"}) {
    EXPECT_TRUE(contains(errors, path + ":1:1: " + std::string(key) + ": is required"))
        << key << "\n"
        << errors;
  }
}

TEST(BridgeConfig, UnknownKeysAreRefused) {
  std::string path;
  std::string errors = errorsOf(goodWith("log_level = ", "log_levl = \"debug\""), &path);
  EXPECT_TRUE(contains(errors, path + ":5:1: unknown key 'bridge.log_levl'")) << errors;
  EXPECT_TRUE(contains(errors, "did you mean 'bridge.log_level'")) << errors;

  errors = errorsOf(std::string(kGood) + "\n[extra]\nfoo = 1\n", &path);
  EXPECT_TRUE(contains(errors, "unknown key 'extra'")) << errors;

  errors = errorsOf(goodWith("forward_attempts = ", "forward_retries = 3"), &path);
  EXPECT_TRUE(contains(errors, path + ":18:1: unknown key 'links.forward_retries'")) << errors;

  // The edge's [nats] key for its history stream is not a bridge option.
  errors = errorsOf(goodWith("request_timeout_ms = ", "history_replicas = 3"), &path);
  EXPECT_TRUE(contains(errors, path + ":9:1: unknown key 'nats.history_replicas'")) << errors;
}

TEST(BridgeConfig, TheRegionMustBeInTheTopology) {
  std::string path;
  const std::string errors = errorsOf(goodWith("region = ", "region = \"ap\""), &path);
  EXPECT_TRUE(contains(errors, path + ":3:")) << "at bridge.topology\n" << errors;
  EXPECT_TRUE(contains(errors, "bridge.topology: ")) << errors;
  EXPECT_TRUE(contains(errors, "has no region 'ap' (it has eu, us)")) << errors;

  // Not a valid region name at all: said at the key.
  const std::string bad_name = errorsOf(goodWith("region = ", "region = \"e u\""), &path);
  EXPECT_TRUE(contains(bad_name, path + ":2:")) << bad_name;
}

TEST(BridgeConfig, AMissingOrBrokenTopologyIsReportedAtTheKey) {
  std::string path;
  std::string errors = errorsOf(goodWith("topology = ", "topology = \"nowhere.toml\""), &path);
  EXPECT_TRUE(contains(errors, path + ":3:")) << errors;
  EXPECT_TRUE(contains(errors, "nowhere.toml")) << errors;

  Files files;
  files.conf(kGood);
  files.dir().write("topology.toml", "[[regions]]\nname = \"eu\"\n");  // no URLs
  Result<BridgeConfig> loaded = loadBridgeConfig(files.dir().file("bridge.toml"));
  ASSERT_FALSE(loaded);
  EXPECT_TRUE(contains(loaded.status().message(), ":3:")) << loaded.status().message();
  EXPECT_TRUE(contains(loaded.status().message(), "bridge.topology: "))
      << loaded.status().message();
}

TEST(BridgeConfig, DownAfterMustExceedTheHeartbeatInterval) {
  std::string path;
  std::string errors = errorsOf(goodWith("down_after_ms = ", "down_after_ms = 250"), &path);
  EXPECT_TRUE(contains(errors, path + ":16:17: links.down_after_ms: must be longer than "
                                      "links.heartbeat_interval_ms"))
      << errors;
  errors = errorsOf(goodWith("down_after_ms = ", "down_after_ms = 200"), &path);
  EXPECT_TRUE(contains(errors, path + ":16:17: links.down_after_ms")) << errors;
  errors = errorsOf(goodWith("heartbeat_interval_ms = ", "heartbeat_interval_ms = 999"));
  EXPECT_EQ(errors, "") << "1000 > 999";
  // Against the default heartbeat (500) when only down_after_ms is set.
  errors = errorsOf(goodWith("heartbeat_interval_ms = ", ""), &path);
  EXPECT_EQ(errors, "") << "1000 > 500";
  std::string text = goodWith("heartbeat_interval_ms = ", "");
  text.replace(text.find("down_after_ms = 1000"), 20, "down_after_ms = 500");
  errors = errorsOf(text, &path);
  EXPECT_TRUE(contains(errors, path + ":15:17: links.down_after_ms")) << errors;
}

TEST(BridgeConfig, OutOfRangeValuesAreRefusedAtTheirLine) {
  std::string path;
  std::string errors = errorsOf(goodWith("forward_attempts = ", "forward_attempts = 0"), &path);
  EXPECT_TRUE(contains(errors, path + ":18:")) << errors;
  EXPECT_TRUE(contains(errors, "links.forward_attempts")) << errors;
  errors = errorsOf(goodWith("instance = ", "instance = \"eu.b1\""), &path);
  EXPECT_TRUE(contains(errors, path + ":4:")) << "a dot would split NATS subjects\n" << errors;
  errors = errorsOf(goodWith("log_level = ", "log_level = \"loud\""), &path);
  EXPECT_TRUE(contains(errors, path + ":5:")) << errors;
}

TEST(BridgeConfig, ARelativeTopologyIsResolvedAgainstTheConfsDirectory) {
  TempDir dir;
  dir.write("fleet/topology.toml", kTopology);
  std::string text = goodWith("topology = ", "topology = \"../fleet/topology.toml\"");
  const std::string conf = dir.write("etc/bridge.toml", text);

  // Whatever the working directory is.
  const fs::path cwd = fs::current_path();
  fs::current_path(dir.path());
  Result<BridgeConfig> loaded = loadBridgeConfig(conf);
  fs::current_path(cwd);
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->topology_path, dir.file("fleet/topology.toml"));
  ASSERT_NE(loaded->topology, nullptr);

  // An absolute path is taken as it is.
  text = goodWith("topology = ", "topology = \"" + dir.file("fleet/topology.toml") + "\"");
  loaded = loadBridgeConfig(dir.write("elsewhere/deep/bridge.toml", text));
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(loaded->topology_path, dir.file("fleet/topology.toml"));
}

TEST(BridgeConfig, SyntaxErrorsAndMissingFiles) {
  std::string path;
  const std::string errors = errorsOf("[bridge\nregion = \"eu\"\n", &path);
  EXPECT_TRUE(contains(errors, path + ":1:")) << errors;

  Result<BridgeConfig> loaded = loadBridgeConfig("/nonexistent/dir/bridge.toml");
  ASSERT_FALSE(loaded);
  EXPECT_TRUE(contains(loaded.status().message(), "/nonexistent/dir/bridge.toml"))
      << loaded.status().message();
}

// ---- The shipped sample (conf/bridge.toml next to conf/topology.toml).

TEST(BridgeConfigSample, LoadsWithTheSampleTopology) {
  const std::string path = std::string(WSFLEET_SOURCE_DIR) + "/conf/bridge.toml";
  Result<BridgeConfig> loaded = loadBridgeConfig(path);
  ASSERT_TRUE(loaded) << loaded.status().message();
  EXPECT_EQ(fs::path(loaded->topology_path),
            fs::weakly_canonical(fs::path(WSFLEET_SOURCE_DIR) / "conf" / "topology.toml"));
  ASSERT_NE(loaded->topology, nullptr);
  EXPECT_NE(loaded->topology->findRegion(loaded->region), nullptr);
  EXPECT_FALSE(loaded->nats.servers.empty());
  EXPECT_EQ(checkNodeName(loaded->instance), "");
}

// Every option is in the sample with its default (the required ones excepted), so that
// the sample documents what a bare file gets.
TEST(BridgeConfigSample, ListsTheDefaults) {
  const std::string source = std::string(WSFLEET_SOURCE_DIR) + "/conf/bridge.toml";
  Result<BridgeConfig> sample = loadBridgeConfig(source);
  ASSERT_TRUE(sample) << sample.status().message();

  Files files;
  Result<BridgeConfig> bare = loadBridgeConfig(
      files.conf("[bridge]\nregion = \"eu\"\ntopology = \"topology.toml\"\n[nats]\nservers = "
                 "[\"nats://127.0.0.1:4222\"]\n"));
  ASSERT_TRUE(bare) << bare.status().message();
  const BridgeConfig& s = *sample;
  const BridgeConfig& b = *bare;
  EXPECT_EQ(s.log_level, b.log_level);
  EXPECT_EQ(s.admin_listen.host, b.admin_listen.host);
  EXPECT_EQ(s.admin_listen.port, b.admin_listen.port);
  EXPECT_EQ(s.links.heartbeat_interval_ms, b.links.heartbeat_interval_ms);
  EXPECT_EQ(s.links.down_after_ms, b.links.down_after_ms);
  EXPECT_EQ(s.links.forward_timeout_ms, b.links.forward_timeout_ms);
  EXPECT_EQ(s.links.forward_attempts, b.links.forward_attempts);
  EXPECT_EQ(s.links.max_pending_forwards, b.links.max_pending_forwards);
  EXPECT_EQ(s.links.interest_refresh_ms, b.links.interest_refresh_ms);
  EXPECT_EQ(s.links.interest_linger_ms, b.links.interest_linger_ms);
  EXPECT_EQ(s.nats.token, b.nats.token);
  EXPECT_EQ(s.nats.user, b.nats.user);
  EXPECT_EQ(s.nats.password, b.nats.password);
  EXPECT_EQ(s.nats.creds_file, b.nats.creds_file);
  EXPECT_EQ(s.nats.tls_ca_file, b.nats.tls_ca_file);
  EXPECT_EQ(s.nats.tls_cert_file, b.nats.tls_cert_file);
  EXPECT_EQ(s.nats.tls_key_file, b.nats.tls_key_file);
  EXPECT_EQ(s.nats.reconnect_wait_ms, b.nats.reconnect_wait_ms);
  EXPECT_EQ(s.nats.reconnect_wait_max_ms, b.nats.reconnect_wait_max_ms);
  EXPECT_EQ(s.nats.reconnect_buffer_bytes, b.nats.reconnect_buffer_bytes);
  EXPECT_EQ(s.nats.ping_interval_ms, b.nats.ping_interval_ms);
  EXPECT_EQ(s.nats.max_pending_ops, b.nats.max_pending_ops);
  EXPECT_EQ(s.nats.max_pending_bytes, b.nats.max_pending_bytes);
  EXPECT_EQ(s.nats.request_timeout_ms, b.nats.request_timeout_ms);

  // And every key the loader knows is written out in the sample (commented or not).
  std::string text;
  {
    std::ifstream in(source);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (const char* key : {"region =",
                          "topology =",
                          "instance =",
                          "log_level =",
                          "servers =",
                          "token =",
                          "user =",
                          "password =",
                          "creds_file =",
                          "tls =",
                          "tls_ca =",
                          "tls_cert =",
                          "tls_key =",
                          "reconnect_wait_ms =",
                          "reconnect_wait_max_ms =",
                          "reconnect_buffer_bytes =",
                          "ping_interval_ms =",
                          "max_pending_ops =",
                          "max_pending_bytes =",
                          "request_timeout_ms =",
                          "listen =",
                          "heartbeat_interval_ms =",
                          "down_after_ms =",
                          "forward_timeout_ms =",
                          "forward_attempts =",
                          "max_pending_forwards =",
                          "interest_refresh_ms =",
                          "interest_linger_ms ="}) {
    EXPECT_TRUE(contains(text, std::string("\n") + key)) << key;
  }
}

}  // namespace
}  // namespace wsfleet
