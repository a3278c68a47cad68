#include "tools/bench/ws_codec.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace wsfleet::bench {
namespace {

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Builds an unmasked server frame and parses it back.
WsFrame roundTrip(size_t payload_len, std::string* wire) {
  appendFrame(*wire, WsOpcode::kBinary, std::string(payload_len, 'a'), false, 0);
  return parseFrame(bytes(*wire), wire->size(), 1u << 24);
}

TEST(BenchWsCodec, LengthEncodingsAtTheirBoundaries) {
  struct Case {
    size_t len;
    size_t header;
  } cases[] = {{0, 2}, {125, 2}, {126, 4}, {65535, 4}, {65536, 10}, {70000, 10}};
  for (const Case& c : cases) {
    std::string wire;
    const WsFrame f = roundTrip(c.len, &wire);
    ASSERT_EQ(f.state, ParseState::kFrame) << c.len;
    EXPECT_EQ(f.header_bytes, c.header) << c.len;
    EXPECT_EQ(f.payload_bytes, c.len);
    EXPECT_EQ(f.totalBytes(), wire.size());
    EXPECT_EQ(f.opcode, WsOpcode::kBinary);
    EXPECT_TRUE(f.fin);
    EXPECT_EQ(frameHeaderBytes(c.len, false), c.header);
  }
}

TEST(BenchWsCodec, SixtyFourBitLengthIsBigEndian) {
  std::string wire;
  appendFrame(wire, WsOpcode::kText, std::string(0x10203, 'z'), false, 0);
  ASSERT_EQ(static_cast<uint8_t>(wire[1]), 127);
  const std::string expect_len("\x00\x00\x00\x00\x00\x01\x02\x03", 8);
  EXPECT_EQ(wire.substr(2, 8), expect_len);
}

TEST(BenchWsCodec, MaskedClientFrameUnmasksToThePayload) {
  const std::string payload = "hello, masked world: 0123456789";  // not a multiple of 8
  std::string wire;
  appendFrame(wire, WsOpcode::kText, payload, true, 0xDEADBEEF);
  EXPECT_NE(wire.find(payload), 0u);
  EXPECT_EQ(wire.find(payload), std::string::npos);  // it really is masked
  const WsFrame f = parseFrame(bytes(wire), wire.size(), 1024);
  ASSERT_EQ(f.state, ParseState::kFrame);
  EXPECT_TRUE(f.masked);
  EXPECT_EQ(f.header_bytes, 6u);
  std::string body = wire.substr(f.header_bytes);
  applyMask(reinterpret_cast<uint8_t*>(body.data()), body.size(), f.mask_key);
  EXPECT_EQ(body, payload);
}

TEST(BenchWsCodec, MaskMatchesTheBytewiseDefinition) {
  std::string data(37, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  std::string fast = data;
  const uint32_t key = 0x11223344;
  applyMask(reinterpret_cast<uint8_t*>(fast.data()), fast.size(), key);
  uint8_t k[4];
  std::memcpy(k, &key, 4);
  for (size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(static_cast<uint8_t>(fast[i]), static_cast<uint8_t>(data[i]) ^ k[i % 4]) << i;
  }
}

TEST(BenchWsCodec, SeveralFramesInOneBuffer) {
  std::string wire;
  appendFrame(wire, WsOpcode::kText, "one", false, 0);
  appendFrame(wire, WsOpcode::kPing, "p", false, 0);
  appendFrame(wire, WsOpcode::kBinary, std::string(300, 'b'), false, 0);
  std::vector<std::pair<WsOpcode, size_t>> seen;
  size_t pos = 0;
  while (pos < wire.size()) {
    const WsFrame f = parseFrame(bytes(wire) + pos, wire.size() - pos, 1024);
    ASSERT_EQ(f.state, ParseState::kFrame);
    seen.emplace_back(f.opcode, f.payload_bytes);
    pos += f.totalBytes();
  }
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(WsOpcode::kText, size_t{3}));
  EXPECT_EQ(seen[1], std::make_pair(WsOpcode::kPing, size_t{1}));
  EXPECT_EQ(seen[2], std::make_pair(WsOpcode::kBinary, size_t{300}));
}

TEST(BenchWsCodec, PartialFramesNeedMoreAtEveryCut) {
  std::string wire;
  appendFrame(wire, WsOpcode::kText, std::string(200, 'q'), true, 0x01020304);
  for (size_t cut = 0; cut < wire.size(); ++cut) {
    const WsFrame f = parseFrame(bytes(wire), cut, 1024);
    EXPECT_EQ(f.state, ParseState::kNeedMore) << cut;
    if (cut >= 8) {  // 2 + 2 length + 4 mask: header known, payload pending
      EXPECT_EQ(f.header_bytes, 8u) << cut;
      EXPECT_EQ(f.payload_bytes, 200u) << cut;
    }
  }
  EXPECT_EQ(parseFrame(bytes(wire), wire.size(), 1024).state, ParseState::kFrame);
}

TEST(BenchWsCodec, RefusesBadFrames) {
  const uint8_t rsv[] = {0xC1, 0x00};  // RSV1
  EXPECT_EQ(parseFrame(rsv, 2, 100).state, ParseState::kError);
  const uint8_t op[] = {0x83, 0x00};  // reserved opcode 3
  EXPECT_EQ(parseFrame(op, 2, 100).state, ParseState::kError);
  const uint8_t big_ping[] = {0x89, 126, 0x00, 0x80};
  EXPECT_EQ(parseFrame(big_ping, 4, 1000).state, ParseState::kError);
  const uint8_t frag_ping[] = {0x09, 0x00};
  EXPECT_EQ(parseFrame(frag_ping, 2, 100).state, ParseState::kError);
  const uint8_t top_bit[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(parseFrame(top_bit, 10, UINT64_MAX).state, ParseState::kError);
  const uint8_t over_cap[] = {0x82, 126, 0x01, 0x00};  // 256 > 100
  EXPECT_EQ(parseFrame(over_cap, 4, 100).state, ParseState::kError);
}

TEST(BenchWsCodec, ContinuationFramesKeepFinFlag) {
  const uint8_t first[] = {0x01, 0x01, 'a'};   // text, not final
  const uint8_t last[] = {0x80, 0x01, 'b'};    // continuation, final
  WsFrame a = parseFrame(first, 3, 10);
  WsFrame b = parseFrame(last, 3, 10);
  ASSERT_EQ(a.state, ParseState::kFrame);
  ASSERT_EQ(b.state, ParseState::kFrame);
  EXPECT_FALSE(a.fin);
  EXPECT_EQ(a.opcode, WsOpcode::kText);
  EXPECT_TRUE(b.fin);
  EXPECT_EQ(b.opcode, WsOpcode::kContinuation);
}

}  // namespace
}  // namespace wsfleet::bench
