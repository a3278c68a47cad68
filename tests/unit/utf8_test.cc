#include "common/utf8.h"

#include <gtest/gtest.h>

#include <string_view>

namespace wsfleet {
namespace {

using std::string_view_literals::operator""sv;

TEST(DecodeUtf8Test, AcceptsWellFormedRefusesRest) {
  uint32_t cp = 0;
  EXPECT_EQ(decodeUtf8At("A", 0, &cp), 1u);
  EXPECT_EQ(cp, 0x41u);
  EXPECT_EQ(decodeUtf8At("\xC3\xA9", 0, &cp), 2u);
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(decodeUtf8At("\xF0\x9F\x98\x80", 0, &cp), 4u);
  EXPECT_EQ(cp, 0x1F600u);
  EXPECT_EQ(decodeUtf8At("\xF4\x8F\xBF\xBF", 0, &cp), 4u);
  EXPECT_EQ(cp, 0x10FFFFu);
  EXPECT_EQ(decodeUtf8At("\xC1\xBF", 0, &cp), 0u);
  EXPECT_EQ(decodeUtf8At("\xE0\x9F\xBF", 0, &cp), 0u);
  EXPECT_EQ(decodeUtf8At("\xED\xBF\xBF", 0, &cp), 0u);
  EXPECT_EQ(decodeUtf8At("\xF4\x90\x80\x80", 0, &cp), 0u);
  EXPECT_EQ(decodeUtf8At("\xF0\x9F\x98", 0, &cp), 0u);
  EXPECT_EQ(decodeUtf8At("\x80", 0, &cp), 0u);
  EXPECT_EQ(decodeUtf8At("", 0, &cp), 0u);
}

TEST(DecodeUtf8Test, DecodesAtAnOffsetAndStopsAtTheEnd) {
  uint32_t cp = 0;
  const std::string_view s = "a\xC3\xA9\xE2\x80\xA8";
  EXPECT_EQ(decodeUtf8At(s, 1, &cp), 2u);
  EXPECT_EQ(cp, 0xE9u);
  EXPECT_EQ(decodeUtf8At(s, 3, &cp), 3u);
  EXPECT_EQ(cp, 0x2028u);
  EXPECT_EQ(decodeUtf8At(s, 2, &cp), 0u);  // a continuation byte is no start
  EXPECT_EQ(decodeUtf8At(s, s.size(), &cp), 0u);
  EXPECT_EQ(decodeUtf8At("\0"sv, 0, &cp), 1u);
  EXPECT_EQ(cp, 0u);
}

TEST(Utf8IllFormedLengthTest, CoversTheMaximalSubpart) {
  // Leads that can never start a sequence, and stray continuation bytes: one byte each.
  EXPECT_EQ(utf8IllFormedLength("\xC0\xAF", 0), 1u);
  EXPECT_EQ(utf8IllFormedLength("\xF5\x80\x80\x80", 0), 1u);
  EXPECT_EQ(utf8IllFormedLength("\x80\x80", 0), 1u);
  // Truncated sequences: the lead and every continuation that could still belong to it.
  EXPECT_EQ(utf8IllFormedLength("\xE2\x82", 0), 2u);
  EXPECT_EQ(utf8IllFormedLength("\xF0\x9F\x98", 0), 3u);
  EXPECT_EQ(utf8IllFormedLength("\xF0\x9F\x98!", 0), 3u);
  // A second byte outside the lead's narrowed range ends the subpart at the lead.
  EXPECT_EQ(utf8IllFormedLength("\xE0\x80\x80", 0), 1u);      // overlong
  EXPECT_EQ(utf8IllFormedLength("\xED\xA0\x80", 0), 1u);      // surrogate
  EXPECT_EQ(utf8IllFormedLength("\xF4\x90\x80\x80", 0), 1u);  // past U+10FFFF
  EXPECT_EQ(utf8IllFormedLength("x\xE2\x82", 1), 2u);
}

}  // namespace
}  // namespace wsfleet
