#include "edge/frame_coalescer.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

constexpr size_t kHeadroom = 16;
const OutboundLimits kRoomy{1 << 20, 1000, 1 << 20, 1000};

std::string header(std::string_view framed) { return std::string(framed.substr(0, 4)); }

TEST(FrameCoalescerTest, HeaderLengthsAtTheBoundaries) {
  for (size_t n : {0u, 1u, 125u, 126u, 65535u, 65536u, 70000u}) {
    std::string out;
    appendTextFrame(out, std::string(n, 'x'));
    const size_t head = n < 126 ? 2 : n < 65536 ? 4 : 10;
    ASSERT_EQ(out.size(), head + n) << n;
    EXPECT_EQ(static_cast<unsigned char>(out[0]), 0x81) << n;
    const auto b1 = static_cast<unsigned char>(out[1]);
    EXPECT_EQ(b1 & 0x80, 0) << "server frames are never masked";
    if (n < 126) {
      EXPECT_EQ(b1, n);
    } else if (n < 65536) {
      EXPECT_EQ(b1, 126);
      EXPECT_EQ((static_cast<unsigned char>(out[2]) << 8) | static_cast<unsigned char>(out[3]),
                static_cast<int>(n));
    } else {
      EXPECT_EQ(b1, 127);
      uint64_t len = 0;
      for (int i = 2; i < 10; ++i) len = (len << 8) | static_cast<unsigned char>(out[i]);
      EXPECT_EQ(len, n);
    }
  }
}

TEST(FrameCoalescerTest, TakesFramesInOrderWithinTheCap) {
  OutboundQueue queue;
  for (const char* p : {"one", "two", "three"}) {
    queue.offer(std::make_shared<const OutFrame>(p, kHeadroom), kRoomy);
  }
  std::string out = "stale";
  EXPECT_EQ(coalesceFrames(queue, out, kHeadroom, 1 << 16), 3u);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.bytes(), 0u);
  EXPECT_EQ(out.substr(kHeadroom), std::string("\x81\x03one\x81\x03two\x81\x05three", 17));
}

TEST(FrameCoalescerTest, StopsAtTheCapButAlwaysTakesOne) {
  OutboundQueue queue;
  for (int i = 0; i < 3; ++i) {
    queue.offer(std::make_shared<const OutFrame>(std::string(100, 'a' + i), kHeadroom), kRoomy);
  }
  std::string out;
  // 102 bytes per framed message: a 250-byte cap takes two.
  EXPECT_EQ(coalesceFrames(queue, out, kHeadroom, 250), 2u);
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_EQ(queue.bytes(), 100u);
  // A frame larger than the cap still goes, alone.
  EXPECT_EQ(coalesceFrames(queue, out, kHeadroom, 10), 1u);
  EXPECT_EQ(out.size(), kHeadroom + 102);
  EXPECT_EQ(header(out.substr(kHeadroom)).substr(0, 2), std::string("\x81\x64", 2));
}

}  // namespace
}  // namespace wsfleet
