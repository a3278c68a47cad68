#include "edge/operator_auth.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

TEST(OperatorAuth, LoopbackAddresses) {
  EXPECT_TRUE(isLoopbackAddress("127.0.0.1"));
  EXPECT_TRUE(isLoopbackAddress("127.255.3.4"));
  EXPECT_TRUE(isLoopbackAddress("::1"));
  EXPECT_TRUE(isLoopbackAddress("::ffff:127.0.0.1"));
  EXPECT_FALSE(isLoopbackAddress("10.0.0.1"));
  EXPECT_FALSE(isLoopbackAddress("128.0.0.1"));
  EXPECT_FALSE(isLoopbackAddress("::ffff:10.0.0.1"));
  EXPECT_FALSE(isLoopbackAddress("::2"));
  EXPECT_FALSE(isLoopbackAddress(""));
  EXPECT_FALSE(isLoopbackAddress("localhost"));
  EXPECT_FALSE(isLoopbackAddress("127.0.0.1x"));
}

TEST(OperatorAuth, WithoutATokenOnlyLoopbackPeers) {
  EXPECT_TRUE(checkOperator("", "", "127.0.0.1").isOk());
  EXPECT_TRUE(checkOperator("", "anything", "::1").isOk());
  Status remote = checkOperator("", "", "192.0.2.7");
  EXPECT_EQ(remote.code(), Code::kForbidden);
  EXPECT_STREQ(remote.reason(), "operator_loopback_only");
}

TEST(OperatorAuth, WithATokenItIsRequiredFromEveryPeer) {
  const char* token = "operator-token-0123456789";
  EXPECT_TRUE(checkOperator(token, token, "192.0.2.7").isOk());
  EXPECT_TRUE(checkOperator(token, token, "127.0.0.1").isOk());
  Status missing = checkOperator(token, "", "127.0.0.1");
  EXPECT_EQ(missing.code(), Code::kUnauthorized);
  EXPECT_STREQ(missing.reason(), "operator_token_missing");
  Status wrong = checkOperator(token, "operator-token-0123456780", "127.0.0.1");
  EXPECT_EQ(wrong.code(), Code::kUnauthorized);
  EXPECT_STREQ(wrong.reason(), "operator_token_invalid");
  EXPECT_FALSE(checkOperator(token, "operator-token", "127.0.0.1").isOk());
}

}  // namespace
}  // namespace wsfleet
