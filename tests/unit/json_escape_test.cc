#include "common/json_escape.h"

#include <gtest/gtest.h>

#include <string>

namespace wsfleet {
namespace {

std::string asciiEscape(unsigned char c) {
  std::string out;
  appendJsonAsciiEscape(out, c);
  return out;
}

TEST(JsonEscapeTest, ShortFormsWhereJsonHasThem) {
  EXPECT_EQ(asciiEscape('"'), "\\\"");
  EXPECT_EQ(asciiEscape('\\'), "\\\\");
  EXPECT_EQ(asciiEscape('\n'), "\\n");
  EXPECT_EQ(asciiEscape('\r'), "\\r");
  EXPECT_EQ(asciiEscape('\t'), "\\t");
  EXPECT_EQ(asciiEscape('\b'), "\\b");
  EXPECT_EQ(asciiEscape('\f'), "\\f");
}

TEST(JsonEscapeTest, OtherBytesAsLowercaseUnicodeEscapes) {
  EXPECT_EQ(asciiEscape(0x00), "\\u0000");
  EXPECT_EQ(asciiEscape(0x1f), "\\u001f");
  EXPECT_EQ(asciiEscape(0x7f), "\\u007f");
  std::string out = "x";
  appendJsonUnicodeEscape(out, 0x2028);
  appendJsonUnicodeEscape(out, 0xFFFD);
  EXPECT_EQ(out, "x\\u2028\\ufffd");
}

}  // namespace
}  // namespace wsfleet
