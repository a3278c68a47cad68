// Two or three buses of one "host" in one process, on one real libev loop, over real
// abstract Unix sockets.
#include "edge/host_bus.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/random.h"

namespace wsfleet {
namespace {

struct Node {
  std::unique_ptr<HostBus> bus;
  std::vector<std::string> received;
  std::map<std::string, int> drops;
};

class HostBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    loop_ = ev_loop_new(EVBACKEND_EPOLL);
    scope_ = "test-" + std::to_string(getpid()) + "-" + randomHex(4);
  }
  void TearDown() override {
    nodes_.clear();
    ev_loop_destroy(loop_);
  }

  Status open(int index, int count, size_t max_buffered = 16u << 20) {
    auto& node = nodes_[index];
    node = std::make_unique<Node>();
    HostBus::Options options;
    options.scope = scope_;
    options.index = index;
    options.count = count;
    options.max_buffered_bytes = max_buffered;
    Node* raw = node.get();
    auto bus = HostBus::open(
        loop_, options, [raw](std::string_view m) { raw->received.emplace_back(m); },
        [raw](const char* reason) { ++raw->drops[reason]; });
    if (!bus.isOk()) return bus.status();
    node->bus = std::move(*bus);
    return Status::ok();
  }

  // Runs the loop until `done` or a deadline (no sleeps: the loop waits for events).
  bool runUntil(const std::function<bool()>& done, int64_t timeout_ms = 5000) {
    const int64_t deadline = nowMonoMs() + timeout_ms;
    while (!done()) {
      if (nowMonoMs() > deadline) return false;
      ev_run(loop_, EVRUN_NOWAIT);
    }
    return true;
  }

  struct ev_loop* loop_ = nullptr;
  std::string scope_;
  std::map<int, std::unique_ptr<Node>> nodes_;
};

TEST_F(HostBusTest, BroadcastReachesEverySiblingInOrder) {
  ASSERT_TRUE(open(0, 3).isOk());
  ASSERT_TRUE(open(1, 3).isOk());
  ASSERT_TRUE(open(2, 3).isOk());
  for (int i = 0; i < 1000; ++i) nodes_[0]->bus->broadcast("m" + std::to_string(i));
  ASSERT_TRUE(runUntil([&] {
    return nodes_[1]->received.size() == 1000 && nodes_[2]->received.size() == 1000;
  }));
  for (int i = 0; i < 1000; ++i) {
    EXPECT_EQ(nodes_[1]->received[i], "m" + std::to_string(i));
    EXPECT_EQ(nodes_[2]->received[i], "m" + std::to_string(i));
  }
  EXPECT_TRUE(nodes_[0]->received.empty());  // never to itself
  EXPECT_TRUE(nodes_[0]->drops.empty());
}

TEST_F(HostBusTest, LargeMessagesArriveWhole) {
  ASSERT_TRUE(open(0, 2).isOk());
  ASSERT_TRUE(open(1, 2).isOk());
  const std::string big(3 << 20, 'x');
  nodes_[0]->bus->broadcast(big);
  nodes_[0]->bus->broadcast("after");
  ASSERT_TRUE(runUntil([&] { return nodes_[1]->received.size() == 2; }));
  EXPECT_EQ(nodes_[1]->received[0], big);
  EXPECT_EQ(nodes_[1]->received[1], "after");
}

TEST_F(HostBusTest, AbsentSiblingIsCountedAndReachedOnceItListens) {
  ASSERT_TRUE(open(0, 2).isOk());
  nodes_[0]->bus->broadcast("lost");
  EXPECT_EQ(nodes_[0]->drops["bus_peer_down"], 1);
  ASSERT_TRUE(open(1, 2).isOk());
  // Reconnects are rate limited: keep sending until one gets through.
  ASSERT_TRUE(runUntil([&] {
    nodes_[0]->bus->broadcast("hello");
    ev_run(loop_, EVRUN_NOWAIT);
    return !nodes_[1]->received.empty();
  }));
  EXPECT_EQ(nodes_[1]->received.front(), "hello");
}

TEST_F(HostBusTest, SiblingThatDoesNotReadFillsItsBoundedBufferThenDrops) {
  ASSERT_TRUE(open(0, 2, /*max_buffered=*/1 << 20).isOk());
  ASSERT_TRUE(open(1, 2).isOk());
  // Never run the loop: sibling 1 reads nothing, the kernel buffers fill, then ours.
  const std::string chunk(64 * 1024, 'y');
  for (int i = 0; i < 400; ++i) nodes_[0]->bus->broadcast(chunk);
  EXPECT_GT(nodes_[0]->drops["bus_peer_full"], 0);
  EXPECT_LE(nodes_[0]->bus->bufferedBytes(), size_t{1} << 20);
  // What was accepted is delivered complete and in order once the sibling reads.
  ASSERT_TRUE(runUntil([&] { return nodes_[0]->bus->bufferedBytes() == 0; }));
  ASSERT_TRUE(runUntil([&] {
    return nodes_[1]->received.size() ==
           static_cast<size_t>(400 - nodes_[0]->drops["bus_peer_full"]);
  }));
  for (const auto& m : nodes_[1]->received) EXPECT_EQ(m, chunk);
}

TEST_F(HostBusTest, RestartedSiblingIsReconnected) {
  ASSERT_TRUE(open(0, 2).isOk());
  ASSERT_TRUE(open(1, 2).isOk());
  nodes_[0]->bus->broadcast("one");
  ASSERT_TRUE(runUntil([&] { return nodes_[1]->received.size() == 1; }));
  nodes_.erase(1);  // the sibling dies
  ASSERT_TRUE(open(1, 2).isOk());
  ASSERT_TRUE(runUntil([&] {
    nodes_[0]->bus->broadcast("two");
    ev_run(loop_, EVRUN_NOWAIT);
    return !nodes_[1]->received.empty();
  }));
  EXPECT_EQ(nodes_[1]->received.front(), "two");
}

TEST_F(HostBusTest, FirstMessageAfterAQuietRestartIsDelivered) {
  ASSERT_TRUE(open(0, 2).isOk());
  ASSERT_TRUE(open(1, 2).isOk());
  nodes_[0]->bus->broadcast("one");
  ASSERT_TRUE(runUntil([&] { return nodes_[1]->received.size() == 1; }));
  // The sibling dies and comes back while nothing is sent: the old link must not take
  // (and lose) the next message.
  nodes_.erase(1);
  ASSERT_TRUE(runUntil([&] { return nodes_[0]->bus->connectedPeers() == 0; }));
  ASSERT_TRUE(open(1, 2).isOk());
  ev_run(loop_, EVRUN_NOWAIT);  // node 0 accepts the restarted sibling's link
  nodes_[0]->bus->broadcast("two");
  ASSERT_TRUE(runUntil([&] { return !nodes_[1]->received.empty(); }));
  EXPECT_EQ(nodes_[1]->received.front(), "two");
  EXPECT_TRUE(nodes_[0]->drops.empty());
}

TEST_F(HostBusTest, SiblingRestartedAfterAFailedReconnectIsReachedAtOnce) {
  ASSERT_TRUE(open(0, 2).isOk());
  nodes_[0]->bus->broadcast("lost");  // sibling absent: the reconnect interval starts
  EXPECT_EQ(nodes_[0]->drops["bus_peer_down"], 1);
  // It starts: its own connect to node 0 ends node 0's wait for the interval.
  ASSERT_TRUE(open(1, 2).isOk());
  ev_run(loop_, EVRUN_NOWAIT);  // node 0 accepts its link
  nodes_[0]->bus->broadcast("hello");
  ASSERT_TRUE(runUntil([&] { return !nodes_[1]->received.empty(); }));
  EXPECT_EQ(nodes_[1]->received.front(), "hello");
  EXPECT_EQ(nodes_[0]->drops["bus_peer_down"], 1);
}

TEST_F(HostBusTest, SecondWorkerWithTheSameIndexIsRefused) {
  ASSERT_TRUE(open(0, 2).isOk());
  auto node = std::make_unique<Node>();
  HostBus::Options options;
  options.scope = scope_;
  options.index = 0;
  options.count = 2;
  auto bus = HostBus::open(loop_, options, [](std::string_view) {}, [](const char*) {});
  EXPECT_FALSE(bus.isOk());
  EXPECT_STREQ(bus.status().reason(), "host_bus_listen");
}

TEST(HostBusScopeTest, DependsOnStorageAndPort) {
  EXPECT_EQ(hostBusScope("/var/lib/wsfleet", 443), hostBusScope("/var/lib/wsfleet", 443));
  EXPECT_NE(hostBusScope("/var/lib/wsfleet", 443), hostBusScope("/var/lib/wsfleet", 8443));
  EXPECT_NE(hostBusScope("/var/lib/a", 443), hostBusScope("/var/lib/b", 443));
}

}  // namespace
}  // namespace wsfleet
