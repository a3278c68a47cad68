#include "edge/peer_message.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

PeerMessage sample() {
  PeerMessage m;
  m.kind = PeerMessage::Kind::kChannel;
  m.tenant = "acme";
  m.target = "chat:room";
  m.epoch = "e1";
  m.offset = 18446744073709551615ull;
  m.origin_ts_ms = 1764300000000;
  m.frame = std::string("{\"type\":\"message\"}\0binary", 26);
  m.coalescing_key = "chat:room\nalice";
  m.from = "bob";
  return m;
}

TEST(PeerMessageTest, RoundTripsEveryField) {
  const PeerMessage m = sample();
  auto decoded = decodePeerMessage(encodePeerMessage(m));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->kind, m.kind);
  EXPECT_EQ(decoded->tenant, m.tenant);
  EXPECT_EQ(decoded->target, m.target);
  EXPECT_EQ(decoded->epoch, m.epoch);
  EXPECT_EQ(decoded->offset, m.offset);
  EXPECT_EQ(decoded->origin_ts_ms, m.origin_ts_ms);
  EXPECT_EQ(decoded->frame, m.frame);
  EXPECT_EQ(decoded->coalescing_key, m.coalescing_key);
  EXPECT_EQ(decoded->from, m.from);
}

TEST(PeerMessageTest, StoredMessagesRoundTrip) {
  PeerMessage m = sample();
  m.kind = PeerMessage::Kind::kStored;
  m.epoch.clear();
  m.offset = 0;
  m.frame = R"({"text":"hi"})";
  auto decoded = decodePeerMessage(encodePeerMessage(m));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->kind, PeerMessage::Kind::kStored);
  EXPECT_EQ(decoded->from, "bob");
  EXPECT_EQ(decoded->frame, m.frame);
}

TEST(PeerMessageTest, StoredMessagesCarryTheirGeneration) {
  PeerMessage m = sample();
  m.kind = PeerMessage::Kind::kStored;
  m.generation = 7;
  auto decoded = decodePeerMessage(encodePeerMessage(m));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->generation, 7u);
}

TEST(PeerMessageTest, ReadsVersionTwoAsGenerationZero) {
  // What a history stream written before ownership moves still holds: version 2, no
  // generation field.
  PeerMessage m = sample();
  m.kind = PeerMessage::Kind::kStored;
  std::string bytes = encodePeerMessage(m);
  bytes.resize(bytes.size() - 8);  // the generation, last
  bytes[1] = 2;
  auto decoded = decodePeerMessage(bytes);
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->generation, 0u);
  EXPECT_EQ(decoded->from, m.from);
  bytes[1] = 1;  // older than that: refused
  EXPECT_FALSE(decodePeerMessage(bytes).has_value());
}

TEST(PeerMessageTest, UserMessagesRoundTrip) {
  PeerMessage m = sample();
  m.kind = PeerMessage::Kind::kUser;
  m.epoch.clear();
  m.offset = 0;
  auto decoded = decodePeerMessage(encodePeerMessage(m));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->kind, PeerMessage::Kind::kUser);
}

TEST(PeerMessageTest, RefusesEveryTruncation) {
  const std::string bytes = encodePeerMessage(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decodePeerMessage(std::string_view(bytes).substr(0, n)).has_value()) << n;
  }
}

TEST(PeerMessageTest, RefusesTrailingBytesBadMagicVersionAndKind) {
  std::string bytes = encodePeerMessage(sample());
  EXPECT_FALSE(decodePeerMessage(bytes + "x").has_value());
  for (size_t i = 0; i < 3; ++i) {
    std::string bad = bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x40);
    EXPECT_FALSE(decodePeerMessage(bad).has_value()) << i;
  }
}

TEST(PeerMessageTest, RefusesLengthsPointingPastTheEnd) {
  std::string bytes = encodePeerMessage(sample());
  bytes[3] = static_cast<char>(0x7f);  // the tenant's length: now about 2 GB
  EXPECT_FALSE(decodePeerMessage(bytes).has_value());
}

}  // namespace
}  // namespace wsfleet
