#include "edge/presence_replication.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

PresenceMessage sample() {
  PresenceMessage m;
  m.type = PresenceMessage::Type::kPage;
  m.instance = "edge-1/42/ab12";
  m.seq = 7;
  m.cursor = 99;
  m.last = true;
  PresenceOp add;
  add.kind = PresenceOp::Kind::kAdd;
  add.conn = {"edge-1-42-1-ff", "demo", "alice", "phone", 1764300000123, "ignored"};
  PresenceOp join;
  join.kind = PresenceOp::Kind::kJoin;
  join.conn.conn_id = "edge-1-42-1-ff";
  join.conn.tenant = "demo";
  join.conn.user = "alice";
  join.channel = "chat:room";
  m.ops = {add, join};
  return m;
}

TEST(PresenceMessageTest, RoundTrips) {
  const PresenceMessage m = sample();
  auto decoded = decodePresenceMessage(encodePresenceMessage(m));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->type, m.type);
  EXPECT_EQ(decoded->instance, m.instance);
  EXPECT_EQ(decoded->seq, 7u);
  EXPECT_EQ(decoded->cursor, 99u);
  EXPECT_TRUE(decoded->last);
  ASSERT_EQ(decoded->ops.size(), 2u);
  EXPECT_EQ(decoded->ops[0].kind, PresenceOp::Kind::kAdd);
  EXPECT_EQ(decoded->ops[0].conn.user, "alice");
  EXPECT_EQ(decoded->ops[0].conn.device, "phone");
  EXPECT_EQ(decoded->ops[0].conn.connected_at_ms, 1764300000123);
  EXPECT_TRUE(decoded->ops[0].conn.address.empty()) << "addresses never leave the host";
  EXPECT_EQ(decoded->ops[1].channel, "chat:room");
}

TEST(PresenceMessageTest, RefusesTruncationTrailingBytesAndLies) {
  const std::string bytes = encodePresenceMessage(sample());
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(decodePresenceMessage(std::string_view(bytes).substr(0, n))) << n;
  }
  EXPECT_FALSE(decodePresenceMessage(bytes + "x"));
  std::string bad_type = bytes;
  bad_type[2] = 9;
  EXPECT_FALSE(decodePresenceMessage(bad_type));
  // An op count of 2^60 must be refused before anything is allocated for it.
  PresenceMessage empty;
  std::string huge = encodePresenceMessage(empty);
  huge[huge.size() - 8] = 0x10;
  EXPECT_FALSE(decodePresenceMessage(huge));
}

}  // namespace
}  // namespace wsfleet
