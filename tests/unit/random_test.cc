#include "common/random.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>

namespace wsfleet {
namespace {

bool isLowerHex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

TEST(RandomTest, HexHasTwoDigitsPerByte) {
  for (size_t bytes : {0u, 1u, 4u, 16u, 33u}) {
    const std::string hex = randomHex(bytes);
    EXPECT_EQ(hex.size(), 2 * bytes);
    EXPECT_TRUE(isLowerHex(hex)) << hex;
    Result<std::string> tried = tryRandomHex(bytes);
    ASSERT_TRUE(tried) << tried.status().toString();
    EXPECT_EQ(tried->size(), 2 * bytes);
    EXPECT_TRUE(isLowerHex(*tried)) << *tried;
  }
}

TEST(RandomTest, IdsDoNotRepeat) {
  // 128-bit ids: a repeat among a thousand would mean the source is not random at all.
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(randomHex(16)).second);
}

TEST(RandomTest, FillsLargeBuffersCompletely) {
  // Far more than one getrandom call promises to return at once (256 bytes), so a short
  // read must be continued. Were only a prefix filled, most byte values would be missing;
  // by chance alone one is missing with probability about 256 * e^-256.
  std::string buffer(64 * 1024, '\0');
  ASSERT_TRUE(randomBytes(buffer.data(), buffer.size()).isOk());
  std::array<bool, 256> present{};
  for (char c : buffer) present[static_cast<unsigned char>(c)] = true;
  for (size_t b = 0; b < present.size(); ++b) EXPECT_TRUE(present[b]) << "byte " << b;
  EXPECT_TRUE(randomBytes(nullptr, 0).isOk());
}

TEST(HexEncodeTest, LowercaseTwoDigitsPerByte) {
  EXPECT_EQ(hexEncode(""), "");
  EXPECT_EQ(hexEncode(std::string("\x00\x0f\xa5\xff", 4)), "000fa5ff");
  EXPECT_EQ(hexEncode("AZ"), "415a");
}

}  // namespace
}  // namespace wsfleet
