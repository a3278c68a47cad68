#include "common/ip_network.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace wsfleet {

namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
constexpr int kV4PrefixBits = 96;

bool maskedEqual(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int bits) {
  for (int i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (b[i] & mask)) return false;
  }
  return true;
}

}  // namespace

bool IpAddress::isV4() const {
  return std::equal(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), bytes.begin());
}

bool IpNetwork::contains(const IpAddress& address) const {
  return maskedEqual(base.bytes, address.bytes, prefix_bits);
}

bool parseIpAddress(std::string_view text, IpAddress* out) {
  text = text.substr(0, text.find('%'));
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  char buf[INET6_ADDRSTRLEN] = {};
  std::memcpy(buf, text.data(), text.size());
  in_addr v4{};
  if (inet_pton(AF_INET, buf, &v4) == 1) {
    std::copy(kV4MappedPrefix.begin(), kV4MappedPrefix.end(), out->bytes.begin());
    std::memcpy(out->bytes.data() + 12, &v4, 4);
    return true;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, buf, &v6) == 1) {
    std::memcpy(out->bytes.data(), &v6, 16);
    return true;
  }
  return false;
}

std::string parseIpNetwork(std::string_view text, IpNetwork* out) {
  const size_t slash = text.find('/');
  IpAddress address;
  if (!parseIpAddress(text.substr(0, slash), &address) ||
      text.substr(0, slash).find('%') != std::string_view::npos) {
    return "'" + std::string(text.substr(0, 64)) + "' is not an IP address or network (CIDR)";
  }
  const int family_bits = address.isV4() ? 32 : 128;
  int bits = family_bits;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3 ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return "the prefix length after '/' must be a number";
    }
    bits = std::stoi(std::string(digits));
    if (bits > family_bits) {
      return "prefix /" + std::to_string(bits) + " is longer than the address (" +
             std::to_string(family_bits) + " bits)";
    }
  }
  const int prefix = address.isV4() ? kV4PrefixBits + bits : bits;
  IpNetwork network;
  network.prefix_bits = prefix;
  for (int i = 0, left = prefix; i < 16; ++i, left -= 8) {
    const uint8_t mask = left >= 8   ? 0xff
                         : left <= 0 ? 0
                                     : static_cast<uint8_t>(0xff << (8 - left));
    network.base.bytes[i] = address.bytes[i] & mask;
  }
  if (network.base.bytes != address.bytes) {
    return "'" + std::string(text) +
           "' has bits set after the prefix (did you mean another length?)";
  }
  *out = network;
  return "";
}

std::string ipLimitKey(std::string_view peer) {
  IpAddress address;
  // Compact binary keys, tagged so that the three kinds can never collide.
  if (!parseIpAddress(peer, &address)) return "?" + std::string(peer);
  const char* raw = reinterpret_cast<const char*>(address.bytes.data());
  if (address.isV4()) return "4" + std::string(raw + 12, 4);
  return "6" + std::string(raw, 8);
}

}  // namespace wsfleet
