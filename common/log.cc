#include "common/log.h"

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <type_traits>

#include "common/json_escape.h"
#include "common/utf8.h"

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

// Peer input reaches logs (user ids, channel names, close reasons), so every line must
// stay one valid JSON object: control characters are escaped and bytes that are not
// UTF-8 become U+FFFD instead of breaking the consumer's parser.
void appendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      uint32_t cp = 0;
      const size_t len = decodeUtf8At(s, i, &cp);
      if (len == 0) {
        out->append("\\ufffd");
        ++i;
      } else if (cp == 0x2028 || cp == 0x2029) {
        // U+2028 / U+2029 are valid JSON but end a line for JavaScript consumers.
        appendJsonUnicodeEscape(*out, cp);
        i += len;
      } else {
        out->append(s.substr(i, len));
        i += len;
      }
      continue;
    }
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      appendJsonAsciiEscape(*out, c);
    } else {
      out->push_back(static_cast<char>(c));
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

namespace {
// Set once at process start (before any thread), read-only afterwards.
std::string g_process_tag;
}  // namespace

void setLogProcessTag(std::string tag) { g_process_tag = std::move(tag); }

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
  if (!g_process_tag.empty()) {
    line.append(",\"proc\":");
    appendJsonString(&line, g_process_tag);
  }
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
