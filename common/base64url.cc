#include "common/token.h"

#include <array>
#include <cstdint>

namespace wsfleet {
namespace {

constexpr char kBase64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

constexpr std::array<int8_t, 256> makeDecodeTable() {
  std::array<int8_t, 256> table{};
  for (auto& v : table) v = -1;
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kBase64UrlAlphabet[i])] = i;
  return table;
}
constexpr std::array<int8_t, 256> kBase64UrlDecode = makeDecodeTable();

}  // namespace

std::string base64UrlEncode(std::string_view input) {
  std::string out;
  out.reserve((input.size() * 4 + 2) / 3);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : input) {
    acc = ((acc << 8) | static_cast<unsigned char>(ch)) & 0xFFFF;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64UrlAlphabet[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kBase64UrlAlphabet[(acc << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> base64UrlDecode(std::string_view text) {
  // One leftover character carries only 6 bits: never a whole byte.
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : text) {
    int8_t v = kBase64UrlDecode[static_cast<unsigned char>(ch)];
    if (v < 0) return std::nullopt;
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0x3FFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  // Unused trailing bits must be zero, so that each byte string has exactly one encoding.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

}  // namespace wsfleet
