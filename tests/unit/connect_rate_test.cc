#include "edge/connect_rate.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

TEST(ConnectRateTest, RateCountsOnlyWholeWindows) {
  ConnectRateTracker t(10000, 900000, 0);
  for (int i = 0; i < 50; ++i) t.onConnect();
  EXPECT_FALSE(t.update(9999));
  EXPECT_DOUBLE_EQ(t.rate(), 0);
  EXPECT_TRUE(t.update(10000));
  EXPECT_DOUBLE_EQ(t.rate(), 5.0);
  EXPECT_DOUBLE_EQ(t.baseline(), 5.0);  // seeded by the first window
  EXPECT_DOUBLE_EQ(t.ratio(), 1.0);
}

TEST(ConnectRateTest, StormStandsOutAgainstTheBaselineThenBecomesIt) {
  ConnectRateTracker t(10000, 900000, 0);
  int64_t now = 0;
  auto window = [&](int connects) {
    for (int i = 0; i < connects; ++i) t.onConnect();
    now += 10000;
    t.update(now);
  };
  for (int i = 0; i < 90; ++i) window(100);  // 10/s for 15 minutes
  EXPECT_NEAR(t.baseline(), 10.0, 0.01);
  window(20000);  // 2000/s: every client of a failed edge comes back
  EXPECT_DOUBLE_EQ(t.rate(), 2000.0);
  EXPECT_GT(t.ratio(), 50.0);
  // Sustained for a long time, the new level becomes normal.
  for (int i = 0; i < 600; ++i) window(20000);
  EXPECT_LT(t.ratio(), 1.1);
}

TEST(ConnectRateTest, IdleEdgeIsNoStorm) {
  ConnectRateTracker t(10000, 900000, 0);
  t.update(10000);  // baseline 0
  for (int i = 0; i < 5; ++i) t.onConnect();
  t.update(20000);
  EXPECT_DOUBLE_EQ(t.rate(), 0.5);
  EXPECT_DOUBLE_EQ(t.ratio(), 0.5);  // the baseline counts as at least 1/s
}

TEST(ConnectRateTest, LongPauseIsOneLongWindow) {
  ConnectRateTracker t(10000, 900000, 0);
  for (int i = 0; i < 100; ++i) t.onConnect();
  t.update(10000);
  for (int i = 0; i < 100; ++i) t.onConnect();
  EXPECT_TRUE(t.update(110000));  // the loop stalled for 100 s
  EXPECT_DOUBLE_EQ(t.rate(), 1.0);
}

}  // namespace
}  // namespace wsfleet
