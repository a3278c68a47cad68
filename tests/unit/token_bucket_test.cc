#include "common/token_bucket.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

TEST(TokenBucketTest, StartsFullAndEmptiesAfterTheBurst) {
  TokenBucket b(10, 5, 1000);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.tryTake(1000)) << i;
  EXPECT_FALSE(b.tryTake(1000));
  EXPECT_FALSE(b.canTake(1000));
}

TEST(TokenBucketTest, RefillsAtTheRate) {
  TokenBucket b(10, 5, 0);  // one token per 100 ms
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(b.tryTake(0));
  EXPECT_FALSE(b.tryTake(99));
  EXPECT_TRUE(b.tryTake(100));
  EXPECT_FALSE(b.tryTake(150));
  EXPECT_TRUE(b.tryTake(200));
  // Refills stop at the burst however long it was idle.
  EXPECT_DOUBLE_EQ(b.available(1000000), 5);
  EXPECT_TRUE(b.full(1000000));
}

TEST(TokenBucketTest, FailedTakeTakesNothing) {
  TokenBucket b(1, 3, 0);
  EXPECT_FALSE(b.tryTake(0, 4));
  EXPECT_DOUBLE_EQ(b.available(0), 3);
  EXPECT_TRUE(b.tryTake(0, 3));
}

TEST(TokenBucketTest, MsUntilIsEnoughAndNotMore) {
  TokenBucket b(3, 1, 0);  // 333.3 ms per token
  ASSERT_TRUE(b.tryTake(0));
  const int64_t wait = b.msUntil(0);
  EXPECT_EQ(wait, 334);
  EXPECT_FALSE(b.canTake(wait - 1));
  EXPECT_TRUE(b.tryTake(wait));
  // Fractional rates and waits: waiting exactly msUntil always succeeds.
  TokenBucket slow(0.7, 2, 0);
  int64_t now = 0;
  for (int i = 0; i < 50; ++i) {
    while (slow.tryTake(now)) {
    }
    now += slow.msUntil(now);
    ASSERT_TRUE(slow.canTake(now)) << i;
  }
  EXPECT_EQ(TokenBucket(5, 5, 0).msUntil(0), 0);
  // More than the burst never comes: the wait is for a full bucket.
  TokenBucket small(10, 2, 0);
  ASSERT_TRUE(small.tryTake(0, 2));
  EXPECT_EQ(small.msUntil(0, 100), 200);
}

TEST(TokenBucketTest, ClockGoingBackRefillsNothing) {
  TokenBucket b(1000, 2, 5000);
  ASSERT_TRUE(b.tryTake(5000, 2));
  EXPECT_FALSE(b.tryTake(4000));
  EXPECT_FALSE(b.tryTake(5000));
  EXPECT_TRUE(b.tryTake(5001));
}

TEST(TokenBucketTest, DisabledBucketAlwaysAllows) {
  TokenBucket off;
  EXPECT_FALSE(off.enabled());
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(off.tryTake(0));
  EXPECT_EQ(off.msUntil(0), 0);
  TokenBucket zero_rate(0, 10, 0);
  EXPECT_FALSE(zero_rate.enabled());
  EXPECT_TRUE(zero_rate.tryTake(0, 1000));
}

}  // namespace
}  // namespace wsfleet
