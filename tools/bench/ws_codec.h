#pragma once
// WebSocket framing for the load generator (RFC 6455 section 5), client side: frames the
// bench sends are masked, frames it receives are not. Pure functions over caller buffers:
// no allocation beyond appending to the output string, no I/O, so the hot path can parse
// many frames out of one recv() buffer in place.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsfleet::bench {

enum class WsOpcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

enum class ParseState { kNeedMore, kFrame, kError };

struct WsFrame {
  ParseState state = ParseState::kNeedMore;
  WsOpcode opcode = WsOpcode::kText;
  bool fin = true;
  bool masked = false;
  uint32_t mask_key = 0;      // as the 4 bytes appear on the wire, first byte lowest
  size_t header_bytes = 0;    // bytes before the payload
  uint64_t payload_bytes = 0;
  // Total bytes the frame occupies in the buffer (header + payload) when state == kFrame.
  size_t totalBytes() const { return header_bytes + static_cast<size_t>(payload_bytes); }
};

// Looks at the first frame in [data, data+len). kNeedMore when the header or the payload
// is incomplete (header_bytes / payload_bytes are filled once the header is complete, so
// the caller can grow its buffer); kError for reserved bits, unknown opcodes, a 64-bit
// length with the top bit set, payloads over max_payload, or a malformed control frame.
WsFrame parseFrame(const uint8_t* data, size_t len, uint64_t max_payload);

// XORs payload with the 4-byte mask, eight bytes at a time. Its own inverse.
void applyMask(uint8_t* payload, size_t len, uint32_t mask_key);

// Appends one complete frame (FIN set) to out. mask_key is used when `mask` is true (the
// client side must mask; tests also build unmasked server frames with it).
void appendFrame(std::string& out, WsOpcode opcode, std::string_view payload, bool mask,
                 uint32_t mask_key);

// Bytes of header appendFrame() writes for a payload of this size.
size_t frameHeaderBytes(size_t payload_len, bool mask);

}  // namespace wsfleet::bench
