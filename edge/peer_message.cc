#include "edge/peer_message.h"

namespace wsfleet {

namespace {

constexpr uint8_t kMagic = 0xF1;
constexpr uint8_t kVersion = 2;  // 2: kStored and `from`

void putU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void putU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
void putBytes(std::string& out, std::string_view bytes) {
  putU32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v) {
    if (in_.size() < 1) return false;
    v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool u64(uint64_t& v) {
    if (in_.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(8);
    return true;
  }
  bool bytes(std::string& v) {
    if (in_.size() < 4) return false;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n = (n << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(4);
    if (in_.size() < n) return false;
    v.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool done() const { return in_.empty(); }

 private:
  std::string_view in_;
};

}  // namespace

std::string encodePeerMessage(const PeerMessage& m) {
  std::string out;
  out.reserve(36 + m.from.size() + m.tenant.size() + m.target.size() + m.epoch.size() + m.frame.size());
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
  return out;
}

std::optional<PeerMessage> decodePeerMessage(std::string_view bytes) {
  Reader r(bytes);
  uint8_t magic = 0, version = 0, kind = 0;
  if (!r.u8(magic) || magic != kMagic || !r.u8(version) || version != kVersion || !r.u8(kind)) {
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
      !r.u64(ts) || !r.bytes(m.frame) ||
      !r.bytes(m.coalescing_key) || !r.bytes(m.from) || !r.done()) {
    return std::nullopt;
  }
  m.origin_ts_ms = static_cast<int64_t>(ts);
  return m;
}

}  // namespace wsfleet
