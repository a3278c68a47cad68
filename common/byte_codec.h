#pragma once
// The framing of wsfleet's own binary messages (host bus, region subjects): big-endian
// integers and byte strings prefixed with their u32 length. Readers never read past the
// end: every method returns false instead.

#include <cstdint>
#include <string>
#include <string_view>

namespace wsfleet {

inline void putU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline void putU64(std::string& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}

inline void putBytes(std::string& out, std::string_view bytes) {
  putU32(out, static_cast<uint32_t>(bytes.size()));
  out.append(bytes);
}

class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v) {
    if (in_.empty()) return false;
    v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool u32(uint32_t& v) {
    uint64_t wide = 0;
    if (!take(4, wide)) return false;
    v = static_cast<uint32_t>(wide);
    return true;
  }
  bool u64(uint64_t& v) { return take(8, v); }
  bool bytes(std::string& v) {
    uint32_t n = 0;
    if (!u32(n) || in_.size() < n) return false;
    v.assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  size_t left() const { return in_.size(); }
  bool done() const { return in_.empty(); }

 private:
  bool take(size_t n, uint64_t& v) {
    if (in_.size() < n) return false;
    v = 0;
    for (size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(in_[i]);
    in_.remove_prefix(n);
    return true;
  }
  std::string_view in_;
};

}  // namespace wsfleet
