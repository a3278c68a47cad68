#include "common/status.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

Result<int> half(int v) {
  if (v % 2 != 0) return Status(Code::kBadRequest, "odd", "odd value");
  return v / 2;
}

Status quarter(int v, int* out) {
  WSF_ASSIGN_OR_RETURN(int h, half(v));
  WSF_ASSIGN_OR_RETURN(*out, half(h));
  return Status::ok();
}

TEST(StatusTest, OkAndError) {
  EXPECT_TRUE(Status::ok().isOk());
  Status s(Code::kTooLarge, "frame_too_large", "frame of 70000 bytes over 65536");
  EXPECT_FALSE(s.isOk());
  EXPECT_EQ(s.toString(), "too_large/frame_too_large: frame of 70000 bytes over 65536");
  EXPECT_EQ(codeName(Code::kRateLimited), "rate_limited");
}

TEST(StatusTest, ResultPropagates) {
  int out = 0;
  EXPECT_TRUE(quarter(8, &out).isOk());
  EXPECT_EQ(out, 2);
  Status s = quarter(6, &out);
  EXPECT_EQ(s.code(), Code::kBadRequest);
  EXPECT_STREQ(s.reason(), "odd");
}

}  // namespace
}  // namespace wsfleet
