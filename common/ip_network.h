#pragma once
// IP addresses and networks (CIDR) for per-address limits and allowlists. IPv4 addresses
// are held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one comparison serves both families
// and a v4 client seen through a dual-stack socket matches its v4 rule.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsfleet {

struct IpAddress {
  std::array<uint8_t, 16> bytes{};
  bool isV4() const;
};

struct IpNetwork {
  IpAddress base;       // host bits cleared
  int prefix_bits = 0;  // of the 128-bit form (an IPv4 /24 is 96 + 24)
  bool contains(const IpAddress& address) const;
};

// A textual IPv4 or IPv6 address (an IPv6 zone "%eth0" is ignored). False when it is not one.
bool parseIpAddress(std::string_view text, IpAddress* out);

// "10.0.0.0/8", "2001:db8::/32" or a single address ("127.0.0.1" = /32, "::1" = /128).
// Returns "" when fine, else what is wrong; host bits set below the prefix are an error
// because they usually mean a typo in the prefix.
std::string parseIpNetwork(std::string_view text, IpNetwork* out);

// The key a client is limited under: its IPv4 address, or the /64 of an IPv6 address
// (one subscriber usually has a whole /64, so per-address limits would be moot), as a
// short binary string. A peer that is not an address is keyed by its text.
std::string ipLimitKey(std::string_view peer);

}  // namespace wsfleet
