#include "regions/topology.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/config_toml.h"

namespace wsfleet {
namespace {

constexpr const char* kSource = "topo.toml";

// Two valid regions; tests append to it or replace one of its lines.
constexpr const char* kTwoRegions = R"([[regions]]
name = "a"
nats_urls = ["nats://10.0.0.1:4222"]
public_urls = ["wss://a.example.com/ws"]
client_subnets = ["10.1.0.0/16", "2001:db8:1::/48"]
failover = ["b"]

[[regions]]
name = "b"
nats_urls = ["tls://10.0.0.2:4222"]
public_urls = ["ws://b.example.com:8080"]
client_subnets = ["10.2.0.0/16"]
failover = ["a"]
)";

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

// The 1-based line of the first occurrence of `marker` in `text`.
int lineOf(const std::string& text, const std::string& marker) {
  const size_t at = text.find(marker);
  EXPECT_NE(at, std::string::npos) << marker;
  int line = 1;
  for (size_t i = 0; i < at && i < text.size(); ++i) line += text[i] == '\n' ? 1 : 0;
  return line;
}

std::vector<std::string> errorLines(const std::string& text) {
  Result<Topology> topology = parseTopology(text, kSource);
  if (topology) return {};
  EXPECT_EQ(topology.status().code(), Code::kConfig);
  EXPECT_STREQ(topology.status().reason(), "config_invalid");
  std::vector<std::string> lines;
  const std::string& message = topology.status().message();
  size_t start = 0;
  while (start < message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    lines.push_back(message.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// `text` fails with exactly one error, on `line`, that mentions `needle`.
void expectOneError(const std::string& text, int line, const std::string& needle) {
  const std::vector<std::string> lines = errorLines(text);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  const std::string prefix = std::string(kSource) + ":" + std::to_string(line) + ":";
  EXPECT_EQ(lines[0].rfind(prefix, 0), 0u) << lines[0] << " (wanted " << prefix << ")";
  EXPECT_NE(lines[0].find(needle), std::string::npos) << lines[0] << " (wanted " << needle << ")";
}

// Replaces `from` by `to` and expects one error on the line of `to`.
void expectErrorAtReplacement(const std::string& from, const std::string& to,
                              const std::string& needle) {
  const std::string text = replaced(kTwoRegions, from, to);
  expectOneError(text, lineOf(text, to), needle);
}

TEST(TopologyTest, SampleConfParses) {
  Result<Topology> topology = loadTopology(WSFLEET_SOURCE_DIR "/conf/topology.toml");
  ASSERT_TRUE(topology) << topology.status().message();
  ASSERT_EQ(topology->regions.size(), 3u);
  EXPECT_EQ(topology->regions[0].name, "us-east");
  EXPECT_EQ(topology->regions[1].name, "eu-west");
  EXPECT_EQ(topology->regions[2].name, "ap-south");
  EXPECT_EQ(topology->regions[0].weight, 200u);
  EXPECT_EQ(topology->regions[2].weight, kDefaultRegionWeight);
  EXPECT_EQ(topology->regions[0].nats_urls.size(), 3u);
  EXPECT_EQ(topology->regions[1].nats_urls[0], "tls://10.20.0.11:4222");
  EXPECT_EQ(topology->regions[2].failover, (std::vector<std::string>{"eu-west", "us-east"}));
  EXPECT_EQ(topology->regions[0].gateway_url, "10.10.0.11:7222");
  EXPECT_TRUE(topology->regions[2].gateway_url.empty());
  ASSERT_EQ(topology->regions[1].client_subnets.size(), 3u);
  EXPECT_EQ(topology->regions[1].client_subnets[1].text, "203.0.113.0/25");
  EXPECT_EQ(topology->regions[1].client_subnets[1].network.prefix_bits, 96 + 25);
  ASSERT_EQ(topology->regions[1].servers.size(), 3u);
  EXPECT_EQ(topology->regions[1].servers[2].name, "nats-eu-west-3");
  EXPECT_EQ(topology->regions[1].servers[2].gateway, "10.20.0.13:7222");
  EXPECT_EQ(topology->regions[2].dns_addresses,
            (std::vector<std::string>{"192.0.2.30", "2001:db8:ff30::30"}));
  // Its pin and move are commented out: the sample must stay valid when they are enabled.
  EXPECT_TRUE(topology->pins.empty());
  EXPECT_TRUE(topology->moves.empty());
}

TEST(TopologyTest, SampleConfCommentedExamplesAreValid) {
  Result<std::string> text = readConfigFile(WSFLEET_SOURCE_DIR "/conf/topology.toml");
  ASSERT_TRUE(text);
  std::string uncommented;
  bool in_examples = false;
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    if (line == "# [[pins]]" || line == "# [[moves]]") in_examples = true;
    if (in_examples && line.rfind("# ", 0) == 0 && line.find(" = ") != std::string::npos) {
      line = line.substr(2);
    } else if (in_examples && (line == "# [[pins]]" || line == "# [[moves]]")) {
      line = line.substr(2);
    }
    uncommented += line + "\n";
    start = end + 1;
  }
  Result<Topology> topology = parseTopology(uncommented, "sample");
  ASSERT_TRUE(topology) << topology.status().message();
  ASSERT_EQ(topology->pins.size(), 1u);
  EXPECT_EQ(topology->pins[0].tenant, "acme");
  EXPECT_EQ(topology->pins[0].ns, "billing");
  EXPECT_EQ(topology->pins[0].region, "eu-west");
  ASSERT_EQ(topology->moves.size(), 1u);
  EXPECT_EQ(topology->moves[0].channel, "chat:launch-day");
  EXPECT_EQ(topology->moves[0].region, "ap-south");
}

TEST(TopologyTest, DefaultsAndLookups) {
  const std::string text = std::string(kTwoRegions) + R"(
[[regions]]
name = "c"
nats_urls = ["nats://[fd00::1]:4222"]
public_urls = ["wss://[fd00::2]/ws"]

[[pins]]
tenant = "acme"
namespace = "billing"
region = "b"

[[moves]]
tenant = "acme"
channel = "chat:hot"
region = "c"
)";
  Result<Topology> topology = parseTopology(text, kSource);
  ASSERT_TRUE(topology) << topology.status().message();
  const RegionSpec* c = topology->findRegion("c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->weight, 100u);
  EXPECT_TRUE(c->failover.empty());
  EXPECT_TRUE(c->client_subnets.empty());
  EXPECT_TRUE(c->gateway_url.empty());
  EXPECT_EQ(topology->findRegion("d"), nullptr);
  ASSERT_NE(topology->findPin("acme", "billing"), nullptr);
  EXPECT_EQ(topology->findPin("acme", "billing")->region, "b");
  EXPECT_EQ(topology->findPin("acme", "chat"), nullptr);
  EXPECT_EQ(topology->findPin("other", "billing"), nullptr);
  ASSERT_NE(topology->findMove("acme", "chat:hot"), nullptr);
  EXPECT_EQ(topology->findMove("acme", "chat:hot")->region, "c");
  EXPECT_EQ(topology->findMove("acme", "chat:cold"), nullptr);
}

TEST(TopologyTest, SyntaxErrorHasItsPosition) {
  const std::string text = std::string(kTwoRegions) + "[[regions]\nname = \"c\"\n";
  expectOneError(text, lineOf(text, "name = \"c\"") - 1, "TOML syntax error");
}

TEST(TopologyTest, AtLeastOneRegion) {
  expectOneError("", 1, "at least one region is required");
  expectOneError("regions = []\n", 1, "at least one region is required");
  expectOneError("# nothing\n\nregions = 3\n", 3, "expected [[regions]] tables, got an integer");
  expectOneError("[regions.a]\nname = \"a\"\n", 1, "expected [[regions]] tables, got a table");
}

TEST(TopologyTest, UnknownKeysAreRefused) {
  // Top-level keys come before the first table (after it they would belong to it).
  expectOneError("region_count = 2\n" + std::string(kTwoRegions), 1, "unknown key 'region_count'");
  const std::string text = replaced(kTwoRegions, "failover = [\"a\"]", "failovr = [\"a\"]");
  expectOneError(text, lineOf(text, "failovr"),
                 "unknown key 'regions[1].failovr' (did you mean 'regions[1].failover'?)");
  expectOneError(std::string(kTwoRegions) + "pins = 3\n", 14, "unknown key 'regions[1].pins'");
}

TEST(TopologyTest, RequiredRegionKeysPointAtTheTable) {
  for (const char* key : {"name = \"b\"\n", "nats_urls = [\"tls://10.0.0.2:4222\"]\n",
                          "public_urls = [\"ws://b.example.com:8080\"]\n"}) {
    const std::string text = replaced(kTwoRegions, key, "");
    const std::vector<std::string> lines = errorLines(text);
    ASSERT_FALSE(lines.empty()) << key;
    const std::string wanted = std::string(kSource) + ":8:";  // the second [[regions]]
    bool found = false;
    for (const std::string& line : lines) {
      found =
          found || (line.rfind(wanted, 0) == 0 && line.find("is required") != std::string::npos);
    }
    EXPECT_TRUE(found) << key << ": " << ::testing::PrintToString(lines);
  }
}

TEST(TopologyTest, RegionNames) {
  // Without region a's mention of b, so that renaming b is the only problem.
  const std::string base = replaced(kTwoRegions, "failover = [\"b\"]", "failover = []");
  for (const char* bad : {"name = \"b.east\"", "name = \"\"", "name = 7"}) {
    const std::string text = replaced(base, "name = \"b\"", bad);
    expectOneError(text, 9,
                   std::string(bad) == "name = 7" ? "expected a string, got an integer"
                                                  : "must be 1..64 characters of "
                                                    "[A-Za-z0-9_-]");
  }
  // The second use of a name is the error, and it says where the first one is.
  const std::string text = replaced(base, "name = \"b\"", "name = \"a\"");
  expectOneError(replaced(text, "failover = [\"a\"]", ""), 9,
                 "regions[1].name: 'a' is already the name of regions[0] (line 2)");
}

TEST(TopologyTest, NatsUrls) {
  const std::string from = "nats_urls = [\"tls://10.0.0.2:4222\"]";
  expectErrorAtReplacement(from, "nats_urls = [\"http://10.0.0.2:4222\"]",
                           "regions[1].nats_urls[0]: 'http://10.0.0.2:4222' is not nats://");
  expectErrorAtReplacement(from, "nats_urls = [\"nats://10.0.0.2\"]", "has no port");
  expectErrorAtReplacement(from, "nats_urls = [\"nats://10.0.0.2:99999\"]", "has a bad port");
  expectErrorAtReplacement(from, "nats_urls = [\"nats://u:p@10.0.0.2:4222\"]",
                           "credentials do not belong");
  expectErrorAtReplacement(from, "nats_urls = [\"nats://[fd00::zz]:4222\"]", "bad IPv6 host");
  expectErrorAtReplacement(from, "nats_urls = []", "regions[1].nats_urls: needs at least one URL");
  expectErrorAtReplacement(from, "nats_urls = \"nats://10.0.0.2:4222\"",
                           "expected an array of strings, got a string");
}

TEST(TopologyTest, PublicUrls) {
  const std::string from = "public_urls = [\"ws://b.example.com:8080\"]";
  expectErrorAtReplacement(from, "public_urls = [\"https://b.example.com\"]",
                           "regions[1].public_urls[0]: 'https://b.example.com' is not a URL");
  expectErrorAtReplacement(from, "public_urls = [\"wss://b.example.com:0/ws\"]", "bad port");
  expectErrorAtReplacement(from, "public_urls = [\"wss://-b.example.com/ws\"]", "bad host name");
  expectErrorAtReplacement(from, "public_urls = [\"wss://b.example.com/a b\"]", "printable");
  expectErrorAtReplacement(from, "public_urls = []", "public_urls: needs at least one URL");
}

TEST(TopologyTest, GatewayUrl) {
  const std::string with_gateway = replaced(kTwoRegions, "failover = [\"a\"]",
                                            "failover = [\"a\"]\ngateway_url = \"gw.b:7222\"");
  EXPECT_TRUE(parseTopology(with_gateway, kSource));
  const std::string text = replaced(with_gateway, "\"gw.b:7222\"", "\"nats://gw.b:7222\"");
  expectOneError(text, lineOf(text, "gateway_url"),
                 "regions[1].gateway_url: 'nats://gw.b:7222' is not host:port");
  const std::string no_port = replaced(with_gateway, "\"gw.b:7222\"", "\"gw.b\"");
  expectOneError(no_port, lineOf(no_port, "gateway_url"), "has no port");
}

TEST(TopologyTest, Weight) {
  const std::string base =
      replaced(kTwoRegions, "failover = [\"a\"]", "failover = [\"a\"]\nweight = 1");
  Result<Topology> topology = parseTopology(base, kSource);
  ASSERT_TRUE(topology) << topology.status().message();
  EXPECT_EQ(topology->regions[1].weight, 1u);
  EXPECT_EQ(topology->regions[0].weight, 100u);
  EXPECT_TRUE(parseTopology(replaced(base, "weight = 1", "weight = 1000"), kSource));
  for (const char* bad : {"weight = 0", "weight = 1001", "weight = -5"}) {
    const std::string text = replaced(base, "weight = 1", bad);
    expectOneError(text, lineOf(text, "weight"), "is out of range (1..1000)");
  }
  const std::string text = replaced(base, "weight = 1", "weight = 1.5");
  expectOneError(text, lineOf(text, "weight"), "expected an integer, got a float");
}

TEST(TopologyTest, Failover) {
  const std::string from = "failover = [\"b\"]";  // region a's
  expectErrorAtReplacement(from, "failover = [\"a\"]",
                           "regions[0].failover[0]: a region cannot fail over to itself");
  expectErrorAtReplacement(from, "failover = [\"b\", \"z\"]",
                           "regions[0].failover[1]: 'z' is not a region");
  expectErrorAtReplacement(from, "failover = [\"b\", \"b\"]",
                           "regions[0].failover[1]: 'b' is listed twice");
  expectErrorAtReplacement(from, "failover = [\"a.b\"]", "[A-Za-z0-9_-]");
  expectErrorAtReplacement(from, "failover = \"b\"", "expected an array of strings");
  // Renaming a region leaves its mentions dangling: each is reported where it is.
  const std::string text = replaced(kTwoRegions, "name = \"b\"", "name = \"b2\"");
  const std::vector<std::string> lines = errorLines(text);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "topo.toml:6:13: regions[0].failover[0]: 'b' is not a region");
}

TEST(TopologyTest, ClientSubnetSyntax) {
  const std::string from = "client_subnets = [\"10.2.0.0/16\"]";
  expectErrorAtReplacement(from, "client_subnets = [\"10.2.0.0/33\"]", "longer than the address");
  expectErrorAtReplacement(from, "client_subnets = [\"10.2.0.1/16\"]", "bits set after the prefix");
  expectErrorAtReplacement(from, "client_subnets = [\"eu\"]", "is not an IP address or network");
}

TEST(TopologyTest, ClientSubnetsBelongToOneRegion) {
  const std::string from = "client_subnets = [\"10.2.0.0/16\"]";
  // Identical across regions.
  expectErrorAtReplacement(from, "client_subnets = [\"10.1.0.0/16\"]",
                           "regions[1].client_subnets[0]: '10.1.0.0/16' is the same as "
                           "'10.1.0.0/16' of region 'a' (line 5)");
  // Nested, both ways round.
  expectErrorAtReplacement(from, "client_subnets = [\"10.1.2.0/24\"]",
                           "'10.1.2.0/24' is inside '10.1.0.0/16' of region 'a' (line 5)");
  expectErrorAtReplacement(from, "client_subnets = [\"10.0.0.0/8\"]",
                           "'10.0.0.0/8' contains '10.1.0.0/16' of region 'a'");
  expectErrorAtReplacement(from, "client_subnets = [\"2001:db8:1:ff::/64\"]",
                           "'2001:db8:1:ff::/64' is inside '2001:db8:1::/48' of region 'a'");
  // An IPv6 network that holds the IPv4-mapped space holds the region's IPv4 networks.
  expectErrorAtReplacement(from, "client_subnets = [\"::/0\"]", "contains '10.1.0.0/16'");
  // Neighbours do not overlap; an IPv4 network never overlaps a native IPv6 one.
  EXPECT_TRUE(parseTopology(
      replaced(kTwoRegions, from, "client_subnets = [\"10.0.0.0/16\", \"2001:db8:2::/48\"]"),
      kSource));
  // Within one region: a repeat is a typo, a network inside another is harmless.
  expectErrorAtReplacement(from, "client_subnets = [\"10.2.0.0/16\", \"10.2.0.0/16\"]",
                           "regions[1].client_subnets[1]: '10.2.0.0/16' is listed twice");
  EXPECT_TRUE(parseTopology(
      replaced(kTwoRegions, from, "client_subnets = [\"10.2.0.0/16\", \"10.2.3.0/24\"]"), kSource));
}

TEST(TopologyTest, Pins) {
  const std::string pin =
      "\n[[pins]]\ntenant = \"acme\"\nnamespace = \"billing\"\nregion = \"b\"\n";
  const std::string good = std::string(kTwoRegions) + pin;
  ASSERT_TRUE(parseTopology(good, kSource));
  std::string text = replaced(good, "region = \"b\"", "region = \"z\"");
  expectOneError(text, lineOf(text, "region = \"z\""), "pins[0].region: 'z' is not a region");
  text = replaced(good, "tenant = \"acme\"", "tenant = \"Acme\"");
  expectOneError(text, lineOf(text, "Acme"), "pins[0].tenant: 'Acme' must be 1..64 characters");
  text = replaced(good, "namespace = \"billing\"", "namespace = \"bill:ing\"");
  expectOneError(text, lineOf(text, "bill:ing"), "pins[0].namespace");
  text = replaced(good, "namespace = \"billing\"\n", "");
  expectOneError(text, lineOf(text, "[[pins]]"), "pins[0]: 'namespace' is required");
  text = replaced(good, "region = \"b\"", "region = \"b\"\nchannel = \"x:y\"");
  expectOneError(text, lineOf(text, "channel"), "unknown key 'pins[0].channel'");
  text = good + replaced(pin, "region = \"b\"", "region = \"a\"");
  expectOneError(text, lineOf(text, "[[pins]]") + 5,
                 "pins[1]: this tenant's namespace already has an entry in pins[0] (line " +
                     std::to_string(lineOf(text, "[[pins]]")) + ")");
  EXPECT_TRUE(parseTopology(good + replaced(pin, "acme", "globex"), kSource));
  text = "\npins = \"b\"\n" + std::string(kTwoRegions);
  expectOneError(text, 2, "pins: expected [[pins]] tables, got a string");
}

TEST(TopologyTest, Moves) {
  const std::string move =
      "\n[[moves]]\ntenant = \"acme\"\nchannel = \"chat:hot\"\nregion = \"a\"\n";
  const std::string good = std::string(kTwoRegions) + move;
  ASSERT_TRUE(parseTopology(good, kSource));
  std::string text = replaced(good, "region = \"a\"", "region = \"q\"");
  expectOneError(text, lineOf(text, "region = \"q\""), "moves[0].region: 'q' is not a region");
  text = replaced(good, "\"chat:hot\"", "\"lobby\"");
  expectOneError(text, lineOf(text, "lobby"), "moves[0].channel:");
  text = replaced(good, "tenant = \"acme\"\n", "");
  expectOneError(text, lineOf(text, "[[moves]]"), "moves[0]: 'tenant' is required");
  text = good + replaced(move, "region = \"a\"", "region = \"b\"");
  expectOneError(text, lineOf(text, "[[moves]]") + 5,
                 "moves[1]: this tenant's channel already has an entry in moves[0]");
  EXPECT_TRUE(parseTopology(good + replaced(move, "chat:hot", "chat:warm"), kSource));
}

TEST(TopologyTest, EveryErrorAtOnceInFileOrder) {
  std::string text = replaced(kTwoRegions, "failover = [\"a\"]", "failover = [\"zz\"]\nweight = 0");
  text = replaced(text, "nats_urls = [\"nats://10.0.0.1:4222\"]", "nats_urls = [\"nats://x\"]");
  text += "\n[[moves]]\ntenant = \"acme\"\nchannel = \"chat:hot\"\nregion = \"nowhere\"\n";
  const std::vector<std::string> lines = errorLines(text);
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0].rfind("topo.toml:3:", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("topo.toml:" + std::to_string(lineOf(text, "zz")) + ":", 0), 0u);
  EXPECT_EQ(lines[2].rfind("topo.toml:" + std::to_string(lineOf(text, "weight")) + ":", 0), 0u);
  EXPECT_EQ(lines[3].rfind("topo.toml:" + std::to_string(lineOf(text, "nowhere")) + ":", 0), 0u);
}

// Region b of kTwoRegions with two servers and no nats_urls of its own.
std::string withServers() {
  return replaced(kTwoRegions, "nats_urls = [\"tls://10.0.0.2:4222\"]\n", "") + R"(
[[regions.servers]]
name = "b-1"
client = "10.0.0.2:4222"
cluster = "10.0.0.2:6222"
gateway = "10.0.0.2:7222"
monitor = "10.0.0.2:8222"

[[regions.servers]]
name = "b-2"
client = "[fd00::3]:4222"
cluster = "nats-b-2.internal:6222"
gateway = "[fd00::3]:7222"
monitor = "127.0.0.1:8222"
)";
}

TEST(TopologyTest, ServersParseAndDefaultTheNatsUrls) {
  Result<Topology> topology = parseTopology(withServers(), kSource);
  ASSERT_TRUE(topology) << topology.status().message();
  EXPECT_TRUE(topology->regions[0].servers.empty());
  const RegionSpec& b = topology->regions[1];
  ASSERT_EQ(b.servers.size(), 2u);
  EXPECT_EQ(b.servers[0].name, "b-1");
  EXPECT_EQ(b.servers[0].client, "10.0.0.2:4222");
  EXPECT_EQ(b.servers[0].cluster, "10.0.0.2:6222");
  EXPECT_EQ(b.servers[0].gateway, "10.0.0.2:7222");
  EXPECT_EQ(b.servers[0].monitor, "10.0.0.2:8222");
  EXPECT_EQ(b.servers[1].cluster, "nats-b-2.internal:6222");
  EXPECT_EQ(b.nats_urls,
            (std::vector<std::string>{"nats://10.0.0.2:4222", "nats://[fd00::3]:4222"}));
  // nats_urls given: kept as written (the daemons may go through a balancer or TLS).
  const std::string text = replaced(withServers(), "name = \"b\"\n",
                                    "name = \"b\"\nnats_urls = [\"tls://lb.b:4222\"]\n");
  Result<Topology> kept = parseTopology(text, kSource);
  ASSERT_TRUE(kept) << kept.status().message();
  EXPECT_EQ(kept->regions[1].nats_urls, (std::vector<std::string>{"tls://lb.b:4222"}));
}

TEST(TopologyTest, ServerErrors) {
  const std::string good = withServers();
  auto expectAt = [&](const std::string& from, const std::string& to, const std::string& needle) {
    const std::string text = replaced(good, from, to);
    expectOneError(text, lineOf(text, to), needle);
  };
  expectAt("client = \"10.0.0.2:4222\"", "client = \"10.0.0.2\"",
           "regions[1].servers[0].client: '10.0.0.2' is not host:port: it has no port");
  expectAt("monitor = \"10.0.0.2:8222\"", "monitor = \"10.0.0.2:99999\"", "has a bad port");
  expectAt("name = \"b-1\"", "name = \"b 1\"", "regions[1].servers[0].name: 'b 1' must be");
  expectAt("client = \"10.0.0.2:4222\"", "port = 4222\nclient = \"10.0.0.2:4222\"",
           "unknown key 'regions[1].servers[0].port'");
  expectAt("gateway = \"10.0.0.2:7222\"", "gateway = 7222",
           "regions[1].servers[0].gateway: expected a string");
  // Names are unique in the fleet; addresses are unique across every role.
  expectAt("name = \"b-2\"", "name = \"b-1\" # again",
           "regions[1].servers[1].name: 'b-1' is already the name of regions[1].servers[0].name "
           "(line ");
  expectAt("monitor = \"127.0.0.1:8222\"", "monitor = \"10.0.0.2:7222\"",
           "regions[1].servers[1].monitor: '10.0.0.2:7222' is already the address of "
           "regions[1].servers[0].gateway");
  // A missing key points at the server's table.
  const std::string no_cluster = replaced(good, "cluster = \"10.0.0.2:6222\"\n", "");
  expectOneError(no_cluster, lineOf(no_cluster, "[[regions.servers]]"),
                 "regions[1].servers[0]: 'cluster' is required");
  // servers must be tables; an empty list says so.
  const std::string empty =
      replaced(kTwoRegions, "failover = [\"a\"]", "failover = [\"a\"]\nservers = []");
  expectOneError(empty, lineOf(empty, "servers"),
                 "regions[1].servers: expected one or more [[regions.servers]] tables, got an "
                 "empty array");
  const std::string strings =
      replaced(kTwoRegions, "failover = [\"a\"]", "failover = [\"a\"]\nservers = [\"b-1\"]");
  expectOneError(strings, lineOf(strings, "servers"), "tables, got an array");
  // Without servers, nats_urls stays required.
  const std::string neither = replaced(kTwoRegions, "nats_urls = [\"tls://10.0.0.2:4222\"]\n", "");
  expectOneError(neither, lineOf(neither, "name = \"b\"") - 1,
                 "regions[1]: 'nats_urls' is required");
}

TEST(TopologyTest, DnsAddresses) {
  const std::string base =
      replaced(kTwoRegions, "failover = [\"a\"]",
               "failover = [\"a\"]\ndns_addresses = [\"192.0.2.1\", \"2001:db8::1\"]");
  Result<Topology> topology = parseTopology(base, kSource);
  ASSERT_TRUE(topology) << topology.status().message();
  EXPECT_EQ(topology->regions[1].dns_addresses,
            (std::vector<std::string>{"192.0.2.1", "2001:db8::1"}));
  EXPECT_TRUE(topology->regions[0].dns_addresses.empty());
  for (const char* bad : {"b.example.com", "192.0.2.0/24", "fe80::1%eth0", "::ffff:192.0.2.1"}) {
    const std::string text = replaced(base, "\"2001:db8::1\"", std::string("\"") + bad + "\"");
    expectOneError(
        text, lineOf(text, "dns_addresses"),
        "regions[1].dns_addresses[1]: '" + std::string(bad) + "' is not an IPv4 or IPv6 address");
  }
}

TEST(TopologyTest, LoadTopologyReportsAnUnreadableFile) {
  Result<Topology> topology = loadTopology("/nonexistent/topology.toml");
  ASSERT_FALSE(topology);
  EXPECT_STREQ(topology.status().reason(), "file_unreadable");
}

TEST(TopologyTest, LoadTopologyNamesTheFileInErrors) {
  // The sample's path stands in for any file: errors must carry the path given.
  Result<Topology> topology = loadTopology(WSFLEET_SOURCE_DIR "/conf/edge.toml");
  ASSERT_FALSE(topology);
  EXPECT_EQ(topology.status().message().rfind(WSFLEET_SOURCE_DIR "/conf/edge.toml:", 0), 0u)
      << topology.status().message();
}

}  // namespace
}  // namespace wsfleet
