#include "common/log.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <type_traits>

namespace wsfleet {

namespace {

// Atomics although they are set before threads start: reads happen on every thread and
// a relaxed load costs the same as a plain one.
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<FILE*> g_out{nullptr};  // nullptr means stderr, which is not a constant

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

char lowerAscii(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool containsIgnoreCase(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    size_t j = 0;
    while (j < needle.size() && lowerAscii(haystack[i + j]) == needle[j]) ++j;
    if (j == needle.size()) return true;
  }
  return false;
}

// Over-redacting a harmless field ("token_count") is cheap; leaking a credential is not.
bool isCredentialKey(std::string_view key) {
  static constexpr std::string_view kNeedles[] = {"token",         "api_key", "apikey",  "api-key",
                                                  "authorization", "secret",  "password"};
  for (std::string_view needle : kNeedles) {
    if (containsIgnoreCase(key, needle)) return true;
  }
  return false;
}

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlongs, no
// surrogates, nothing past U+10FFFF), or 0 when the bytes there are not one.
size_t utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  size_t len;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

// Peer input reaches logs (user ids, channel names, close reasons), so every line must
// stay one valid JSON object: control characters are escaped and bytes that are not
// UTF-8 become U+FFFD instead of breaking the consumer's parser.
void appendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\\ufffd");
        ++i;
      } else if (len == 3 && c == 0xE2 && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                 (static_cast<unsigned char>(s[i + 2]) & 0xFE) == 0xA8) {
        // U+2028 / U+2029 are valid JSON but end a line for JavaScript consumers.
        out->append(static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029");
        i += len;
      } else {
        out->append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xf]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

template <class T>
void appendNumber(std::string* out, T v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

void appendValue(std::string* out, const LogField::Value& value) {
  std::visit(
      [out](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::string_view>) {
          appendJsonString(out, v);
        } else if constexpr (std::is_same_v<T, bool>) {
          out->append(v ? "true" : "false");
        } else if constexpr (std::is_same_v<T, double>) {
          // JSON has no NaN or Infinity.
          if (std::isfinite(v)) {
            appendNumber(out, v);
          } else {
            out->append("null");
          }
        } else {
          appendNumber(out, v);
        }
      },
      value);
}

void appendTimestamp(std::string* out) {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const int n = std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                              tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                              tm.tm_sec, static_cast<int>(ms % 1000));
  if (n > 0) out->append(buf, static_cast<size_t>(n) < sizeof(buf) ? n : sizeof(buf) - 1);
}

}  // namespace

bool parseLogLevel(std::string_view text, LogLevel* out) {
  static constexpr LogLevel kLevels[] = {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn,
                                         LogLevel::kError};
  for (LogLevel level : kLevels) {
    if (text == levelName(level)) {
      *out = level;
      return true;
    }
  }
  return false;
}

void setLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

LogLevel logLevel() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

void setLogOutput(FILE* out) {
  g_out.store(out, std::memory_order_relaxed);
}

std::string formatLogLine(LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields) {
  std::string line;
  line.reserve(96 + fields.size() * 24);
  line.append("{\"ts\":\"");
  appendTimestamp(&line);
  line.append("\",\"level\":\"");
  line.append(levelName(level));
  line.append("\",\"event\":");
  appendJsonString(&line, event);
  for (const LogField& field : fields) {
    line.push_back(',');
    appendJsonString(&line, field.key);
    line.push_back(':');
    if (isCredentialKey(field.key)) {
      line.append("\"[redacted]\"");
    } else {
      appendValue(&line, field.value);
    }
  }
  line.push_back('}');
  return line;
}

void logEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (level < logLevel()) return;
  std::string line = formatLogLine(level, event, fields);
  line.push_back('\n');
  FILE* out = g_out.load(std::memory_order_relaxed);
  if (out == nullptr) out = stderr;
  // One fwrite per line: stdio locks the stream per call, so concurrent writers never
  // interleave inside a line; the flush keeps lines visible if the process dies.
  std::fwrite(line.data(), 1, line.size(), out);
  std::fflush(out);
}

}  // namespace wsfleet
