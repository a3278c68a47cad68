#include "tools/bench/ws_codec.h"

#include <cstring>

namespace wsfleet::bench {
namespace {

bool knownOpcode(uint8_t op) {
  return op == 0x0 || op == 0x1 || op == 0x2 || op == 0x8 || op == 0x9 || op == 0xA;
}

}  // namespace

WsFrame parseFrame(const uint8_t* data, size_t len, uint64_t max_payload) {
  WsFrame f;
  if (len < 2) return f;
  const uint8_t b0 = data[0];
  const uint8_t b1 = data[1];
  if ((b0 & 0x70) != 0 || !knownOpcode(b0 & 0x0F)) {
    f.state = ParseState::kError;
    return f;
  }
  f.fin = (b0 & 0x80) != 0;
  f.opcode = static_cast<WsOpcode>(b0 & 0x0F);
  f.masked = (b1 & 0x80) != 0;
  uint64_t plen = b1 & 0x7F;
  size_t hdr = 2;
  if (plen == 126) {
    if (len < 4) return f;
    plen = (static_cast<uint64_t>(data[2]) << 8) | data[3];
    hdr = 4;
  } else if (plen == 127) {
    if (len < 10) return f;
    plen = 0;
    for (int i = 0; i < 8; ++i) plen = (plen << 8) | data[2 + i];
    hdr = 10;
    if ((plen >> 63) != 0) {
      f.state = ParseState::kError;
      return f;
    }
  }
  const bool control = (b0 & 0x08) != 0;
  if (control && (plen > 125 || !f.fin)) {
    f.state = ParseState::kError;
    return f;
  }
  if (plen > max_payload) {
    f.state = ParseState::kError;
    return f;
  }
  if (f.masked) {
    if (len < hdr + 4) return f;
    std::memcpy(&f.mask_key, data + hdr, 4);
    hdr += 4;
  }
  f.header_bytes = hdr;
  f.payload_bytes = plen;
  if (len - hdr >= plen) f.state = ParseState::kFrame;
  return f;
}

void applyMask(uint8_t* payload, size_t len, uint32_t mask_key) {
  // mask_key holds the wire bytes in memory order, so a 64-bit word of two copies lines
  // up with any 8-byte-aligned offset from the payload start.
  uint64_t wide = (static_cast<uint64_t>(mask_key) << 32) | mask_key;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t w;
    std::memcpy(&w, payload + i, 8);
    w ^= wide;
    std::memcpy(payload + i, &w, 8);
  }
  uint8_t key[4];
  std::memcpy(key, &mask_key, 4);
  for (; i < len; ++i) payload[i] ^= key[i & 3];
}

size_t frameHeaderBytes(size_t payload_len, bool mask) {
  size_t n = payload_len < 126 ? 2 : (payload_len <= 0xFFFF ? 4 : 10);
  return n + (mask ? 4 : 0);
}

void appendFrame(std::string& out, WsOpcode opcode, std::string_view payload, bool mask,
                 uint32_t mask_key) {
  const size_t start = out.size();
  const size_t hdr = frameHeaderBytes(payload.size(), mask);
  out.resize(start + hdr + payload.size());
  auto* p = reinterpret_cast<uint8_t*>(out.data() + start);
  p[0] = static_cast<uint8_t>(0x80 | static_cast<uint8_t>(opcode));
  const uint8_t mask_bit = mask ? 0x80 : 0;
  size_t at = 2;
  if (payload.size() < 126) {
    p[1] = static_cast<uint8_t>(mask_bit | payload.size());
  } else if (payload.size() <= 0xFFFF) {
    p[1] = mask_bit | 126;
    p[2] = static_cast<uint8_t>(payload.size() >> 8);
    p[3] = static_cast<uint8_t>(payload.size());
    at = 4;
  } else {
    p[1] = mask_bit | 127;
    uint64_t n = payload.size();
    for (int i = 7; i >= 0; --i) {
      p[2 + i] = static_cast<uint8_t>(n);
      n >>= 8;
    }
    at = 10;
  }
  if (mask) {
    std::memcpy(p + at, &mask_key, 4);
    at += 4;
  }
  if (!payload.empty()) std::memcpy(p + at, payload.data(), payload.size());
  if (mask) applyMask(p + at, payload.size(), mask_key);
}

}  // namespace wsfleet::bench
