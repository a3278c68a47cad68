#include "edge/inbound_limits.h"

#include <gtest/gtest.h>

#include <string>

#include "common/metrics.h"
#include "edge/ip_guard.h"
#include "edge/lru_table.h"

namespace wsfleet {
namespace {

double metricValue(MetricsRegistry& r, const std::string& series) {
  const std::string text = r.renderPrometheus();
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// ---- LruTable

TEST(LruTableTest, EvictsTheLeastRecentlyUsedWhenFull) {
  LruTable<int> t(3);
  int evicted = -1;
  auto make = [] { return 0; };
  auto note = [&](int v) { evicted = v; };
  t.obtain("a", make, note) = 1;
  t.obtain("b", make, note) = 2;
  t.obtain("c", make, note) = 3;
  ASSERT_NE(t.find("a"), nullptr);  // a is now the most recent; b the least
  t.obtain("d", make, note) = 4;
  EXPECT_EQ(evicted, 2);
  EXPECT_EQ(t.find("b"), nullptr);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.evictions(), 1u);
  EXPECT_EQ(*t.peek("a"), 1);
}

TEST(LruTableTest, SweepDropsIdleEntriesFromTheOldEnd) {
  LruTable<int> t(10);
  auto make = [] { return 0; };
  auto none = [](int) {};
  for (const char* k : {"idle1", "idle2", "busy", "idle3"}) t.obtain(k, make, none);
  *t.peek("busy") = 1;
  // Oldest first: idle1, idle2 go; busy stops the sweep; idle3 (newer) stays for later.
  EXPECT_EQ(t.sweep([](int v) { return v == 0; }, 100), 2u);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_NE(t.peek("idle3"), nullptr);
  // The budget bounds the work of one sweep.
  for (int i = 0; i < 8; ++i) t.obtain("x" + std::to_string(i), make, none);
  *t.peek("busy") = 0;
  EXPECT_EQ(t.sweep([](int v) { return v == 0; }, 3), 3u);
}

// ---- InboundLimits

LimitsConfig smallLimits() {
  LimitsConfig c;
  c.commands_per_s = 10;
  c.commands_burst = 5;
  c.user_publishes_per_s = 2;
  c.user_publishes_burst = 3;
  c.channel_publishes_per_s = 4;
  c.channel_publishes_burst = 4;
  c.refusals_before_close = 3;
  c.refusal_window_ms = 3000;  // a strike back every second
  c.tracked_keys = 16;
  return c;
}

TEST(InboundLimitsTest, CommandsOverTheRateAreRefusedThenTheConnectionCloses) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  InboundLimits limits(config, registry);
  ConnectionLimits conn;
  limits.attach(conn, 0);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(limits.onCommand(conn, 0).allowed) << i;
  LimitVerdict v = limits.onCommand(conn, 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_FALSE(v.close);
  EXPECT_STREQ(v.reason, "command_rate");
  EXPECT_EQ(v.retry_after_ms, 100);
  EXPECT_EQ(retryAfterSeconds(v), 1);
  EXPECT_TRUE(limits.onCommand(conn, 100).allowed);  // refilled
  EXPECT_FALSE(limits.onCommand(conn, 100).close);   // 2nd strike
  EXPECT_FALSE(limits.onCommand(conn, 100).close);   // 3rd strike
  v = limits.onCommand(conn, 100);                   // 4th: more than 3 in the window
  EXPECT_FALSE(v.allowed);
  EXPECT_TRUE(v.close);
  EXPECT_EQ(metricValue(registry, "wsfleet_rate_limited_total{scope=\"connection\"}"), 4);
}

TEST(InboundLimitsTest, OccasionalRefusalsNeverClose) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  InboundLimits limits(config, registry);
  ConnectionLimits conn;
  limits.attach(conn, 0);
  int64_t now = 0;
  // One refusal a second is within the window's allowance (3 per 3 s): never a close.
  for (int round = 0; round < 20; ++round, now += 1000) {
    int refused = 0;
    for (int i = 0; i < 20; ++i) {
      LimitVerdict v = limits.onCommand(conn, now);
      ASSERT_FALSE(v.close) << round;
      if (!v.allowed) {
        ++refused;
        break;  // a polite client backs off at the first refusal
      }
    }
    EXPECT_EQ(refused, 1);
  }
}

TEST(InboundLimitsTest, ZeroDisables) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  config.commands_per_s = 0;
  config.user_publishes_per_s = 0;
  config.channel_publishes_per_s = 0;
  InboundLimits limits(config, registry);
  ConnectionLimits conn;
  limits.attach(conn, 0);
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(limits.onCommand(conn, 0).allowed);
    ASSERT_TRUE(limits.onClientPublish(conn, "t", "u", "chat:x", 0).allowed);
    ASSERT_TRUE(limits.onApiPublish("t", "chat:x", 0).allowed);
  }
  EXPECT_EQ(limits.userEntries(), 0u);
  EXPECT_EQ(limits.channelEntries(), 0u);
}

TEST(InboundLimitsTest, NoCloseWhenRefusalsBeforeCloseIsZero) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  config.refusals_before_close = 0;
  InboundLimits limits(config, registry);
  ConnectionLimits conn;
  limits.attach(conn, 0);
  for (int i = 0; i < 1000; ++i) ASSERT_FALSE(limits.onCommand(conn, 0).close);
}

TEST(InboundLimitsTest, UserLimitSpansConnectionsAndTenants) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  config.channel_publishes_per_s = 0;
  InboundLimits limits(config, registry);
  ConnectionLimits a, b, other;
  limits.attach(a, 0);
  limits.attach(b, 0);
  limits.attach(other, 0);
  EXPECT_TRUE(limits.onClientPublish(a, "t", "alice", "chat:1", 0).allowed);
  EXPECT_TRUE(limits.onClientPublish(b, "t", "alice", "chat:2", 0).allowed);
  EXPECT_TRUE(limits.onClientPublish(a, "t", "alice", "chat:3", 0).allowed);
  LimitVerdict v = limits.onClientPublish(b, "t", "alice", "chat:4", 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_STREQ(v.reason, "user_publish_rate");
  EXPECT_EQ(v.retry_after_ms, 500);
  // Same user name in another tenant, another user in the same tenant: own buckets.
  EXPECT_TRUE(limits.onClientPublish(other, "t2", "alice", "chat:1", 0).allowed);
  EXPECT_TRUE(limits.onClientPublish(other, "t", "bob", "chat:1", 0).allowed);
  EXPECT_TRUE(limits.onClientPublish(a, "t", "alice", "chat:1", 500).allowed);
  EXPECT_EQ(metricValue(registry, "wsfleet_rate_limited_total{scope=\"user\"}"), 1);
}

TEST(InboundLimitsTest, ChannelLimitSharedWithTheApiAndRefusalCostsTheUserNothing) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  config.user_publishes_burst = 10;
  InboundLimits limits(config, registry);
  ConnectionLimits conn;
  limits.attach(conn, 0);
  EXPECT_TRUE(limits.onApiPublish("t", "chat:hot", 0).allowed);
  EXPECT_TRUE(limits.onApiPublish("t", "chat:hot", 0).allowed);
  EXPECT_TRUE(limits.onClientPublish(conn, "t", "u", "chat:hot", 0).allowed);
  EXPECT_TRUE(limits.onClientPublish(conn, "t", "u", "chat:hot", 0).allowed);
  LimitVerdict v = limits.onApiPublish("t", "chat:hot", 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_FALSE(v.close);  // no connection to close
  EXPECT_STREQ(v.reason, "channel_publish_rate");
  EXPECT_EQ(v.retry_after_ms, 250);
  for (int i = 0; i < 3; ++i) {
    EXPECT_STREQ(limits.onClientPublish(conn, "t", "u", "chat:hot", 0).reason,
                 "channel_publish_rate");
  }
  EXPECT_TRUE(limits.onApiPublish("t2", "chat:hot", 0).allowed);  // another tenant's channel
  // The user spent 2 of 10: 8 other-channel publishes still pass.
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(limits.onClientPublish(conn, "t", "u", "chat:c" + std::to_string(i), 0).allowed)
        << i;
  }
  EXPECT_FALSE(limits.onClientPublish(conn, "t", "u", "chat:cold", 0).allowed);
  EXPECT_EQ(metricValue(registry, "wsfleet_rate_limited_total{scope=\"channel\"}"), 4);
}

TEST(InboundLimitsTest, TablesStayBoundedAndIdleEntriesAreSwept) {
  MetricsRegistry registry;
  LimitsConfig config = smallLimits();
  InboundLimits limits(config, registry);
  ConnectionLimits conn;
  limits.attach(conn, 0);
  for (int i = 0; i < 100; ++i) {
    limits.onClientPublish(conn, "t", "u" + std::to_string(i), "chat:" + std::to_string(i), 0);
    ASSERT_LE(limits.userEntries(), 16u);
    ASSERT_LE(limits.channelEntries(), 16u);
  }
  EXPECT_EQ(metricValue(registry, "wsfleet_limiter_evictions_total{table=\"user\"}"), 84);
  EXPECT_EQ(metricValue(registry, "wsfleet_limiter_evictions_total{table=\"channel\"}"), 84);
  limits.sweep(100);  // not refilled yet: nothing is idle
  EXPECT_EQ(limits.userEntries(), 16u);
  limits.sweep(10000);
  EXPECT_EQ(limits.userEntries(), 0u);
  EXPECT_EQ(limits.channelEntries(), 0u);
  EXPECT_EQ(metricValue(registry, "wsfleet_limiter_entries{table=\"user\"}"), 0);
}

// ---- IpGuard

LimitsConfig guardLimits() {
  LimitsConfig c;
  c.handshakes_per_ip_per_s = 2;
  c.handshakes_per_ip_burst = 3;
  c.auth_failures_threshold = 4;
  c.auth_failures_decay_per_s = 1;
  c.ban_s = 10;
  c.tracked_keys = 8;
  return c;
}

TEST(IpGuardTest, HandshakeRatePerAddress) {
  MetricsRegistry registry;
  LimitsConfig config = guardLimits();
  IpGuard guard(config, registry);
  for (int i = 0; i < 3; ++i) ASSERT_EQ(guard.admit("10.0.0.1", 0).reason, nullptr);
  IpVerdict v = guard.admit("10.0.0.1", 0);
  EXPECT_STREQ(v.reason, "rate_limited");
  EXPECT_EQ(v.retry_after_s, 1);
  EXPECT_EQ(guard.admit("10.0.0.2", 0).reason, nullptr);  // another address
  EXPECT_EQ(guard.admit("10.0.0.1", 500).reason, nullptr);
  EXPECT_EQ(metricValue(registry, "wsfleet_rate_limited_total{scope=\"handshake\"}"), 1);
}

TEST(IpGuardTest, RepeatedFailuresBanAndTheBanEnds) {
  MetricsRegistry registry;
  LimitsConfig config = guardLimits();
  config.handshakes_per_ip_per_s = 0;  // only the failure score here
  IpGuard guard(config, registry);
  for (int i = 0; i < 4; ++i) {
    ASSERT_EQ(guard.admit("10.0.0.1", 0).reason, nullptr);
    guard.authFailed("10.0.0.1", 0);
  }
  EXPECT_EQ(guard.activeBans(), 0u);  // the threshold itself is tolerated
  guard.authFailed("10.0.0.1", 0);
  EXPECT_EQ(guard.activeBans(), 1u);
  IpVerdict v = guard.admit("10.0.0.1", 2500);
  EXPECT_STREQ(v.reason, "banned");
  EXPECT_EQ(v.retry_after_s, 8);  // 7.5 s left, rounded up
  EXPECT_EQ(guard.admit("10.0.0.2", 2500).reason, nullptr);
  EXPECT_EQ(metricValue(registry, "wsfleet_ip_bans_active"), 1);
  EXPECT_EQ(metricValue(registry, "wsfleet_ip_bans_total"), 1);
  guard.sweep(9999);
  EXPECT_EQ(guard.activeBans(), 1u);
  guard.sweep(10000);
  EXPECT_EQ(guard.activeBans(), 0u);
  EXPECT_EQ(metricValue(registry, "wsfleet_ip_bans_active"), 0);
  EXPECT_EQ(guard.admit("10.0.0.1", 10000).reason, nullptr);
  // It starts over with a clean score.
  for (int i = 0; i < 4; ++i) guard.authFailed("10.0.0.1", 10000);
  EXPECT_EQ(guard.activeBans(), 0u);
}

TEST(IpGuardTest, FailuresDecay) {
  MetricsRegistry registry;
  LimitsConfig config = guardLimits();
  IpGuard guard(config, registry);
  // One failure a second is forgiven as fast as it comes: never a ban.
  for (int64_t t = 0; t < 60000; t += 1000) guard.authFailed("::1", t);
  EXPECT_EQ(guard.activeBans(), 0u);
  // Five at once are not.
  for (int i = 0; i < 5; ++i) guard.authFailed("::1", 60000);
  EXPECT_EQ(guard.activeBans(), 1u);
  // A ban seen expired by admit() is lifted there; the sweep then skips it.
  EXPECT_EQ(guard.admit("::1", 70000).reason, nullptr);
  EXPECT_EQ(guard.activeBans(), 0u);
  guard.sweep(70000);
  EXPECT_EQ(metricValue(registry, "wsfleet_ip_bans_active"), 0);
}

TEST(IpGuardTest, ExemptAddressesAreNeverLimited) {
  MetricsRegistry registry;
  LimitsConfig config = guardLimits();
  IpNetwork lan;
  ASSERT_EQ(parseIpNetwork("192.168.0.0/16", &lan), "");
  config.exempt_ips.push_back(lan);
  IpGuard guard(config, registry);
  for (int i = 0; i < 100; ++i) {
    ASSERT_EQ(guard.admit("192.168.3.4", 0).reason, nullptr);
    guard.authFailed("192.168.3.4", 0);
  }
  EXPECT_EQ(guard.activeBans(), 0u);
  EXPECT_EQ(guard.entries(), 0u);
}

TEST(IpGuardTest, TableBoundedEvenUnderManyAddresses) {
  MetricsRegistry registry;
  LimitsConfig config = guardLimits();
  IpGuard guard(config, registry);
  for (int i = 0; i < 5; ++i) guard.authFailed("10.9.9.9", 0);
  ASSERT_EQ(guard.activeBans(), 1u);
  for (int i = 0; i < 100; ++i) {
    guard.admit("10.0." + std::to_string(i / 256) + "." + std::to_string(i % 256), 0);
    ASSERT_LE(guard.entries(), 8u);
  }
  // The banned address was the least recently used: evicted, and the gauge follows.
  EXPECT_EQ(guard.activeBans(), 0u);
  EXPECT_EQ(metricValue(registry, "wsfleet_ip_bans_active"), 0);
  EXPECT_EQ(metricValue(registry, "wsfleet_limiter_evictions_total{table=\"ip\"}"), 93);
  guard.sweep(0);  // the ban's end is skipped: its entry is gone
  guard.sweep(100000);
  EXPECT_EQ(guard.entries(), 0u);
}

}  // namespace
}  // namespace wsfleet
