#pragma once
// Comparison of secrets (MACs, API keys) whose running time does not depend on where the
// inputs first differ, so a remote caller cannot find a secret byte by byte by timing.

#include <cstddef>
#include <string_view>

namespace wsfleet {

inline bool constantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;  // lengths are not secret here
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(static_cast<unsigned char>(a[i]) ^
                                       static_cast<unsigned char>(b[i]));
  }
  return diff == 0;
}

}  // namespace wsfleet
