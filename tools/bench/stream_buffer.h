#pragma once
// Carries the unparsed tail of a byte stream from one WebSocket frame to the next (NATS and
// MQTT packets do not respect frame boundaries). When nothing is carried over, input is
// parsed straight from the frame; the carry buffer keeps its capacity, so the steady state
// allocates nothing.

#include <cstddef>
#include <string>
#include <string_view>

namespace wsfleet::bench {

class StreamBuffer {
 public:
  // Calls parse(view) -> bytes consumed (or SIZE_MAX on a protocol error) on the carried
  // bytes plus `input`, keeps the unconsumed tail. Returns false on a protocol error.
  template <class Parse>
  bool feed(std::string_view input, Parse&& parse) {
    if (carry_.empty()) {
      size_t used = parse(input);
      if (used == kError) return false;
      if (used < input.size()) carry_.assign(input.substr(used));
      return true;
    }
    carry_.append(input);
    size_t used = parse(std::string_view(carry_));
    if (used == kError) return false;
    carry_.erase(0, used);
    return true;
  }

  size_t carried() const { return carry_.size(); }
  static constexpr size_t kError = static_cast<size_t>(-1);

 private:
  std::string carry_;
};

}  // namespace wsfleet::bench
