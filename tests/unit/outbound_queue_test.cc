#include "edge/outbound_queue.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

constexpr size_t kHeadroom = 4;

FramePtr normal(const std::string& payload) {
  return std::make_shared<const OutFrame>(payload, kHeadroom);
}

FramePtr low(const std::string& payload, const std::string& key) {
  return std::make_shared<const OutFrame>(payload, kHeadroom, key);
}

std::string text(const OutFrame& frame) {
  return std::string(reinterpret_cast<const char*>(frame.payload()), frame.size());
}

// Everything still queued, front to back, emptying the queue.
std::vector<std::string> drain(OutboundQueue& queue) {
  std::vector<std::string> out;
  while (FramePtr frame = queue.pop()) out.push_back(text(*frame));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
  EXPECT_EQ(queue.lowCount(), 0u);
  return out;
}

// Caps of 10 messages / 100 bytes; behind over 4 messages or 40 bytes.
constexpr OutboundLimits kLimits{100, 10, 40, 4};

using R = OutboundQueue::Result;

TEST(OutboundQueueTest, NormalFramesKeepTheirOrderAndAreCounted) {
  OutboundQueue q;
  for (const char* p : {"a", "bb", "ccc"})
    EXPECT_EQ(q.offer(normal(p), kLimits).result, R::kQueued);
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.bytes(), 6u);
  ASSERT_NE(q.front(), nullptr);
  EXPECT_EQ(text(*q.front()), "a");
  EXPECT_EQ(drain(q), (std::vector<std::string>{"a", "bb", "ccc"}));
  EXPECT_EQ(q.front(), nullptr);
  EXPECT_EQ(q.pop(), nullptr);
}

TEST(OutboundQueueTest, NotBehindLowFramesAreQueuedLikeAnyOther) {
  OutboundQueue q;
  q.offer(low("t1", "k"), kLimits);
  q.offer(normal("m"), kLimits);
  EXPECT_EQ(q.offer(low("t2", "k"), kLimits).result, R::kQueued);
  EXPECT_EQ(q.lowCount(), 2u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"t1", "m", "t2"}));
}

TEST(OutboundQueueTest, BehindALowFrameReplacesTheQueuedOneWithItsKeyInPlace) {
  OutboundQueue q;
  q.offer(low("x1", "x"), kLimits);
  q.offer(low("y1", "y"), kLimits);
  for (const char* p : {"n1", "n2", "n3"}) q.offer(normal(p), kLimits);
  ASSERT_TRUE(q.behind(kLimits));  // 5 messages > 4
  EXPECT_EQ(q.offer(low("x2-longer", "x"), kLimits).result, R::kCoalesced);
  EXPECT_EQ(q.size(), 5u);
  EXPECT_EQ(q.bytes(), 9u + 2 + 6);
  EXPECT_EQ(q.offer(low("x3", "x"), kLimits).result, R::kCoalesced);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"x3", "y1", "n1", "n2", "n3"}));
}

TEST(OutboundQueueTest, BehindALowFrameWithoutAQueuedKeyIsDropped) {
  OutboundQueue q;
  q.offer(low("x1", "x"), kLimits);
  for (const char* p : {"n1", "n2", "n3", "n4", "n5"}) q.offer(normal(p), kLimits);
  ASSERT_TRUE(q.behind(kLimits));
  EXPECT_EQ(q.offer(low("z1", "z"), kLimits).result, R::kDroppedLow);
  // Once written, a key is gone: a later frame with it has nothing to replace.
  EXPECT_EQ(text(*q.pop()), "x1");
  ASSERT_TRUE(q.behind(kLimits));
  EXPECT_EQ(q.offer(low("x2", "x"), kLimits).result, R::kDroppedLow);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"n1", "n2", "n3", "n4", "n5"}));
}

TEST(OutboundQueueTest, BehindNormalFramesAreStillQueuedUpToTheCap) {
  OutboundQueue q;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(q.offer(normal("n" + std::to_string(i)), kLimits).result, R::kQueued) << i;
  }
  EXPECT_TRUE(q.behind(kLimits));
  const OutboundQueue::Outcome over = q.offer(normal("n10"), kLimits);
  EXPECT_EQ(over.result, R::kOverCap);
  EXPECT_EQ(over.low_evicted, 0u);
  EXPECT_EQ(q.size(), 10u);
}

TEST(OutboundQueueTest, TheNewestQueuedFrameOfAKeyIsTheOneReplaced) {
  // Two frames of one key queued while not behind: replacing the older one would put the
  // newest state before a stale one.
  OutboundQueue q;
  q.offer(low("k1", "k"), kLimits);
  q.offer(low("k2", "k"), kLimits);
  for (const char* p : {"n1", "n2", "n3"}) q.offer(normal(p), kLimits);
  ASSERT_TRUE(q.behind(kLimits));
  EXPECT_EQ(q.offer(low("k3", "k"), kLimits).result, R::kCoalesced);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"k1", "k3", "n1", "n2", "n3"}));
}

TEST(OutboundQueueTest, AtTheCapOldestLowFramesAreEvictedForANormalOne) {
  OutboundQueue q;
  q.offer(low("a", "a"), kLimits);
  q.offer(normal("n0"), kLimits);
  q.offer(low("b", "b"), kLimits);
  q.offer(low("c", "c"), kLimits);
  for (int i = 1; i <= 6; ++i) {
    EXPECT_EQ(q.offer(normal("n" + std::to_string(i)), kLimits).result, R::kQueued);
  }
  ASSERT_EQ(q.size(), 10u);
  const OutboundQueue::Outcome first = q.offer(normal("n7"), kLimits);
  EXPECT_EQ(first.result, R::kQueued);
  EXPECT_EQ(first.low_evicted, 1u);
  EXPECT_EQ(q.size(), 10u);
  EXPECT_EQ(q.lowCount(), 2u);
  // An evicted key cannot be coalesced into any more; the others still can.
  EXPECT_EQ(q.offer(low("a2", "a"), kLimits).result, R::kDroppedLow);
  EXPECT_EQ(q.offer(low("c2", "c"), kLimits).result, R::kCoalesced);
  EXPECT_EQ(q.offer(normal("n8"), kLimits).low_evicted, 1u);
  EXPECT_EQ(drain(q),
            (std::vector<std::string>{"n0", "c2", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8"}));
}

// The low-frame bookkeeping is freed by releaseIdle() only when nothing is queued; either
// way the queue behaves the same (a key queued and sent before is not coalesced into).
TEST(OutboundQueueTest, ReleaseIdleKeepsQueuedLowFramesAndStartsAfresh) {
  OutboundQueue q;
  q.offer(low("k1", "k"), kLimits);
  q.releaseIdle();  // k1 is still queued: nothing may be freed
  for (int i = 0; i < 5; ++i) q.offer(normal("m" + std::to_string(i)), kLimits);
  ASSERT_TRUE(q.behind(kLimits));
  EXPECT_EQ(q.offer(low("k2", "k"), kLimits).result, R::kCoalesced);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"k2", "m0", "m1", "m2", "m3", "m4"}));
  for (bool release : {false, true}) {
    if (release) q.releaseIdle();
    for (int i = 0; i < 5; ++i) q.offer(normal("n" + std::to_string(i)), kLimits);
    ASSERT_TRUE(q.behind(kLimits));
    EXPECT_EQ(q.offer(low("k3", "k"), kLimits).result, R::kDroppedLow) << release;
    EXPECT_EQ(drain(q), (std::vector<std::string>{"n0", "n1", "n2", "n3", "n4"}));
    EXPECT_EQ(q.offer(low("k4", "k"), kLimits).result, R::kQueued);
    EXPECT_EQ(q.offer(low("k5", "k"), kLimits).result, R::kQueued);
    EXPECT_EQ(q.lowCount(), 2u);
    EXPECT_EQ(drain(q), (std::vector<std::string>{"k4", "k5"}));
  }
}

TEST(OutboundQueueTest, EvictionMakesRoomByBytesToo) {
  OutboundQueue q;
  q.offer(low(std::string(30, 'l'), "l"), kLimits);
  q.offer(low(std::string(30, 'm'), "m"), kLimits);
  q.offer(normal(std::string(30, 'n')), kLimits);
  ASSERT_EQ(q.bytes(), 90u);
  // 50 more bytes: both low frames (60 bytes) must go.
  const OutboundQueue::Outcome outcome = q.offer(normal(std::string(50, 'x')), kLimits);
  EXPECT_EQ(outcome.result, R::kQueued);
  EXPECT_EQ(outcome.low_evicted, 2u);
  EXPECT_EQ(q.bytes(), 80u);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{std::string(30, 'n'), std::string(50, 'x')}));
}

TEST(OutboundQueueTest, NothingIsEvictedWhenEvictingAllLowFramesWouldNotBeEnough) {
  OutboundQueue q;
  q.offer(low(std::string(10, 'l'), "l"), kLimits);
  q.offer(normal(std::string(80, 'n')), kLimits);
  const OutboundQueue::Outcome outcome = q.offer(normal(std::string(30, 'x')), kLimits);
  EXPECT_EQ(outcome.result, R::kOverCap);
  EXPECT_EQ(outcome.low_evicted, 0u);
  EXPECT_EQ(q.lowCount(), 1u);
  EXPECT_EQ(q.bytes(), 90u);
}

TEST(OutboundQueueTest, LowFramesNeverOverflowTheCap) {
  // High water at the cap: a low frame that does not fit is dropped, never "over cap".
  constexpr OutboundLimits kTight{20, 10, 20, 10};
  OutboundQueue q;
  q.offer(low(std::string(15, 'a'), "a"), kTight);
  EXPECT_EQ(q.offer(low(std::string(10, 'b'), "b"), kTight).result, R::kDroppedLow);
  // Behind now only if over the mark; make it so and try a larger replacement.
  q.offer(normal(std::string(5, 'n')), kTight);
  constexpr OutboundLimits kLowMark{20, 10, 10, 10};
  ASSERT_TRUE(q.behind(kLowMark));
  EXPECT_EQ(q.offer(low(std::string(16, 'A'), "a"), kLowMark).result, R::kDroppedLow);
  EXPECT_EQ(q.offer(low(std::string(15, 'A'), "a"), kLowMark).result, R::kCoalesced);
  EXPECT_EQ(q.bytes(), 20u);
}

TEST(OutboundQueueTest, ReplacedFramesMayBeReleasedByEveryoneElse) {
  // The key map points into the queued frame; after a replacement the old frame may be
  // gone everywhere, and later look-ups must use the new one.
  OutboundQueue q;
  q.offer(low("v0", std::string(40, 'k')), kLimits);  // a key too long for SSO
  for (const char* p : {"n1", "n2", "n3", "n4"}) q.offer(normal(p), kLimits);
  for (int i = 1; i <= 50; ++i) {
    EXPECT_EQ(q.offer(low("v" + std::to_string(i), std::string(40, 'k')), kLimits).result,
              R::kCoalesced);
  }
  EXPECT_EQ(q.lowCount(), 1u);
  EXPECT_EQ(drain(q), (std::vector<std::string>{"v50", "n1", "n2", "n3", "n4"}));
}

TEST(OutboundQueueTest, BehindFollowsTheQueueBothWays) {
  OutboundQueue q;
  for (int i = 0; i < 4; ++i) q.offer(normal("n"), kLimits);
  EXPECT_FALSE(q.behind(kLimits));  // at the mark is not over it
  q.offer(normal("n"), kLimits);
  EXPECT_TRUE(q.behind(kLimits));
  q.pop();
  EXPECT_FALSE(q.behind(kLimits));
  q.pop();
  q.offer(normal(std::string(41, 'b')), kLimits);
  EXPECT_TRUE(q.behind(kLimits));  // by bytes
  q.clear();
  EXPECT_FALSE(q.behind(kLimits));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.bytes(), 0u);
}

TEST(OutboundQueueTest, ClearForgetsKeys) {
  OutboundQueue q;
  q.offer(low("x1", "x"), kLimits);
  q.clear();
  for (const char* p : {"n1", "n2", "n3", "n4", "n5"}) q.offer(normal(p), kLimits);
  EXPECT_EQ(q.offer(low("x2", "x"), kLimits).result, R::kDroppedLow);
  EXPECT_EQ(q.size(), 5u);
}

}  // namespace
}  // namespace wsfleet
