#include "edge/drain_schedule.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <vector>

namespace wsfleet {
namespace {

TEST(DrainSchedule, EachConnectionGetsAPointOfItsOwnSlot) {
  const uint64_t window = 30000;
  const size_t count = 7;
  for (size_t i = 0; i < count; ++i) {
    const uint64_t start = window * i / count;
    const uint64_t end = window * (i + 1) / count;
    EXPECT_EQ(drainHintOffsetMs(i, count, window, 0.0), start);
    EXPECT_EQ(drainHintOffsetMs(i, count, window, 0.5), start + (end - start) / 2);
    // A unit that rounds up to 1 still stays inside the slot.
    EXPECT_EQ(drainHintOffsetMs(i, count, window, 0.99999999999), end - 1);
    EXPECT_EQ(drainHintOffsetMs(i, count, window, 1.0), end - 1);
  }
}

TEST(DrainSchedule, SpreadIsFlatOverTheWindow) {
  // 10000 connections over 10 s, random units: every 100 ms bucket gets exactly 100.
  const uint64_t window = 10000;
  const size_t count = 10000;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<int> buckets(100, 0);
  for (size_t i = 0; i < count; ++i) {
    const uint64_t at = drainHintOffsetMs(i, count, window, unit(rng));
    ASSERT_LT(at, window);
    ++buckets[at / 100];
  }
  for (int b : buckets) EXPECT_EQ(b, 100);
}

TEST(DrainSchedule, FewConnectionsStillCoverTheWindow) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<uint64_t> at;
  for (size_t i = 0; i < 4; ++i) at.push_back(drainHintOffsetMs(i, 4, 4000, unit(rng)));
  EXPECT_LT(at.front(), 1000u);
  EXPECT_GE(at.back(), 3000u);
  EXPECT_TRUE(std::is_sorted(at.begin(), at.end()));
}

TEST(DrainSchedule, MoreConnectionsThanMillisecondsAndDegenerateInputs) {
  for (size_t i = 0; i < 1000; ++i) EXPECT_LT(drainHintOffsetMs(i, 1000, 10, 0.7), 10u);
  EXPECT_EQ(drainHintOffsetMs(0, 0, 1000, 0.5), 0u);
  EXPECT_EQ(drainHintOffsetMs(3, 5, 0, 0.5), 0u);
  EXPECT_LT(drainHintOffsetMs(9, 5, 1000, 0.5), 1000u);  // index past count: the last slot
  // Large windows and counts do not overflow.
  const uint64_t huge = uint64_t{1} << 40;
  EXPECT_LT(drainHintOffsetMs(999999, 1000000, huge, 0.999), huge);
  EXPECT_GE(drainHintOffsetMs(999999, 1000000, huge, 0.0), huge - huge / 1000000 - 1);
}

TEST(DrainSchedule, LateConnectionsUseWhatIsLeftOfTheWindow) {
  EXPECT_EQ(lateDrainHintOffsetMs(400, 1000, 0.0), 400u);
  EXPECT_EQ(lateDrainHintOffsetMs(400, 1000, 0.5), 700u);
  EXPECT_LT(lateDrainHintOffsetMs(400, 1000, 1.0), 1000u);
  EXPECT_EQ(lateDrainHintOffsetMs(1500, 1000, 0.5), 1500u);  // past the window: now
}

TEST(DrainSchedule, AfterMsIsSmallJitter) {
  EXPECT_EQ(drainHintAfterMs(0, 0.9), 0u);
  EXPECT_EQ(drainHintAfterMs(3000, 0.0), 0u);
  EXPECT_EQ(drainHintAfterMs(3000, 1.0), 300u);  // a tenth of a short window
  EXPECT_EQ(drainHintAfterMs(600000, 1.0), kMaxHintAfterMs);
  std::set<uint64_t> seen;
  std::mt19937_64 rng(1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int i = 0; i < 50; ++i) seen.insert(drainHintAfterMs(30000, unit(rng)));
  EXPECT_GT(seen.size(), 40u);
  EXPECT_LE(*seen.rbegin(), kMaxHintAfterMs);
}

}  // namespace
}  // namespace wsfleet
