#include "regions/ownership.h"

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

// Three regions as in conf/topology.toml: us-east twice the weight of the others.
constexpr const char* kThreeRegions = R"(
[[regions]]
name = "us-east"
nats_urls = ["nats://10.10.0.11:4222"]
public_urls = ["wss://us-east.example.com/ws"]
client_subnets = ["10.10.0.0/16", "198.51.100.0/24", "2001:db8:10::/48"]
failover = ["eu-west", "ap-south"]
weight = 200

[[regions]]
name = "eu-west"
nats_urls = ["nats://10.20.0.11:4222"]
public_urls = ["wss://eu-west.example.com/ws"]
client_subnets = ["10.20.0.0/16", "203.0.113.0/25", "2001:db8:20::/48"]
failover = ["us-east", "ap-south"]

[[regions]]
name = "ap-south"
nats_urls = ["nats://10.30.0.11:4222"]
public_urls = ["wss://ap-south.example.com/ws"]
client_subnets = ["10.30.0.0/16", "203.0.113.128/25", "2001:db8:30::/48"]
failover = ["eu-west", "us-east"]
)";

Topology parsed(const std::string& text) {
  Result<Topology> topology = parseTopology(text, "test.toml");
  EXPECT_TRUE(topology) << topology.status().message();
  return topology ? std::move(topology).value() : Topology{};
}

Topology threeRegions(const std::string& extra = "") {
  return parsed(kThreeRegions + extra);
}

const HealthySet kAll = {"us-east", "eu-west", "ap-south"};

std::string owner(const Topology& topology, const HealthySet& healthy, const std::string& tenant,
                  const std::string& channel) {
  Result<std::string> region = ownerRegion(topology, healthy, tenant, channel);
  EXPECT_TRUE(region) << region.status().toString();
  return region ? *region : "";
}

IpAddress ip(const char* text) {
  IpAddress address;
  EXPECT_TRUE(parseIpAddress(text, &address)) << text;
  return address;
}

// A topology of `weights.size()` regions r0, r1, ... built directly (not from TOML).
Topology weighted(const std::vector<uint32_t>& weights) {
  Topology topology;
  for (size_t i = 0; i < weights.size(); ++i) {
    RegionSpec region;
    region.name = "r" + std::to_string(i);
    region.weight = weights[i];
    topology.regions.push_back(region);
  }
  return topology;
}

HealthySet allOf(const Topology& topology) {
  HealthySet healthy;
  for (const RegionSpec& region : topology.regions) healthy.insert(region.name);
  return healthy;
}

std::string keyNumber(int i) {
  return "room:" + std::to_string(i);
}

// ---- The hash is a fleet-wide contract: these values must never change.

TEST(OwnershipHashTest, Fnv1a64KnownVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ULL);
  EXPECT_NE(fnv1a64(std::string("a\0b", 3)), fnv1a64("ab"));  // every byte counts
}

TEST(OwnershipHashTest, Mix64IsTheSplitMix64Finalizer) {
  // SplitMix64's first output from seed 0 is mix64(0 + golden gamma).
  EXPECT_EQ(mix64(0x9e3779b97f4a7c15ULL), 0xe220a8397b1dcdafULL);
  EXPECT_EQ(mix64(1), 0x5692161d100b05e5ULL);
  EXPECT_EQ(mix64(0), 0u);
}

TEST(OwnershipHashTest, GoldenRendezvousValues) {
  const std::string key = ownershipKey("acme", "chat:lobby");
  ASSERT_EQ(key, std::string("acme\0chat:lobby", 15));
  EXPECT_EQ(rendezvousHash(key, "us-east"), 0x84fcc77f2ab761eaULL);
  EXPECT_EQ(rendezvousHash(key, "eu-west"), 0x367decdfe51d0d3aULL);
  EXPECT_DOUBLE_EQ(rendezvousUniform(0x84fcc77f2ab761eaULL), 0.5194821057764024);
  EXPECT_DOUBLE_EQ(rendezvousScore(key, "us-east", 200), 305.3794510568581);
}

TEST(OwnershipHashTest, UniformStaysInsideTheOpenInterval) {
  EXPECT_GT(rendezvousUniform(0), 0.0);
  EXPECT_LT(rendezvousUniform(~0ULL), 1.0);
  EXPECT_EQ(rendezvousUniform(0), 0x1p-53);
  EXPECT_EQ(rendezvousUniform(~0ULL), 1.0 - 0x1p-53);
  EXPECT_GT(rendezvousScore("k", "r", 1), 0.0);
}

TEST(OwnershipHashTest, GoldenOwners) {
  // Fixed inputs, fixed owners: all three regions healthy, then us-east down.
  struct Case {
    const char* tenant;
    const char* channel;
    const char* all_up;
    const char* us_east_down;
  };
  const Case cases[] = {
      {"acme", "chat:lobby", "ap-south", "ap-south"},
      {"acme", "chat:random", "us-east", "eu-west"},
      {"acme", "news:today", "eu-west", "eu-west"},
      {"globex", "chat:lobby", "ap-south", "ap-south"},
      {"globex", "orders:42", "ap-south", "ap-south"},
      {"initech", "tps:reports", "us-east", "ap-south"},
      {"t", "a:b", "us-east", "ap-south"},
      {"acme", "chat:launch-day", "us-east", "ap-south"},
      {"umbrella", "lab:7", "ap-south", "ap-south"},
      {"acme", "billing:invoices", "us-east", "ap-south"},
      {"hooli", "feed:main", "us-east", "eu-west"},
      {"pied-piper", "compress:middle-out", "ap-south", "ap-south"},
  };
  const Topology topology = threeRegions();
  for (const Case& c : cases) {
    EXPECT_EQ(owner(topology, kAll, c.tenant, c.channel), c.all_up) << c.tenant << "/" << c.channel;
    EXPECT_EQ(owner(topology, {"eu-west", "ap-south"}, c.tenant, c.channel), c.us_east_down)
        << c.tenant << "/" << c.channel;
  }
}

// ---- Rendezvous properties.

TEST(OwnershipTest, SharesFollowWeights) {
  const Topology topology = weighted({100, 200, 300, 400});
  const HealthySet healthy = allOf(topology);
  std::map<std::string, int> owned;
  constexpr int kKeys = 100000;
  for (int i = 0; i < kKeys; ++i) owned[*ownerRegion(topology, healthy, "t", keyNumber(i))]++;
  for (size_t r = 0; r < topology.regions.size(); ++r) {
    const double expected = kKeys * (r + 1) / 10.0;
    const int got = owned["r" + std::to_string(r)];
    // About 10 standard deviations for the smallest share; a wrong formula (say the
    // weight multiplying u) is off by far more.
    EXPECT_NEAR(got, expected, expected * 0.04) << "r" << r;
  }
}

TEST(OwnershipTest, EqualWeightsShareEvenly) {
  const Topology topology = weighted({7, 7, 7});
  const HealthySet healthy = allOf(topology);
  std::map<std::string, int> owned;
  for (int i = 0; i < 100000; ++i) owned[*homeRegion(topology, healthy, "t", keyNumber(i))]++;
  for (const auto& [name, count] : owned) EXPECT_NEAR(count, 33333, 1000) << name;
  EXPECT_EQ(owned.size(), 3u);
}

TEST(OwnershipTest, ExtremeWeightsStillGiveTheSmallRegionItsShare) {
  const Topology topology = weighted({1, 1000});
  std::map<std::string, int> owned;
  for (int i = 0; i < 100000; ++i) {
    owned[*ownerRegion(topology, allOf(topology), "t", keyNumber(i))]++;
  }
  EXPECT_NEAR(owned["r0"], 100000 / 1001.0, 40);  // about 100 keys
  EXPECT_GT(owned["r0"], 0);
}

TEST(OwnershipTest, RemovingARegionMovesOnlyItsKeys) {
  const Topology topology = weighted({100, 150, 200, 250, 300});
  const HealthySet all = allOf(topology);
  HealthySet without_r2 = all;
  without_r2.erase("r2");
  int moved = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::string before = *ownerRegion(topology, all, "t", keyNumber(i));
    const std::string after = *ownerRegion(topology, without_r2, "t", keyNumber(i));
    if (before == "r2") {
      EXPECT_NE(after, "r2");
      ++moved;
    } else {
      ASSERT_EQ(before, after) << keyNumber(i);
    }
  }
  EXPECT_NEAR(moved, 100000 * 200 / 1000, 1000);
}

TEST(OwnershipTest, AddingARegionOnlyTakesKeysToIt) {
  const Topology topology = weighted({100, 100, 100, 100});
  HealthySet three = {"r0", "r1", "r2"};
  const HealthySet four = allOf(topology);
  int taken = 0;
  for (int i = 0; i < 100000; ++i) {
    const std::string before = *homeRegion(topology, three, "t", keyNumber(i));
    const std::string after = *homeRegion(topology, four, "t", keyNumber(i));
    if (before != after) {
      ASSERT_EQ(after, "r3") << keyNumber(i);
      ++taken;
    }
  }
  EXPECT_NEAR(taken, 25000, 1000);
}

TEST(OwnershipTest, DeterministicAndIndependentOfFileOrder) {
  const Topology topology = threeRegions();
  // The same regions written in another order, with other URLs: owners depend only on
  // names, weights and health.
  Topology reordered = topology;
  std::swap(reordered.regions[0], reordered.regions[2]);
  reordered.regions[1].nats_urls = {"nats://192.0.2.1:4222"};
  for (int i = 0; i < 2000; ++i) {
    const std::string channel = keyNumber(i);
    const std::string first = owner(topology, kAll, "acme", channel);
    EXPECT_EQ(owner(topology, kAll, "acme", channel), first);
    EXPECT_EQ(owner(reordered, kAll, "acme", channel), first);
  }
}

TEST(OwnershipTest, TenantIsPartOfTheKey) {
  const Topology topology = weighted({100, 100, 100, 100, 100, 100, 100, 100});
  const HealthySet healthy = allOf(topology);
  int differ = 0;
  for (int i = 0; i < 1000; ++i) {
    differ += *ownerRegion(topology, healthy, "a", keyNumber(i)) !=
              *ownerRegion(topology, healthy, "b", keyNumber(i));
  }
  EXPECT_GT(differ, 800);  // about 7/8 if the tenant matters, 0 if it did not
  // And the separator keeps ("ab", "c") apart from ("a", "bc").
  EXPECT_NE(ownershipKey("ab", "c"), ownershipKey("a", "bc"));
}

TEST(OwnershipTest, UnhealthyAndUnknownNamesAreIgnored) {
  const Topology topology = threeRegions();
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(owner(topology, {"eu-west"}, "acme", keyNumber(i)), "eu-west");
    EXPECT_EQ(owner(topology, {"eu-west", "mars"}, "acme", keyNumber(i)), "eu-west");
  }
}

TEST(OwnershipTest, NoHealthyRegionIsAnError) {
  const Topology topology = threeRegions();
  for (const HealthySet& healthy : {HealthySet{}, HealthySet{"mars"}}) {
    Result<std::string> region = ownerRegion(topology, healthy, "acme", "chat:lobby");
    ASSERT_FALSE(region);
    EXPECT_EQ(region.status().code(), Code::kUnavailable);
    EXPECT_STREQ(region.status().reason(), "no_healthy_region");
    Result<std::string> home = homeRegion(topology, healthy, "acme", "alice");
    ASSERT_FALSE(home);
    EXPECT_STREQ(home.status().reason(), "no_healthy_region");
  }
  // Even with a pin and a move, whose regions are just as down.
  const Topology directed = threeRegions(R"(
[[pins]]
tenant = "acme"
namespace = "chat"
region = "eu-west"
[[moves]]
tenant = "acme"
channel = "chat:lobby"
region = "ap-south"
)");
  EXPECT_FALSE(ownerRegion(directed, {}, "acme", "chat:lobby"));
}

// ---- Pins, moves and failover.

constexpr const char* kPinAndMove = R"(
[[pins]]
tenant = "acme"
namespace = "billing"
region = "ap-south"

[[moves]]
tenant = "acme"
channel = "billing:hot"
region = "eu-west"

[[moves]]
tenant = "acme"
channel = "chat:launch-day"
region = "eu-west"
)";

TEST(OwnershipTest, PinOwnsTheWholeNamespace) {
  const Topology topology = threeRegions(kPinAndMove);
  for (int i = 0; i < 200; ++i) {
    const std::string channel = "billing:" + std::to_string(i);
    Result<OwnerDecision> decision = decideOwner(topology, kAll, "acme", channel);
    ASSERT_TRUE(decision);
    EXPECT_EQ(decision->region, "ap-south") << channel;
    EXPECT_EQ(decision->source, OwnerSource::kPin);
  }
  // Only that tenant's namespace, and the namespace is the whole first segment.
  EXPECT_EQ(owner(topology, kAll, "globex", "billing:invoices"),
            *rendezvousRegion(topology, kAll, ownershipKey("globex", "billing:invoices")));
  EXPECT_EQ(owner(topology, kAll, "acme", "billingx:1"),
            *rendezvousRegion(topology, kAll, ownershipKey("acme", "billingx:1")));
  // acme/billing:invoices hashes to us-east (GoldenOwners) yet the pin holds it.
  EXPECT_EQ(owner(threeRegions(), kAll, "acme", "billing:invoices"), "us-east");
  EXPECT_EQ(owner(topology, kAll, "acme", "billing:invoices"), "ap-south");
}

TEST(OwnershipTest, MoveOutranksPinAndHash) {
  const Topology topology = threeRegions(kPinAndMove);
  Result<OwnerDecision> decision = decideOwner(topology, kAll, "acme", "billing:hot");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->region, "eu-west");
  EXPECT_EQ(decision->source, OwnerSource::kMove);
  // chat:launch-day hashes to us-east (GoldenOwners); the move takes it to eu-west.
  EXPECT_EQ(owner(topology, kAll, "acme", "chat:launch-day"), "eu-west");
  // Only the exact channel moves.
  EXPECT_EQ(owner(topology, kAll, "acme", "chat:launch-day2"),
            *rendezvousRegion(topology, kAll, ownershipKey("acme", "chat:launch-day2")));
}

TEST(OwnershipTest, PinnedRegionDownFailsOverInOrder) {
  const Topology topology = threeRegions(kPinAndMove);
  // ap-south's failover order is eu-west, then us-east.
  Result<OwnerDecision> decision =
      decideOwner(topology, {"us-east", "eu-west"}, "acme", "billing:1");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->region, "eu-west");
  EXPECT_EQ(decision->source, OwnerSource::kPinFailover);
  EXPECT_EQ(owner(topology, {"us-east"}, "acme", "billing:1"), "us-east");
}

TEST(OwnershipTest, MovedRegionDownFailsOverInOrderThenToThePin) {
  const Topology topology = threeRegions(kPinAndMove);
  // eu-west (moved to) is down: its failover list says us-east first.
  Result<OwnerDecision> decision =
      decideOwner(topology, {"us-east", "ap-south"}, "acme", "billing:hot");
  ASSERT_TRUE(decision);
  EXPECT_EQ(decision->region, "us-east");
  EXPECT_EQ(decision->source, OwnerSource::kMoveFailover);
  EXPECT_EQ(owner(topology, {"ap-south"}, "acme", "billing:hot"), "ap-south");
}

TEST(OwnershipTest, DirectivesWithNoHealthyFailoverFallToRendezvous) {
  // ap-south pinned, with no failover list: while it is down, hashing decides.
  const std::string text = std::string(kThreeRegions) + R"(
[[pins]]
tenant = "acme"
namespace = "billing"
region = "ap-south"
)";
  std::string no_failover = text;
  const std::string list = "failover = [\"eu-west\", \"us-east\"]\n";
  no_failover.replace(no_failover.find(list), list.size(), "");
  const Topology topology = parsed(no_failover);
  const HealthySet down = {"us-east", "eu-west"};
  std::map<std::string, int> owned;
  for (int i = 0; i < 300; ++i) {
    const std::string channel = "billing:" + std::to_string(i);
    Result<OwnerDecision> decision = decideOwner(topology, down, "acme", channel);
    ASSERT_TRUE(decision);
    EXPECT_EQ(decision->source, OwnerSource::kRendezvous);
    EXPECT_EQ(decision->region, *rendezvousRegion(topology, down, ownershipKey("acme", channel)));
    owned[decision->region]++;
  }
  EXPECT_EQ(owned.size(), 2u);  // spread, not all on one region
  // Back up: the pin holds again.
  EXPECT_EQ(owner(topology, kAll, "acme", "billing:1"), "ap-south");
}

TEST(OwnershipTest, FailoverTarget) {
  const Topology topology = threeRegions();
  EXPECT_EQ(*failoverTarget(topology, kAll, "eu-west"), "eu-west");
  EXPECT_EQ(*failoverTarget(topology, {"us-east", "ap-south"}, "eu-west"), "us-east");
  EXPECT_EQ(*failoverTarget(topology, {"ap-south"}, "eu-west"), "ap-south");
  EXPECT_EQ(*failoverTarget(topology, {"us-east", "eu-west"}, "ap-south"), "eu-west");
  Result<std::string> none = failoverTarget(topology, {}, "eu-west");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.status().code(), Code::kUnavailable);
  EXPECT_STREQ(none.status().reason(), "no_healthy_failover");
  Result<std::string> unknown = failoverTarget(topology, kAll, "mars");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  EXPECT_STREQ(unknown.status().reason(), "unknown_region");
}

TEST(OwnershipTest, HomeRegionIgnoresPinsAndMoves) {
  const Topology plain = threeRegions();
  const Topology directed = threeRegions(kPinAndMove);
  // A user named like a pinned namespace or a moved channel is still hashed.
  for (const char* user : {"billing", "billing:hot", "chat:launch-day", "alice"}) {
    EXPECT_EQ(*homeRegion(directed, kAll, "acme", user), *homeRegion(plain, kAll, "acme", user));
    EXPECT_EQ(*homeRegion(directed, kAll, "acme", user),
              *rendezvousRegion(plain, kAll, ownershipKey("acme", user)));
  }
  EXPECT_EQ(*homeRegion(plain, kAll, "acme", "alice"), "eu-west");
  EXPECT_EQ(*homeRegion(plain, kAll, "acme", "bob"), "ap-south");
}

// ---- Geo mapping.

TEST(OwnershipGeoTest, SubnetsOfTheSampleTopology) {
  const Topology topology = threeRegions();
  EXPECT_EQ(regionForClient(topology, ip("10.10.3.4")), "us-east");
  EXPECT_EQ(regionForClient(topology, ip("203.0.113.5")), "eu-west");
  EXPECT_EQ(regionForClient(topology, ip("203.0.113.200")), "ap-south");
  EXPECT_EQ(regionForClient(topology, ip("::ffff:10.20.1.1")), "eu-west");
  EXPECT_EQ(regionForClient(topology, ip("2001:db8:30::1")), "ap-south");
  EXPECT_EQ(regionForClient(topology, ip("2001:db8:20:ffff::9")), "eu-west");
}

TEST(OwnershipGeoTest, NoMatchGoesToTheHeaviestRegion) {
  const Topology topology = threeRegions();
  EXPECT_EQ(regionForClient(topology, ip("8.8.8.8")), "us-east");
  EXPECT_EQ(regionForClient(topology, ip("2001:db8:40::1")), "us-east");
  // Among equals, the first in file order.
  Topology equal = weighted({5, 9, 9});
  EXPECT_EQ(regionForClient(equal, ip("192.0.2.1")), "r1");
  EXPECT_EQ(regionForClient(Topology{}, ip("192.0.2.1")), "");
}

TEST(OwnershipGeoTest, LongestPrefixWins) {
  // Built directly: a parsed topology refuses nested networks across regions, but the
  // lookup must not depend on that.
  Topology topology = weighted({100, 100, 100});
  auto add = [&](size_t region, const char* cidr) {
    ClientSubnet subnet;
    ASSERT_EQ(parseIpNetwork(cidr, &subnet.network), "") << cidr;
    subnet.text = cidr;
    topology.regions[region].client_subnets.push_back(subnet);
  };
  add(0, "10.0.0.0/8");
  add(1, "10.1.0.0/16");
  add(2, "10.1.2.0/24");
  add(0, "2001:db8::/32");
  add(2, "2001:db8:1:2::/64");
  add(1, "2001:db8:1::/48");
  EXPECT_EQ(regionForClient(topology, ip("10.9.9.9")), "r0");
  EXPECT_EQ(regionForClient(topology, ip("10.1.9.9")), "r1");
  EXPECT_EQ(regionForClient(topology, ip("10.1.2.9")), "r2");
  EXPECT_EQ(regionForClient(topology, ip("2001:db8:9::1")), "r0");
  EXPECT_EQ(regionForClient(topology, ip("2001:db8:1:9::1")), "r1");
  EXPECT_EQ(regionForClient(topology, ip("2001:db8:1:2::1")), "r2");
}

}  // namespace
}  // namespace wsfleet
