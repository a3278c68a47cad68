#include "edge/peer_message.h"

#include "common/byte_codec.h"

namespace wsfleet {

namespace {

constexpr uint8_t kMagic = 0xF1;
constexpr uint8_t kVersion = 3;  // 2: kStored and `from`; 3: `generation`
// Version 2 messages (generation 0) may still sit in a history stream after an upgrade.
constexpr uint8_t kOldestReadable = 2;

}  // namespace

std::string encodePeerMessage(const PeerMessage& m) {
  std::string out;
  out.reserve(36 + m.from.size() + m.tenant.size() + m.target.size() + m.epoch.size() +
              m.frame.size());
  out.push_back(static_cast<char>(kMagic));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(m.kind));
  putBytes(out, m.tenant);
  putBytes(out, m.target);
  putBytes(out, m.epoch);
  putU64(out, m.offset);
  putU64(out, static_cast<uint64_t>(m.origin_ts_ms));
  putBytes(out, m.frame);
  putBytes(out, m.coalescing_key);
  putBytes(out, m.from);
  putU64(out, m.generation);
  return out;
}

std::optional<PeerMessage> decodePeerMessage(std::string_view bytes) {
  ByteReader r(bytes);
  uint8_t magic = 0, version = 0, kind = 0;
  if (!r.u8(magic) || magic != kMagic || !r.u8(version) || version < kOldestReadable ||
      version > kVersion || !r.u8(kind)) {
    return std::nullopt;
  }
  if (kind != static_cast<uint8_t>(PeerMessage::Kind::kChannel) &&
      kind != static_cast<uint8_t>(PeerMessage::Kind::kUser) &&
      kind != static_cast<uint8_t>(PeerMessage::Kind::kStored)) {
    return std::nullopt;
  }
  PeerMessage m;
  m.kind = static_cast<PeerMessage::Kind>(kind);
  uint64_t ts = 0;
  if (!r.bytes(m.tenant) || !r.bytes(m.target) || !r.bytes(m.epoch) || !r.u64(m.offset) ||
      !r.u64(ts) || !r.bytes(m.frame) || !r.bytes(m.coalescing_key) || !r.bytes(m.from) ||
      (version >= 3 && !r.u64(m.generation)) || !r.done()) {
    return std::nullopt;
  }
  m.origin_ts_ms = static_cast<int64_t>(ts);
  return m;
}

}  // namespace wsfleet
