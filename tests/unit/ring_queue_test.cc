#include "edge/ring_queue.h"

#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <random>

namespace wsfleet {
namespace {

TEST(RingQueueTest, AllocatesNothingUntilUsedAndReleasesAfterABurst) {
  RingQueue<int> q;
  EXPECT_EQ(q.capacity(), 0u);
  for (int i = 0; i < 100; ++i) q.push_back(i);
  EXPECT_GE(q.capacity(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(q.front(), i);
    q.pop_front();
  }
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.capacity(), 0u);
}

TEST(RingQueueTest, OneElementLivesInlineAndAnEmptyQueueHoldsNoMemory) {
  RingQueue<int> q;
  for (int i = 0; i < 3; ++i) {  // a paced stream: one queued at a time, no allocation
    q.push_back(i);
    EXPECT_EQ(q.capacity(), 0u);
    EXPECT_EQ(q.front(), i);
    q.pop_front();
  }
  q.push_back(1);
  q.push_back(2);
  EXPECT_EQ(q.capacity(), 4u);
  q.pop_front();
  EXPECT_EQ(q.capacity(), 4u);
  q.pop_front();
  EXPECT_EQ(q.capacity(), 0u);  // an idle connection keeps no slots
  q.push_back(3);
  EXPECT_EQ(q.front(), 3);
}

TEST(RingQueueTest, BehavesLikeADequeUnderRandomUse) {
  RingQueue<int> q;
  std::deque<int> model;
  std::mt19937 rng(7);
  for (int step = 0; step < 100000; ++step) {
    if (rng() % 3 != 0 || model.empty()) {
      q.push_back(step);
      model.push_back(step);
    } else {
      ASSERT_EQ(q.front(), model.front());
      q.pop_front();
      model.pop_front();
    }
    ASSERT_EQ(q.size(), model.size());
    if (!model.empty()) {
      const size_t i = rng() % model.size();
      ASSERT_EQ(q[i], model[i]);
    }
  }
}

TEST(RingQueueTest, PopReleasesTheElementAtOnce) {
  RingQueue<std::shared_ptr<int>> q;
  auto value = std::make_shared<int>(5);
  q.push_back(value);
  q.push_back(std::make_shared<int>(6));
  EXPECT_EQ(value.use_count(), 2);
  q.pop_front();
  EXPECT_EQ(value.use_count(), 1);
  q.clear();
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace wsfleet
