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
  const size_t tail = text.size() % 4;
  if (tail == 1) return std::nullopt;
  // Every token of every handshake passes through here: whole groups of four characters
  // are decoded into a pre-sized string, three bytes at a time, with no per-byte append.
  std::string out(text.size() / 4 * 3 + (tail == 0 ? 0 : tail - 1), '\0');
  const auto* in = reinterpret_cast<const unsigned char*>(text.data());
  char* dst = out.data();
  const size_t whole = text.size() - tail;
  for (size_t i = 0; i < whole; i += 4) {
    const int32_t a = kBase64UrlDecode[in[i]];
    const int32_t b = kBase64UrlDecode[in[i + 1]];
    const int32_t c = kBase64UrlDecode[in[i + 2]];
    const int32_t d = kBase64UrlDecode[in[i + 3]];
    if ((a | b | c | d) < 0) return std::nullopt;
    const uint32_t group = static_cast<uint32_t>(a << 18 | b << 12 | c << 6 | d);
    *dst++ = static_cast<char>(group >> 16);
    *dst++ = static_cast<char>((group >> 8) & 0xFF);
    *dst++ = static_cast<char>(group & 0xFF);
  }
  if (tail != 0) {
    uint32_t group = 0;
    for (size_t i = 0; i < tail; ++i) {
      const int32_t v = kBase64UrlDecode[in[whole + i]];
      if (v < 0) return std::nullopt;
      group = group << 6 | static_cast<uint32_t>(v);
    }
    // 2 characters = 12 bits = 1 byte + 4 unused bits; 3 characters = 2 bytes + 2 bits.
    // The unused bits must be zero, so that each byte string has exactly one encoding.
    const int unused = tail == 2 ? 4 : 2;
    if ((group & ((1u << unused) - 1)) != 0) return std::nullopt;
    group >>= unused;
    if (tail == 3) *dst++ = static_cast<char>(group >> 8);
    *dst++ = static_cast<char>(group & 0xFF);
  }
  return out;
}

}  // namespace wsfleet
