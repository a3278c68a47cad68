// The hub's routing tables and the per-connection channel index they keep in step: every
// connection's ChannelSlots entry must point at its own place in the channel's subscriber
// vector after any sequence of subscribes and unsubscribes (swap-removal moves others).
#include "edge/hub.h"

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

std::unique_ptr<Connection> makeConnection(const std::string& tenant, const std::string& user) {
  auto conn = std::make_unique<Connection>();
  conn->tenant = tenant;
  conn->user = user;
  return conn;
}

// Every index a connection holds points back at it; every subscriber holds the channel.
void expectConsistent(const Hub& hub, const std::vector<std::unique_ptr<Connection>>& conns,
                      const std::vector<std::string>& channels) {
  size_t total = 0;
  for (const auto& conn : conns) {
    for (const auto& [channel, index] : conn->channels) {
      const auto& subscribers = hub.subscribers(conn->tenant, channel);
      ASSERT_LT(index, subscribers.size()) << channel;
      EXPECT_EQ(subscribers[index], conn.get()) << channel;
      ++total;
    }
  }
  size_t listed = 0;
  for (const std::string& channel : channels) {
    for (Connection* conn : hub.subscribers("t", channel)) {
      EXPECT_EQ(conn->channels.count(channel), 1u);
      ++listed;
    }
  }
  EXPECT_EQ(total, listed);
  EXPECT_EQ(total, hub.subscriptionCount());
}

TEST(ChannelSlotsTest, SetFindAndEraseKeepTheOthers) {
  ChannelSlots slots;
  EXPECT_EQ(slots.count("a"), 0u);
  slots.set("a", 1);
  slots.set("b", 2);
  slots.set("c", 3);
  slots.set("b", 7);  // an update, not a second entry
  EXPECT_EQ(slots.size(), 3u);
  EXPECT_EQ(slots.find("b")->second, 7u);
  slots.erase(slots.find("a"));
  EXPECT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots.count("a"), 0u);
  EXPECT_EQ(slots.find("c")->second, 3u);
  EXPECT_EQ(slots.find("b")->second, 7u);
  slots.erase(slots.find("c"));
  slots.erase(slots.find("b"));
  EXPECT_TRUE(slots.empty());
  EXPECT_EQ(slots.find("b"), slots.end());
}

TEST(ChannelSetTest, InsertIsIdempotentAndEraseCounts) {
  ChannelSet set;
  set.insert("x");
  set.insert("x");
  set.insert("y");
  EXPECT_EQ(set.size(), 2u);
  EXPECT_EQ(set.erase("x"), 1u);
  EXPECT_EQ(set.erase("x"), 0u);
  EXPECT_EQ(set.count("y"), 1u);
  EXPECT_EQ(set.erase("y"), 1u);
  EXPECT_EQ(set.size(), 0u);
}

TEST(HubTest, FirstAndLastOfUserAcrossConnections) {
  Hub hub;
  auto a1 = makeConnection("t", "alice");
  auto a2 = makeConnection("t", "alice");
  EXPECT_TRUE(hub.subscribe(a1.get(), "room").first_of_user);
  EXPECT_FALSE(hub.subscribe(a2.get(), "room").first_of_user);
  EXPECT_FALSE(hub.subscribe(a2.get(), "room").added);
  EXPECT_FALSE(hub.unsubscribe(a1.get(), "room").last_of_user);
  EXPECT_TRUE(hub.unsubscribe(a2.get(), "room").last_of_user);
  EXPECT_FALSE(hub.unsubscribe(a2.get(), "room").removed);
  EXPECT_EQ(hub.channelCount(), 0u);
}

TEST(HubTest, IndexesStayConsistentUnderRandomChurn) {
  Hub hub;
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < 40; ++i) conns.push_back(makeConnection("t", "u" + std::to_string(i % 7)));
  std::vector<std::string> channels;
  for (int i = 0; i < 6; ++i) channels.push_back("c" + std::to_string(i));
  std::mt19937 rng(11);
  for (int step = 0; step < 20000; ++step) {
    Connection* conn = conns[rng() % conns.size()].get();
    const std::string& channel = channels[rng() % channels.size()];
    if (rng() % 2 == 0) {
      hub.subscribe(conn, channel);
    } else {
      hub.unsubscribe(conn, channel);
    }
    if (step % 997 == 0) expectConsistent(hub, conns, channels);
  }
  expectConsistent(hub, conns, channels);
}

}  // namespace
}  // namespace wsfleet
