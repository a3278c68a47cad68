#include "edge/presence_store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

LmdbOptions smallOptions(size_t map_size) {
  LmdbOptions options;
  options.map_size_bytes = map_size;
  return options;
}

PresenceConnection conn(const std::string& id, const std::string& tenant, const std::string& user,
                        const std::string& device = "web") {
  PresenceConnection c;
  c.conn_id = id;
  c.tenant = tenant;
  c.user = user;
  c.device = device;
  c.connected_at_ms = 1764300000123;
  return c;
}

using Members = std::vector<std::pair<std::string, uint64_t>>;

Members members(PresenceStore& store, const std::string& tenant, const std::string& channel) {
  auto result = store.channelMembers(tenant, channel);
  EXPECT_TRUE(result.isOk()) << result.status().toString();
  Members out;
  if (!result.isOk()) return out;
  for (const PresenceMember& m : *result) out.emplace_back(m.user, m.connections);
  return out;
}

std::vector<std::string> connIds(PresenceStore& store, const std::string& tenant,
                                 const std::string& user) {
  auto result = store.userConnections(tenant, user);
  EXPECT_TRUE(result.isOk()) << result.status().toString();
  std::vector<std::string> out;
  if (!result.isOk()) return out;
  for (const PresenceConnection& c : *result) out.push_back(c.conn_id);
  return out;
}

class PresenceStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = LmdbEnv::open(tmp_.path(), smallOptions(4u << 20));
    ASSERT_TRUE(env.isOk()) << env.status().toString();
    env_ = std::move(env).value();
    auto store = PresenceStore::open(env_, "worker-a", 1000);
    ASSERT_TRUE(store.isOk()) << store.status().toString();
    a_ = std::move(store).value();
  }

  std::unique_ptr<PresenceStore> openStore(const std::string& instance, int64_t now) {
    auto store = PresenceStore::open(env_, instance, now);
    EXPECT_TRUE(store.isOk()) << store.status().toString();
    return store.isOk() ? std::move(store).value() : nullptr;
  }

  TempDir tmp_;
  LmdbEnv env_;
  std::unique_ptr<PresenceStore> a_;
};

TEST_F(PresenceStoreTest, MembersCountConnectionsPerUserSortedByUser) {
  a_->addConnection(conn("c1", "t1", "bob", "phone"));
  a_->addConnection(conn("c2", "t1", "bob", "laptop"));
  a_->addConnection(conn("c3", "t1", "bo"));
  a_->addConnection(conn("c4", "t1", "alice"));
  a_->addConnection(conn("c5", "t1", "bobby"));
  for (const char* id : {"c1", "c2"}) a_->joinChannel(id, "t1", "room", "bob");
  a_->joinChannel("c3", "t1", "room", "bo");
  a_->joinChannel("c4", "t1", "room", "alice");
  a_->joinChannel("c5", "t1", "room", "bobby");
  EXPECT_EQ(a_->pendingOps(), 10u);

  EXPECT_EQ(members(*a_, "t1", "room"),
            (Members{{"alice", 1}, {"bo", 1}, {"bob", 2}, {"bobby", 1}}));
  EXPECT_EQ(a_->pendingOps(), 0u);  // the query flushed first

  auto bob = a_->userConnections("t1", "bob");
  ASSERT_TRUE(bob.isOk());
  ASSERT_EQ(bob->size(), 2u);
  EXPECT_EQ((*bob)[0].conn_id, "c1");
  EXPECT_EQ((*bob)[0].device, "phone");
  EXPECT_EQ((*bob)[0].tenant, "t1");
  EXPECT_EQ((*bob)[0].user, "bob");
  EXPECT_EQ((*bob)[0].connected_at_ms, 1764300000123);
  EXPECT_EQ((*bob)[1].device, "laptop");

  // Scoped per tenant and per channel.
  EXPECT_TRUE(members(*a_, "t2", "room").empty());
  EXPECT_TRUE(members(*a_, "t1", "roo").empty());
  EXPECT_TRUE(connIds(*a_, "t2", "bob").empty());
}

TEST_F(PresenceStoreTest, LeaveAndRemove) {
  a_->addConnection(conn("c1", "t1", "bob"));
  a_->addConnection(conn("c2", "t1", "bob"));
  a_->addConnection(conn("c3", "t1", "carol"));
  a_->joinChannel("c1", "t1", "room", "bob");
  a_->joinChannel("c1", "t1", "lobby", "bob");
  a_->joinChannel("c2", "t1", "room", "bob");
  a_->joinChannel("c3", "t1", "room", "carol");
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"bob", 2}, {"carol", 1}}));

  a_->leaveChannel("c2", "t1", "room", "bob");
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"bob", 1}, {"carol", 1}}));
  EXPECT_EQ(connIds(*a_, "t1", "bob"), (std::vector<std::string>{"c1", "c2"}));

  // Removing a connection drops every membership it had.
  a_->removeConnection("c1");
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"carol", 1}}));
  EXPECT_TRUE(members(*a_, "t1", "lobby").empty());
  EXPECT_EQ(connIds(*a_, "t1", "bob"), (std::vector<std::string>{"c2"}));

  // Unknown connections and memberships are no-ops, not errors.
  a_->removeConnection("nope");
  a_->leaveChannel("c3", "t1", "lobby", "carol");
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"carol", 1}}));
}

TEST_F(PresenceStoreTest, OpsApplyInOrderWithinABatch) {
  a_->addConnection(conn("c1", "t1", "bob"));
  a_->joinChannel("c1", "t1", "room", "bob");
  a_->removeConnection("c1");
  a_->addConnection(conn("c1", "t1", "bob"));
  a_->joinChannel("c1", "t1", "lobby", "bob");
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_TRUE(members(*a_, "t1", "room").empty());
  EXPECT_EQ(members(*a_, "t1", "lobby"), (Members{{"bob", 1}}));
  EXPECT_EQ(connIds(*a_, "t1", "bob"), (std::vector<std::string>{"c1"}));
}

TEST_F(PresenceStoreTest, ReAddReplacesTheUserIndex) {
  a_->addConnection(conn("c1", "t1", "bob"));
  ASSERT_TRUE(a_->flush().isOk());
  a_->addConnection(conn("c1", "t1", "carol"));
  EXPECT_TRUE(connIds(*a_, "t1", "bob").empty());
  EXPECT_EQ(connIds(*a_, "t1", "carol"), (std::vector<std::string>{"c1"}));
}

TEST_F(PresenceStoreTest, BufferedOpsInvisibleToOtherWorkersUntilFlush) {
  auto b = openStore("worker-b", 1000);
  ASSERT_NE(b, nullptr);
  a_->addConnection(conn("c1", "t1", "bob"));
  a_->joinChannel("c1", "t1", "room", "bob");
  EXPECT_EQ(a_->pendingOps(), 2u);
  EXPECT_TRUE(members(*b, "t1", "room").empty());
  EXPECT_TRUE(connIds(*b, "t1", "bob").empty());

  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(a_->pendingOps(), 0u);
  EXPECT_EQ(members(*b, "t1", "room"), (Members{{"bob", 1}}));
  EXPECT_EQ(connIds(*b, "t1", "bob"), (std::vector<std::string>{"c1"}));

  // Both workers' connections add up.
  b->addConnection(conn("c2", "t1", "bob"));
  b->joinChannel("c2", "t1", "room", "bob");
  ASSERT_TRUE(b->flush().isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"bob", 2}}));
  EXPECT_EQ(b->instanceId(), "worker-b");
}

TEST_F(PresenceStoreTest, SweepRemovesStaleInstancesButNeverItsOwn) {
  const int64_t ttl = 30000;
  auto b = openStore("worker-b", 1000);
  ASSERT_NE(b, nullptr);
  a_->addConnection(conn("a1", "t1", "alice"));
  a_->joinChannel("a1", "t1", "room", "alice");
  b->addConnection(conn("b1", "t1", "bob"));
  b->addConnection(conn("b2", "t1", "bob"));
  b->joinChannel("b1", "t1", "room", "bob");
  b->joinChannel("b2", "t1", "lobby", "bob");
  ASSERT_TRUE(a_->flush().isOk());
  ASSERT_TRUE(b->flush().isOk());

  // b heartbeats; within the TTL nothing is swept.
  ASSERT_TRUE(b->heartbeat(20000).isOk());
  auto stats = a_->sweep(20000 + ttl, ttl);
  ASSERT_TRUE(stats.isOk()) << stats.status().toString();
  EXPECT_EQ(stats->instances_removed, 0u);
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"alice", 1}, {"bob", 1}}));

  // b stops heartbeating. a's own heartbeat is just as old, but a never sweeps itself.
  stats = a_->sweep(20001 + ttl, ttl);
  ASSERT_TRUE(stats.isOk());
  EXPECT_EQ(stats->instances_removed, 1u);
  EXPECT_EQ(stats->connections_removed, 2u);
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"alice", 1}}));
  EXPECT_TRUE(members(*a_, "t1", "lobby").empty());
  EXPECT_TRUE(connIds(*a_, "t1", "bob").empty());
  EXPECT_EQ(connIds(*a_, "t1", "alice"), (std::vector<std::string>{"a1"}));

  // Sweeping again finds nothing.
  stats = a_->sweep(20001 + ttl, ttl);
  ASSERT_TRUE(stats.isOk());
  EXPECT_EQ(stats->instances_removed, 0u);

  // From b's side a is stale; b removes it.
  stats = b->sweep(20001 + ttl, ttl);
  ASSERT_TRUE(stats.isOk());
  EXPECT_EQ(stats->instances_removed, 1u);
  EXPECT_EQ(stats->connections_removed, 1u);
  EXPECT_TRUE(members(*b, "t1", "room").empty());
}

TEST_F(PresenceStoreTest, SweepRemovesAnInstanceWhosePidIsGone) {
  const int64_t now = 5000;
  ASSERT_TRUE(a_->heartbeat(now).isOk());
  // A worker process registers, publishes a connection and dies without saying goodbye.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A fresh environment: a forked child must not use the parent's LMDB handles.
    auto env = LmdbEnv::open(tmp_.path(), smallOptions(4u << 20));
    if (!env.isOk()) _exit(2);
    auto store = PresenceStore::open(*env, "worker-dead", now);
    if (!store.isOk()) _exit(3);
    (*store)->addConnection(conn("d1", "t1", "dave"));
    (*store)->joinChannel("d1", "t1", "room", "dave");
    if (!(*store)->flush().isOk()) _exit(4);
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"dave", 1}}));

  // Its heartbeat is fresh: only the pid check can find it.
  auto stats = a_->sweep(now, 60000);
  ASSERT_TRUE(stats.isOk()) << stats.status().toString();
  EXPECT_EQ(stats->instances_removed, 1u);
  EXPECT_EQ(stats->connections_removed, 1u);
  EXPECT_TRUE(members(*a_, "t1", "room").empty());
  EXPECT_TRUE(connIds(*a_, "t1", "dave").empty());
}

TEST(PresenceStoreMapFullTest, MapFullDiscardsTheBatchAndTheStoreKeepsWorking) {
  TempDir tmp;
  auto env = LmdbEnv::open(tmp.path(), smallOptions(128u << 10));
  ASSERT_TRUE(env.isOk()) << env.status().toString();
  auto opened = PresenceStore::open(*env, "worker-a", 1000);
  ASSERT_TRUE(opened.isOk()) << opened.status().toString();
  PresenceStore& store = **opened;

  store.addConnection(conn("c0", "t1", "zed"));
  store.joinChannel("c0", "t1", "room", "zed");
  ASSERT_TRUE(store.flush().isOk());

  // Far more than 128 KiB in one batch.
  for (int i = 1; i <= 3000; ++i) {
    const std::string id = "conn-" + std::to_string(i);
    store.addConnection(conn(id, "t1", "user-" + std::to_string(i), std::string(40, 'd')));
    store.joinChannel(id, "t1", "room", "user-" + std::to_string(i));
  }
  Status status = store.flush();
  ASSERT_FALSE(status.isOk());
  EXPECT_EQ(status.code(), Code::kUnavailable);
  EXPECT_STREQ(status.reason(), "lmdb_map_full");
  EXPECT_EQ(store.pendingOps(), 0u);
  // The lost batch is reported so the worker rewrites its records from live state.
  EXPECT_TRUE(store.needsResync());

  // Nothing of the batch was applied; earlier state is intact.
  EXPECT_EQ(members(store, "t1", "room"), (Members{{"zed", 1}}));
  // Small batches, heartbeats and sweeps still work.
  store.addConnection(conn("c1", "t1", "amy"));
  store.joinChannel("c1", "t1", "room", "amy");
  ASSERT_TRUE(store.flush().isOk());
  EXPECT_EQ(members(store, "t1", "room"), (Members{{"amy", 1}, {"zed", 1}}));
  EXPECT_TRUE(store.heartbeat(2000).isOk());
  EXPECT_TRUE(store.sweep(2000, 1000).isOk());
  PresenceStore::LiveConnection live{conn("c1", "t1", "amy"), {"room"}};
  ASSERT_TRUE(store.resync({live}, 2001).isOk());
  EXPECT_FALSE(store.needsResync());
}

}  // namespace
}  // namespace wsfleet

namespace wsfleet {
namespace {

// A worker paused past the TTL is swept by a sibling while its clients stay connected; its
// next heartbeat notices and a resync from its live state puts them back.
TEST_F(PresenceStoreTest, WorkerSweptWhileAliveIsResynced) {
  const int64_t ttl = 1000;
  auto b = openStore("worker-b", 10000);
  ASSERT_NE(b, nullptr);
  b->addConnection(conn("b1", "t1", "bob"));
  b->joinChannel("b1", "t1", "room", "bob");
  ASSERT_TRUE(b->flush().isOk());
  ASSERT_TRUE(a_->sweep(10001 + ttl, ttl).isOk());
  EXPECT_TRUE(members(*a_, "t1", "room").empty());

  auto swept = b->heartbeat(10002 + ttl);
  ASSERT_TRUE(swept.isOk());
  EXPECT_TRUE(*swept);
  PresenceStore::LiveConnection live{conn("b1", "t1", "bob"), {"room"}};
  ASSERT_TRUE(b->resync({live}, 10002 + ttl).isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"bob", 1}}));
  EXPECT_EQ(connIds(*a_, "t1", "bob"), (std::vector<std::string>{"b1"}));

  swept = b->heartbeat(10003 + ttl);
  ASSERT_TRUE(swept.isOk());
  EXPECT_FALSE(*swept);
}

// Resync replaces whatever this instance had, leaving other instances alone.
TEST_F(PresenceStoreTest, ResyncReplacesOnlyOwnRecords) {
  auto b = openStore("worker-b", 10000);
  ASSERT_NE(b, nullptr);
  a_->addConnection(conn("a1", "t1", "alice"));
  a_->joinChannel("a1", "t1", "room", "alice");
  a_->addConnection(conn("a2", "t1", "gone"));  // closed while a flush was failing
  a_->joinChannel("a2", "t1", "room", "gone");
  b->addConnection(conn("b1", "t1", "bob"));
  b->joinChannel("b1", "t1", "room", "bob");
  ASSERT_TRUE(a_->flush().isOk());
  ASSERT_TRUE(b->flush().isOk());
  EXPECT_FALSE(a_->needsResync());

  PresenceStore::LiveConnection live{conn("a1", "t1", "alice"), {"room"}};
  ASSERT_TRUE(a_->resync({live}, 10001).isOk());
  EXPECT_EQ(members(*b, "t1", "room"), (Members{{"alice", 1}, {"bob", 1}}));
  EXPECT_TRUE(connIds(*b, "t1", "gone").empty());
}

}  // namespace
}  // namespace wsfleet

namespace wsfleet {
namespace {

// Address keys are binary, NUL bytes included (as ipLimitKey makes them).
const std::string kAddrA("4\x7f\0\0\x01", 5);
const std::string kAddrB("4\x7f\0\0\x02", 5);

PresenceConnection from(const std::string& id, const std::string& user, const std::string& address,
                        const std::string& tenant = "t1") {
  PresenceConnection c = conn(id, tenant, user);
  c.address = address;
  return c;
}

uint64_t fromAddress(PresenceStore& store, const std::string& address) {
  auto n = store.connectionsFromAddress(address);
  EXPECT_TRUE(n.isOk()) << n.status().toString();
  return n.isOk() ? *n : ~uint64_t{0};
}

uint64_t ofUser(PresenceStore& store, const std::string& tenant, const std::string& user) {
  auto n = store.connectionsOfUser(tenant, user);
  EXPECT_TRUE(n.isOk()) << n.status().toString();
  return n.isOk() ? *n : ~uint64_t{0};
}

TEST_F(PresenceStoreTest, CountsIncludeThisWorkersBufferedChangesWithoutFlushing) {
  a_->addConnection(from("c1", "bob", kAddrA));
  a_->addConnection(from("c2", "carol", kAddrA));
  a_->addConnection(from("c3", "bob", kAddrB));
  EXPECT_EQ(fromAddress(*a_, kAddrA), 2u);
  EXPECT_EQ(fromAddress(*a_, kAddrB), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 2u);
  EXPECT_EQ(ofUser(*a_, "t2", "bob"), 0u);  // per tenant
  EXPECT_EQ(ofUser(*a_, "t1", "bo"), 0u);
  EXPECT_EQ(a_->pendingOps(), 3u);  // counting wrote nothing

  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 2u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 2u);

  // A removal with the connection's keys counts at once...
  a_->removeConnection(from("c1", "bob", kAddrA));
  EXPECT_EQ(fromAddress(*a_, kAddrA), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 1u);
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 1u);

  // ...one by id only from the next flush (the record knows its keys).
  a_->removeConnection(std::string("c2"));
  EXPECT_EQ(fromAddress(*a_, kAddrA), 1u);
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 0u);
  EXPECT_EQ(fromAddress(*a_, kAddrB), 1u);

  // An added-and-removed connection in one batch nets to zero, before and after flush.
  a_->addConnection(from("c4", "dora", kAddrB));
  a_->removeConnection(from("c4", "dora", kAddrB));
  EXPECT_EQ(fromAddress(*a_, kAddrB), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "dora"), 0u);
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrB), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "dora"), 0u);

  // No address: counted per user only.
  a_->addConnection(from("c5", "erin", ""));
  EXPECT_EQ(fromAddress(*a_, ""), 0u);
  EXPECT_EQ(ofUser(*a_, "t1", "erin"), 1u);
}

TEST_F(PresenceStoreTest, CountsAddUpAcrossWorkersOnceFlushed) {
  auto b = openStore("worker-b", 1000);
  ASSERT_NE(b, nullptr);
  a_->addConnection(from("a1", "bob", kAddrA));
  a_->addConnection(from("a2", "bob", kAddrA));
  ASSERT_TRUE(a_->flush().isOk());
  b->addConnection(from("b1", "bob", kAddrA));
  // b sees a's flushed records and its own buffered one; a does not see b's yet.
  EXPECT_EQ(fromAddress(*b, kAddrA), 3u);
  EXPECT_EQ(ofUser(*b, "t1", "bob"), 3u);
  EXPECT_EQ(fromAddress(*a_, kAddrA), 2u);
  ASSERT_TRUE(b->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 3u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 3u);

  // A removal buffered on one worker lowers only that worker's view until it flushes.
  b->removeConnection(from("b1", "bob", kAddrA));
  EXPECT_EQ(fromAddress(*b, kAddrA), 2u);
  EXPECT_EQ(fromAddress(*a_, kAddrA), 3u);
  ASSERT_TRUE(b->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 2u);
}

TEST_F(PresenceStoreTest, SweptWorkersConnectionsStopCounting) {
  const int64_t ttl = 30000;
  auto b = openStore("worker-b", 1000);
  ASSERT_NE(b, nullptr);
  a_->addConnection(from("a1", "bob", kAddrA));
  b->addConnection(from("b1", "bob", kAddrA));
  b->addConnection(from("b2", "bob", kAddrB));
  b->addConnection(from("b3", "carol", kAddrA));
  ASSERT_TRUE(a_->flush().isOk());
  ASSERT_TRUE(b->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 3u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 3u);

  // b stops heartbeating (it died without closing anything): a sweeps it.
  ASSERT_TRUE(a_->heartbeat(1000 + ttl).isOk());
  auto stats = a_->sweep(1001 + ttl, ttl);
  ASSERT_TRUE(stats.isOk()) << stats.status().toString();
  ASSERT_EQ(stats->connections_removed, 3u);
  EXPECT_EQ(fromAddress(*a_, kAddrA), 1u);
  EXPECT_EQ(fromAddress(*a_, kAddrB), 0u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "carol"), 0u);
}

TEST_F(PresenceStoreTest, DeadProcessesConnectionsStopCountingAfterTheSweep) {
  const int64_t now = 5000;
  ASSERT_TRUE(a_->heartbeat(now).isOk());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto env = LmdbEnv::open(tmp_.path(), smallOptions(4u << 20));
    if (!env.isOk()) _exit(2);
    auto store = PresenceStore::open(*env, "worker-dead", now);
    if (!store.isOk()) _exit(3);
    (*store)->addConnection(from("d1", "dave", kAddrA));
    (*store)->addConnection(from("d2", "dave", kAddrA));
    if (!(*store)->flush().isOk()) _exit(4);
    _exit(0);  // killed, as far as the store knows: nothing was removed
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0);
  EXPECT_EQ(fromAddress(*a_, kAddrA), 2u);
  EXPECT_EQ(ofUser(*a_, "t1", "dave"), 2u);

  auto stats = a_->sweep(now, 60000);  // the pid is gone
  ASSERT_TRUE(stats.isOk()) << stats.status().toString();
  EXPECT_EQ(stats->connections_removed, 2u);
  EXPECT_EQ(fromAddress(*a_, kAddrA), 0u);
  EXPECT_EQ(ofUser(*a_, "t1", "dave"), 0u);
}

TEST_F(PresenceStoreTest, ReAddAndResyncMoveTheCounts) {
  a_->addConnection(from("c1", "bob", kAddrA));
  ASSERT_TRUE(a_->flush().isOk());
  a_->addConnection(from("c1", "carol", kAddrB));  // the same id again, elsewhere
  ASSERT_TRUE(a_->flush().isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 0u);
  EXPECT_EQ(fromAddress(*a_, kAddrB), 1u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 0u);

  a_->addConnection(from("c2", "bob", kAddrA));  // buffered, then replaced by the resync
  PresenceStore::LiveConnection live{from("c3", "dora", kAddrA), {}};
  ASSERT_TRUE(a_->resync({live}, 2000).isOk());
  EXPECT_EQ(fromAddress(*a_, kAddrA), 1u);
  EXPECT_EQ(fromAddress(*a_, kAddrB), 0u);
  EXPECT_EQ(ofUser(*a_, "t1", "bob"), 0u);
  EXPECT_EQ(ofUser(*a_, "t1", "dora"), 1u);
  // The address survives the round trip through the record.
  auto dora = a_->userConnections("t1", "dora");
  ASSERT_TRUE(dora.isOk());
  ASSERT_EQ(dora->size(), 1u);
  EXPECT_EQ((*dora)[0].address, kAddrA);
}

PresenceOp op(PresenceOp::Kind kind, const std::string& id, const std::string& user,
              const std::string& channel = "") {
  PresenceOp o;
  o.kind = kind;
  o.conn = conn(id, "t1", user);
  o.conn.address = "1.2.3.4";
  o.channel = channel;
  return o;
}

TEST_F(PresenceStoreTest, RemoteInstancesJoinTheRegionViewButNotTheHostCounts) {
  a_->addConnection(conn("a1", "t1", "alice"));
  a_->joinChannel("a1", "t1", "room", "alice");
  ASSERT_TRUE(a_->flush().isOk());
  const std::string far = "r:edge-2/77/ab";
  ASSERT_TRUE(a_->applyRemote(far,
                              {op(PresenceOp::Kind::kAdd, "e2-1", "alice"),
                               op(PresenceOp::Kind::kAdd, "e2-2", "bob"),
                               op(PresenceOp::Kind::kJoin, "e2-1", "alice", "room"),
                               op(PresenceOp::Kind::kJoin, "e2-2", "bob", "room")},
                              2000)
                  .isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"alice", 2}, {"bob", 1}}));
  EXPECT_EQ(*a_->userConnectionsInChannel("t1", "room", "alice"), 2u);
  EXPECT_EQ(*a_->userConnectionsInChannel("t1", "room", "bob"), 1u);
  EXPECT_EQ(*a_->userConnectionsInChannel("t1", "room", "bo"), 0u);
  EXPECT_EQ(*a_->userConnectionsInChannel("t1", "lobby", "alice"), 0u);
  EXPECT_EQ(connIds(*a_, "t1", "alice"), (std::vector<std::string>{"a1", "e2-1"}));
  // The caps count this host only: remote connections and their addresses are not in it.
  EXPECT_EQ(*a_->connectionsOfUser("t1", "alice"), 1u);
  EXPECT_EQ(*a_->connectionsOfUser("t1", "bob"), 0u);
  EXPECT_EQ(*a_->connectionsFromAddress("1.2.3.4"), 0u);
  EXPECT_EQ(a_->instanceConnections(far)->size(), 2u);

  ASSERT_TRUE(a_->applyRemote(far, {op(PresenceOp::Kind::kLeave, "e2-2", "bob", "room"),
                                    op(PresenceOp::Kind::kRemove, "e2-1", "alice")},
                              3000)
                  .isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"alice", 1}}));
  EXPECT_EQ(connIds(*a_, "t1", "bob"), (std::vector<std::string>{"e2-2"}));
}

TEST_F(PresenceStoreTest, ARemoteInstanceCannotTouchOtherInstancesConnections) {
  a_->addConnection(conn("a1", "t1", "alice"));
  a_->joinChannel("a1", "t1", "room", "alice");
  ASSERT_TRUE(a_->flush().isOk());
  ASSERT_TRUE(a_->applyRemote("r:x", {op(PresenceOp::Kind::kAdd, "x1", "xavier")}, 2000).isOk());
  ASSERT_TRUE(a_->applyRemote("r:y",
                              {op(PresenceOp::Kind::kRemove, "a1", "alice"),
                               op(PresenceOp::Kind::kLeave, "a1", "alice", "room"),
                               op(PresenceOp::Kind::kAdd, "x1", "mallory"),
                               op(PresenceOp::Kind::kJoin, "x1", "mallory", "room")},
                              2000)
                  .isOk());
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"alice", 1}}));
  EXPECT_EQ(connIds(*a_, "t1", "xavier"), (std::vector<std::string>{"x1"}));
  EXPECT_TRUE(connIds(*a_, "t1", "mallory").empty());
  // Local ids are refused as remote instances.
  EXPECT_FALSE(a_->applyRemote("worker-a", {}, 2000).isOk());
  // Known instances are not created again.
  EXPECT_FALSE(*a_->applyRemote("r:x", {}, 2500));
  EXPECT_TRUE(*a_->applyRemote("r:new", {}, 2500));
}

TEST_F(PresenceStoreTest, RemoteInstancesExpireByLastContactAndCanBeRemovedAtOnce) {
  const int64_t ttl = 30000;
  ASSERT_TRUE(a_->applyRemote("r:far", {op(PresenceOp::Kind::kAdd, "f1", "fay"),
                                        op(PresenceOp::Kind::kJoin, "f1", "fay", "room")},
                              1000)
                  .isOk());
  ASSERT_TRUE(a_->applyRemote("r:gone", {op(PresenceOp::Kind::kAdd, "g1", "gus"),
                                         op(PresenceOp::Kind::kJoin, "g1", "gus", "room")},
                              1000)
                  .isOk());
  // A heartbeat is an empty batch: it refreshes the contact time only.
  ASSERT_TRUE(a_->applyRemote("r:far", {}, 20000).isOk());
  auto stats = a_->sweep(1001 + ttl, ttl);
  ASSERT_TRUE(stats.isOk());
  EXPECT_EQ(stats->instances_removed, 1u);  // r:gone, not r:far (no pid, no boot id check)
  ASSERT_EQ(stats->memberships.size(), 1u);
  EXPECT_EQ(stats->memberships[0].user, "gus");
  EXPECT_EQ(members(*a_, "t1", "room"), (Members{{"fay", 1}}));

  auto removed = a_->removeInstance("r:far");
  ASSERT_TRUE(removed.isOk());
  EXPECT_EQ(removed->connections_removed, 1u);
  EXPECT_TRUE(members(*a_, "t1", "room").empty());
  EXPECT_EQ(a_->removeInstance("r:far")->instances_removed, 0u);
}

}  // namespace
}  // namespace wsfleet
