#include "edge/history_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

std::string frameFor(const std::string& epoch, uint64_t offset, const std::string& body) {
  return "{\"epoch\":\"" + epoch + "\",\"offset\":" + std::to_string(offset) + ",\"data\":\"" +
         body + "\"}";
}

HistoryLimits limits(uint64_t max_messages = 100, int64_t max_age_ms = 0,
                     int64_t dedup_window_ms = 120000) {
  HistoryLimits l;
  l.max_messages = max_messages;
  l.max_age_ms = max_age_ms;
  l.dedup_window_ms = dedup_window_ms;
  return l;
}

class HistoryStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { openAll(); }

  void openAll(size_t map_size = 4u << 20) {
    store_.reset();
    env_ = LmdbEnv();
    LmdbOptions options;
    options.map_size_bytes = map_size;
    auto env = LmdbEnv::open(tmp_.path() + "/history", options);
    ASSERT_TRUE(env.isOk()) << env.status().toString();
    env_ = std::move(env).value();
    auto store = HistoryStore::open(env_);
    ASSERT_TRUE(store.isOk()) << store.status().toString();
    store_ = std::move(store).value();
  }

  Result<AppendResult> append(const std::string& channel, const std::string& body, int64_t now_ms,
                              const HistoryLimits& l = limits(), const std::string& key = "",
                              const std::string& tenant = "t1") {
    return store_->append(tenant, channel, key, now_ms, l,
                          [&](const std::string& epoch, uint64_t offset) {
                            ++frames_built_;
                            return frameFor(epoch, offset, body);
                          });
  }

  uint64_t mustAppend(const std::string& channel, const std::string& body, int64_t now_ms,
                      const HistoryLimits& l = limits()) {
    auto r = append(channel, body, now_ms, l);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? r->position.offset : 0;
  }

  ReplayResult replay(const std::string& channel, const StreamPosition& since, int64_t now_ms,
                      const HistoryLimits& l = limits()) {
    auto r = store_->replay("t1", channel, since, now_ms, l);
    EXPECT_TRUE(r.isOk()) << r.status().toString();
    return r.isOk() ? std::move(r).value() : ReplayResult{};
  }

  std::string epochOf(const std::string& channel) {
    auto pos = store_->position("t1", channel);
    EXPECT_TRUE(pos.isOk());
    return pos.isOk() ? pos->epoch : "";
  }

  static std::vector<uint64_t> offsets(const ReplayResult& r) {
    std::vector<uint64_t> out;
    for (const StoredMessage& m : r.messages) out.push_back(m.offset);
    return out;
  }

  TempDir tmp_;
  LmdbEnv env_;
  std::unique_ptr<HistoryStore> store_;
  int frames_built_ = 0;
};

TEST_F(HistoryStoreTest, OffsetsStrictlyIncreaseFromOne) {
  auto pos = store_->position("t1", "room");
  ASSERT_TRUE(pos.isOk());
  EXPECT_EQ(pos->offset, 0u);
  EXPECT_EQ(pos->epoch.size(), 32u);
  EXPECT_EQ(pos->epoch.find_first_not_of("0123456789abcdef"), std::string::npos);

  for (uint64_t expected = 1; expected <= 5; ++expected) {
    auto r = append("room", "m" + std::to_string(expected), 1000);
    ASSERT_TRUE(r.isOk()) << r.status().toString();
    EXPECT_EQ(r->position.offset, expected);
    EXPECT_EQ(r->position.epoch, pos->epoch);
    EXPECT_FALSE(r->duplicate);
    EXPECT_EQ(r->frame, frameFor(pos->epoch, expected, "m" + std::to_string(expected)));
  }
  auto now = store_->position("t1", "room");
  ASSERT_TRUE(now.isOk());
  EXPECT_EQ(now->offset, 5u);
  EXPECT_EQ(now->epoch, pos->epoch);
}

TEST_F(HistoryStoreTest, ChannelsAndTenantsAreIndependent) {
  EXPECT_EQ(mustAppend("a", "x", 1000), 1u);
  EXPECT_EQ(mustAppend("a", "x", 1000), 2u);
  EXPECT_EQ(mustAppend("b", "x", 1000), 1u);
  auto other = append("a", "x", 1000, limits(), "", "t2");
  ASSERT_TRUE(other.isOk());
  EXPECT_EQ(other->position.offset, 1u);
  // Channels created in one store share its epoch; what keeps them apart is the key.
  EXPECT_EQ(epochOf("a"), epochOf("b"));
  EXPECT_EQ(other->position.epoch, epochOf("a"));
  // A channel whose name extends another's shares nothing with it.
  EXPECT_EQ(mustAppend("a2", "x", 1000), 1u);
  EXPECT_EQ(offsets(replay("a", {epochOf("a"), 0}, 1000)), (std::vector<uint64_t>{1, 2}));
}

TEST_F(HistoryStoreTest, ReplayReturnsMissedMessagesInOrder) {
  for (int i = 1; i <= 4; ++i) mustAppend("room", "m" + std::to_string(i), 1000 + i);
  const std::string epoch = epochOf("room");

  ReplayResult r = replay("room", {epoch, 1}, 2000);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.top.epoch, epoch);
  EXPECT_EQ(r.top.offset, 4u);
  ASSERT_EQ(offsets(r), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(r.messages[0].frame, frameFor(epoch, 2, "m2"));
  EXPECT_EQ(r.messages[0].ts_ms, 1002);
  EXPECT_EQ(r.messages[2].frame, frameFor(epoch, 4, "m4"));

  r = replay("room", {epoch, 0}, 2000);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets(r), (std::vector<uint64_t>{1, 2, 3, 4}));
}

TEST_F(HistoryStoreTest, ReplayFromTheLastOffsetRecoversWithNothing) {
  mustAppend("room", "m1", 1000);
  mustAppend("room", "m2", 1000);
  ReplayResult r = replay("room", {epochOf("room"), 2}, 1000);
  EXPECT_TRUE(r.recovered);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.top.offset, 2u);
}

TEST_F(HistoryStoreTest, FutureOffsetIsNotRecovered) {
  mustAppend("room", "m1", 1000);
  const std::string epoch = epochOf("room");
  ReplayResult r = replay("room", {epoch, 2}, 1000);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_EQ(r.top.epoch, epoch);
  EXPECT_EQ(r.top.offset, 1u);
  r = replay("room", {epoch, UINT64_MAX}, 1000);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.messages.empty());
}

TEST_F(HistoryStoreTest, WrongEpochIsNotRecovered) {
  mustAppend("room", "m1", 1000);
  mustAppend("room", "m2", 1000);
  for (const std::string& epoch :
       {std::string("0123456789abcdef0123456789abcdef"), std::string(), std::string("garbage")}) {
    ReplayResult r = replay("room", {epoch, 1}, 1000);
    EXPECT_FALSE(r.recovered);
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.top.epoch, epochOf("room"));
    EXPECT_EQ(r.top.offset, 2u);
  }
}

TEST_F(HistoryStoreTest, ReplayOfAnUnknownChannelGivesAFreshPosition) {
  ReplayResult r = replay("never", {"0123456789abcdef0123456789abcdef", 7}, 1000);
  EXPECT_FALSE(r.recovered);
  EXPECT_EQ(r.top.offset, 0u);
  EXPECT_EQ(r.top.epoch.size(), 32u);
  EXPECT_EQ(r.top.epoch, epochOf("never"));  // created once, then stable
}

TEST_F(HistoryStoreTest, TrimmedBySizeIsNotRecovered) {
  const HistoryLimits l = limits(3);
  for (int i = 1; i <= 5; ++i) mustAppend("room", "m" + std::to_string(i), 1000, l);
  const std::string epoch = epochOf("room");
  // 3, 4 and 5 are kept.
  for (uint64_t since : {0, 1}) {
    ReplayResult r = replay("room", {epoch, since}, 1000, l);
    EXPECT_FALSE(r.recovered) << since;
    EXPECT_TRUE(r.messages.empty());
    EXPECT_EQ(r.top.offset, 5u);
    EXPECT_EQ(r.top.epoch, epoch);  // trimming is not a new epoch
  }
  ReplayResult r = replay("room", {epoch, 2}, 1000, l);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets(r), (std::vector<uint64_t>{3, 4, 5}));

  // The trim is physical: a larger limit at replay time does not bring 2 back.
  r = replay("room", {epoch, 1}, 1000, limits(100));
  EXPECT_FALSE(r.recovered);
  // A smaller limit at replay time counts as trimmed even before the store catches up.
  r = replay("room", {epoch, 2}, 1000, limits(2));
  EXPECT_FALSE(r.recovered);
  r = replay("room", {epoch, 3}, 1000, limits(2));
  EXPECT_TRUE(r.recovered);
}

TEST_F(HistoryStoreTest, NoHistoryKeepsOffsetsButReplaysNothing) {
  const HistoryLimits l = limits(0);
  auto first = append("room", "m1", 1000, l);
  ASSERT_TRUE(first.isOk());
  EXPECT_EQ(first->position.offset, 1u);
  EXPECT_EQ(first->frame, frameFor(first->position.epoch, 1, "m1"));
  EXPECT_EQ(mustAppend("room", "m2", 1000, l), 2u);
  EXPECT_FALSE(replay("room", {first->position.epoch, 1}, 1000, l).recovered);
  EXPECT_TRUE(replay("room", {first->position.epoch, 2}, 1000, l).recovered);
}

TEST_F(HistoryStoreTest, TrimmedByAgeIsNotRecovered) {
  const HistoryLimits l = limits(100, 1000);
  mustAppend("room", "m1", 0, l);
  mustAppend("room", "m2", 100, l);
  mustAppend("room", "m3", 2000, l);  // trims m1 and m2 (older than 1000 at 2000)
  const std::string epoch = epochOf("room");

  ReplayResult r = replay("room", {epoch, 0}, 2000, l);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.messages.empty());
  r = replay("room", {epoch, 1}, 2000, l);
  EXPECT_FALSE(r.recovered);
  r = replay("room", {epoch, 2}, 2500, l);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets(r), (std::vector<uint64_t>{3}));
  // m3 is still stored but past its age at 3001: trimmed as far as the client goes.
  r = replay("room", {epoch, 2}, 3001, l);
  EXPECT_FALSE(r.recovered);
  EXPECT_TRUE(r.messages.empty());
  // Nothing missed is still fine.
  EXPECT_TRUE(replay("room", {epoch, 3}, 10000, l).recovered);
}

TEST_F(HistoryStoreTest, IdempotencyKeyReturnsTheOriginal) {
  auto first = append("room", "original", 1000, limits(), "key-1");
  ASSERT_TRUE(first.isOk());
  EXPECT_FALSE(first->duplicate);
  EXPECT_EQ(frames_built_, 1);

  auto again = append("room", "retry", 5000, limits(), "key-1");
  ASSERT_TRUE(again.isOk());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->position.offset, first->position.offset);
  EXPECT_EQ(again->position.epoch, first->position.epoch);
  EXPECT_EQ(again->frame, first->frame);
  EXPECT_EQ(frames_built_, 1);  // not built, not stored
  EXPECT_EQ(store_->position("t1", "room")->offset, 1u);

  // Another key, or the same key on another channel, is a new message.
  auto other = append("room", "other", 5000, limits(), "key-2");
  ASSERT_TRUE(other.isOk());
  EXPECT_FALSE(other->duplicate);
  EXPECT_EQ(other->position.offset, 2u);
  auto elsewhere = append("lobby", "x", 5000, limits(), "key-1");
  ASSERT_TRUE(elsewhere.isOk());
  EXPECT_FALSE(elsewhere->duplicate);

  // Past the window the key is forgotten.
  auto late = append("room", "late", 1000 + 120000, limits(), "key-1");
  ASSERT_TRUE(late.isOk());
  EXPECT_FALSE(late->duplicate);
  EXPECT_EQ(late->position.offset, 3u);
  // ... and the new publish is now the one remembered.
  auto late_retry = append("room", "late retry", 1000 + 120001, limits(), "key-1");
  ASSERT_TRUE(late_retry.isOk());
  EXPECT_TRUE(late_retry->duplicate);
  EXPECT_EQ(late_retry->position.offset, 3u);
  EXPECT_EQ(late_retry->frame, late->frame);
}

TEST_F(HistoryStoreTest, DuplicateOfATrimmedMessageStillGetsItsOffset) {
  const HistoryLimits l = limits(1);
  auto first = append("room", "m1", 1000, l, "key-1");
  ASSERT_TRUE(first.isOk());
  mustAppend("room", "m2", 1000, l);
  auto again = append("room", "m1", 1001, l, "key-1");
  ASSERT_TRUE(again.isOk());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->position.offset, 1u);
  EXPECT_TRUE(again->frame.empty());
}

TEST_F(HistoryStoreTest, TrimExpiredDropsOldMessagesAndKeys) {
  mustAppend("a", "a1", 0);
  mustAppend("a", "a2", 5000);
  ASSERT_TRUE(append("a", "k", 0, limits(), "key-1").isOk());
  mustAppend("b", "b1", 0);
  const std::string epoch_a = epochOf("a");
  const std::string epoch_b = epochOf("b");

  int lookups = 0;
  auto lookup = [&](const std::string& tenant, const std::string& channel) {
    ++lookups;
    EXPECT_EQ(tenant, "t1");
    // b keeps everything; a drops messages older than 1 s and keys older than 2 s.
    return channel == "a" ? limits(100, 1000, 2000) : limits(100, 0, 120000);
  };
  ASSERT_TRUE(store_->trimExpired(5500, lookup, 100).isOk());
  EXPECT_EQ(lookups, 2);

  // Judged without an age limit, only what is physically stored can be replayed.
  ReplayResult r = replay("a", {epoch_a, 0}, 5500, limits());
  EXPECT_FALSE(r.recovered);
  r = replay("a", {epoch_a, 1}, 5500, limits());
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets(r), (std::vector<uint64_t>{2, 3}));  // "k" was at 0 but after a2
  EXPECT_TRUE(replay("b", {epoch_b, 0}, 5500, limits()).recovered);

  // The key is forgotten even for a caller with a longer window.
  auto again = append("a", "k", 5600, limits(100, 0, 120000), "key-1");
  ASSERT_TRUE(again.isOk());
  EXPECT_FALSE(again->duplicate);
}

TEST_F(HistoryStoreTest, TrimExpiredVisitsChannelsRoundRobin) {
  for (const char* ch : {"c1", "c2", "c3"}) mustAppend(ch, "old", 0);
  std::vector<std::string> seen;
  auto lookup = [&](const std::string&, const std::string& channel) {
    seen.push_back(channel);
    return limits(100, 1000);
  };
  ASSERT_TRUE(store_->trimExpired(5000, lookup, 2).isOk());
  EXPECT_EQ(seen, (std::vector<std::string>{"c1", "c2"}));
  EXPECT_TRUE(replay("c3", {epochOf("c3"), 0}, 5000, limits()).recovered);  // not yet
  ASSERT_TRUE(store_->trimExpired(5000, lookup, 2).isOk());
  EXPECT_EQ(seen, (std::vector<std::string>{"c1", "c2", "c3"}));
  EXPECT_FALSE(replay("c3", {epochOf("c3"), 0}, 5000, limits()).recovered);
  ASSERT_TRUE(store_->trimExpired(5000, lookup, 2).isOk());
  EXPECT_EQ(seen, (std::vector<std::string>{"c1", "c2", "c3", "c1", "c2"}));
}

TEST_F(HistoryStoreTest, EpochSurvivesRestartAndAWipeMakesANewOne) {
  mustAppend("room", "m1", 1000);
  mustAppend("room", "m2", 1000);
  const std::string epoch = epochOf("room");

  openAll();  // a restarted worker: new environment handle, same files
  EXPECT_EQ(epochOf("room"), epoch);
  ReplayResult r = replay("room", {epoch, 0}, 1000);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets(r), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(mustAppend("room", "m3", 1000), 3u);

  store_.reset();
  env_ = LmdbEnv();
  std::filesystem::remove_all(tmp_.path() + "/history");
  openAll();
  const std::string fresh = epochOf("room");
  EXPECT_NE(fresh, epoch);
  EXPECT_EQ(mustAppend("room", "m1", 1000), 1u);
  r = replay("room", {epoch, 3}, 1000);
  EXPECT_FALSE(r.recovered);
  EXPECT_EQ(r.top.epoch, fresh);
  EXPECT_EQ(r.top.offset, 1u);
}

TEST_F(HistoryStoreTest, MapFullRefusesCleanlyAndTrimmingMakesRoom) {
  openAll(128u << 10);
  const std::string big(3000, 'x');
  const HistoryLimits keep_all = limits(100000);
  Status failure;
  uint64_t stored = 0;
  for (int i = 0; i < 1000; ++i) {
    auto r = append("room", big, 1000, keep_all);
    if (!r.isOk()) {
      failure = r.takeStatus();
      break;
    }
    stored = r->position.offset;
  }
  ASSERT_FALSE(failure.isOk());
  EXPECT_EQ(failure.code(), Code::kUnavailable);
  EXPECT_STREQ(failure.reason(), "lmdb_map_full");
  ASSERT_GT(stored, 0u);

  // Nothing half-written: the position is the last acknowledged offset and it all replays.
  const std::string epoch = epochOf("room");
  auto pos = store_->position("t1", "room");
  ASSERT_TRUE(pos.isOk());
  EXPECT_EQ(pos->offset, stored);
  ReplayResult r = replay("room", {epoch, 0}, 1000, keep_all);
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(r.messages.size(), stored);

  // Trimming frees pages and publishing resumes with the next offset. (LMDB reuses the
  // pages a transaction freed only after a later commit, so the first write is small.)
  ASSERT_TRUE(store_
                  ->trimExpired(
                      1000, [](const std::string&, const std::string&) { return limits(2); }, 10)
                  .isOk());
  auto next = append("room", "small", 1000, limits(2));
  ASSERT_TRUE(next.isOk()) << next.status().toString();
  EXPECT_EQ(next->position.offset, stored + 1);
  EXPECT_EQ(next->position.epoch, epoch);
  // With a retention that fits, full-size publishing goes on indefinitely.
  for (uint64_t i = 2; i <= 200; ++i) {
    auto more = append("room", big, 1000, limits(2));
    ASSERT_TRUE(more.isOk()) << i << ": " << more.status().toString();
    EXPECT_EQ(more->position.offset, stored + i);
  }
  r = replay("room", {epoch, stored + 198}, 1000, limits(2));
  EXPECT_TRUE(r.recovered);
  EXPECT_EQ(offsets(r), (std::vector<uint64_t>{stored + 199, stored + 200}));
}

}  // namespace
}  // namespace wsfleet

namespace wsfleet {
namespace {

TEST_F(HistoryStoreTest, PositionOfUnpublishedChannelsWritesNothing) {
  auto first = store_->position("t1", "warm-up");  // the fixture's tenant is t1
  ASSERT_TRUE(first.isOk());
  const size_t used = env_.usedBytes();
  for (int i = 0; i < 2000; ++i) {
    auto pos = store_->position("t1", "made-up-" + std::to_string(i));
    ASSERT_TRUE(pos.isOk());
    EXPECT_EQ(pos->offset, 0u);
    EXPECT_EQ(pos->epoch, first->epoch);
  }
  EXPECT_EQ(env_.usedBytes(), used);
  // Resuming an empty channel at its empty position is recovered; anything else is not.
  auto empty = store_->replay("t1", "made-up-7", {first->epoch, 0}, 1000, HistoryLimits{});
  ASSERT_TRUE(empty.isOk());
  EXPECT_TRUE(empty->recovered);
  auto future = store_->replay("t1", "made-up-7", {first->epoch, 3}, 1000, HistoryLimits{});
  ASSERT_TRUE(future.isOk());
  EXPECT_FALSE(future->recovered);
  // The first publish continues from what subscribers were told.
  EXPECT_EQ(mustAppend("made-up-7", "first", 1000), 1u);
  EXPECT_EQ(epochOf("made-up-7"), first->epoch);
}

}  // namespace
}  // namespace wsfleet
