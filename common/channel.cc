#include "common/channel.h"

#include <algorithm>
#include <cstdio>

#include "common/utf8.h"

namespace wsfleet {

namespace {

bool isSegmentChar(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '@' || c == '=' || c == '+' || c == ',';
}

// Names the byte without echoing it when it could corrupt a log line or reply:
// printable ASCII is quoted, anything else is shown in hex.
std::string describeByte(unsigned char c) {
  char buf[32];
  if (c >= 0x21 && c <= 0x7E) {
    std::snprintf(buf, sizeof buf, "'%c'", c);
  } else if (c == ' ') {
    std::snprintf(buf, sizeof buf, "space");
  } else if (c < 0x80) {
    std::snprintf(buf, sizeof buf, "control byte 0x%02x", c);
  } else {
    std::snprintf(buf, sizeof buf, "non-ASCII byte 0x%02x", c);
  }
  return buf;
}

Status badChannel(std::string message) {
  return Status(Code::kBadRequest, "bad_channel", std::move(message));
}

Status badPattern(std::string message) {
  return Status(Code::kBadRequest, "bad_pattern", std::move(message));
}

// Checks one literal segment (no wildcards); `what` is "channel name" or "pattern".
// Returns an empty string when fine, else the problem.
std::string segmentProblem(std::string_view segment, size_t offset, size_t index,
                           std::string_view what) {
  if (segment.empty()) {
    return "empty segment " + std::to_string(index + 1) + " in " + std::string(what) +
           " (leading, trailing or doubled ':')";
  }
  if (segment.size() > kMaxSegmentBytes) {
    return "segment " + std::to_string(index + 1) + " of " + std::string(what) +
           " is longer than " + std::to_string(kMaxSegmentBytes) + " characters";
  }
  for (size_t i = 0; i < segment.size(); ++i) {
    const auto c = static_cast<unsigned char>(segment[i]);
    if (!isSegmentChar(c)) {
      return describeByte(c) + " at byte " + std::to_string(offset + i) + " is not allowed in a " +
             std::string(what) + " (allowed: A-Z a-z 0-9 _ - @ = + ,)";
    }
  }
  return {};
}

// Splits on ':' and calls fn(segment, offset, index) until fn returns false.
template <class Fn>
void forEachSegment(std::string_view text, Fn&& fn) {
  size_t start = 0;
  size_t index = 0;
  while (true) {
    const size_t colon = text.find(':', start);
    const size_t end = colon == std::string_view::npos ? text.size() : colon;
    if (!fn(text.substr(start, end - start), start, index)) return;
    if (colon == std::string_view::npos) return;
    start = colon + 1;
    ++index;
  }
}

}  // namespace

Status validateChannelName(std::string_view channel) {
  if (channel.empty()) return badChannel("channel name is empty");
  // Length first, so a huge name costs nothing more than this comparison.
  if (channel.size() > kMaxChannelBytes) {
    return badChannel("channel name is " + std::to_string(channel.size()) + " bytes, longer than " +
                      std::to_string(kMaxChannelBytes));
  }
  std::string problem;
  size_t segments = 0;
  forEachSegment(channel, [&](std::string_view segment, size_t offset, size_t index) {
    problem = segmentProblem(segment, offset, index, "channel name");
    ++segments;
    return problem.empty();
  });
  if (!problem.empty()) return badChannel(std::move(problem));
  if (segments < 2) {
    return badChannel("channel name needs a namespace and at least one more segment ('ns:name')");
  }
  return Status::ok();
}

std::string_view channelNamespace(std::string_view channel) {
  return channel.substr(0, channel.find(':'));
}

Status validateUserId(std::string_view user) {
  if (user.empty()) return Status(Code::kBadRequest, "bad_user", "user id is empty");
  if (user.size() > kMaxUserIdBytes) {
    return Status(Code::kBadRequest, "bad_user",
                  "user id is " + std::to_string(user.size()) + " bytes, longer than " +
                      std::to_string(kMaxUserIdBytes));
  }
  size_t i = 0;
  while (i < user.size()) {
    const auto c = static_cast<unsigned char>(user[i]);
    if (c < 0x80) {
      if (c <= 0x20 || c == 0x7F || c == '"' || c == '\\') {
        return Status(
            Code::kBadRequest, "bad_user",
            describeByte(c) + " at byte " + std::to_string(i) + " is not allowed in a user id");
      }
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const size_t len = decodeUtf8At(user, i, &cp);
    if (len == 0) {
      return Status(Code::kBadRequest, "bad_user",
                    "user id is not valid UTF-8 at byte " + std::to_string(i));
    }
    // C1 controls (U+0080..U+009F) are control characters too.
    if (cp <= 0x9F) {
      return Status(
          Code::kBadRequest, "bad_user",
          "control character at byte " + std::to_string(i) + " is not allowed in a user id");
    }
    i += len;
  }
  return Status::ok();
}

Result<ChannelPattern> ChannelPattern::parse(std::string_view pattern) {
  if (pattern.empty()) return badPattern("pattern is empty");
  if (pattern.size() > kMaxChannelBytes) {
    return badPattern("pattern is " + std::to_string(pattern.size()) + " bytes, longer than " +
                      std::to_string(kMaxChannelBytes));
  }
  ChannelPattern out;
  out.text_ = std::string(pattern);
  std::string problem;
  bool saw_rest = false;
  forEachSegment(pattern, [&](std::string_view segment, size_t offset, size_t index) {
    if (saw_rest) {
      problem = "'>' must be the last segment of a pattern";
      return false;
    }
    if (segment == ">") {
      saw_rest = true;
    } else if (segment != "*") {
      problem = segmentProblem(segment, offset, index, "pattern");
      if (!problem.empty()) return false;
    }
    out.segments_.emplace_back(segment);
    return true;
  });
  if (!problem.empty()) return badPattern(std::move(problem));
  // Channels have at least two segments; a pattern that can never match one is
  // almost certainly a typo for "ns:>" and is refused rather than silently inert.
  if (!saw_rest && out.segments_.size() < 2) {
    return badPattern("pattern can never match a channel (needs two segments, or '>')");
  }
  return out;
}

bool ChannelPattern::matches(std::string_view channel) const {
  size_t pos = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    const std::string& want = segments_[i];
    if (pos > channel.size()) return false;        // channel ran out of segments
    if (want == ">") return pos < channel.size();  // one or more remaining segments
    const size_t colon = channel.find(':', pos);
    const size_t end = colon == std::string_view::npos ? channel.size() : colon;
    const std::string_view got = channel.substr(pos, end - pos);
    if (want == "*") {
      if (got.empty()) return false;
    } else if (got != want) {
      return false;
    }
    // One past the end marks "no segments left".
    pos = colon == std::string_view::npos ? channel.size() + 1 : colon + 1;
  }
  return pos == channel.size() + 1;
}

bool matchesAny(const std::vector<ChannelPattern>& patterns, std::string_view channel) {
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const ChannelPattern& p) { return p.matches(channel); });
}

}  // namespace wsfleet
