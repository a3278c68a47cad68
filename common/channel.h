#pragma once
// Channel names, user ids and permission patterns (protocol v1, "Channel names").
// A channel is segments joined by ':' and the first segment is the namespace:
// each segment 1..64 chars of [A-Za-z0-9_\-@=+,], at least two segments, <= 200 bytes.

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace wsfleet {

constexpr size_t kMaxChannelBytes = 200;
constexpr size_t kMaxSegmentBytes = 64;
constexpr size_t kMaxUserIdBytes = 128;

// Code::kBadRequest with reason "bad_channel" and a message naming the problem (the
// offending byte is described, never echoed raw when it is a control character).
Status validateChannelName(std::string_view channel);

// The namespace (first segment) of a channel that passed validateChannelName.
std::string_view channelNamespace(std::string_view channel);

// User ids (token `sub`, `send.user`): 1..128 bytes of printable ASCII except space,
// '"' and '\\', or any valid UTF-8 >= U+0080; no control characters. Code::kBadRequest
// reason "bad_user".
Status validateUserId(std::string_view user);

// Permission pattern: segments as channel names, or '*' (exactly one segment) or '>'
// (one or more remaining segments, last position only). ">" alone matches everything.
class ChannelPattern {
 public:
  static Result<ChannelPattern> parse(std::string_view pattern);  // kBadRequest "bad_pattern"
  bool matches(std::string_view channel) const;
  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::vector<std::string> segments_;
};

bool matchesAny(const std::vector<ChannelPattern>& patterns, std::string_view channel);

}  // namespace wsfleet
