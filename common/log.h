#pragma once
// JSON-lines logging: one object per line {"ts":"2026-11-28T05:30:00.123Z","level":"info",
// "event":"conn_open", ...fields}. Events are stable snake_case names an operator can grep.
// Secrets are never logged: a field whose key names a credential (token, access_token,
// api_key, authorization, secret, password) is written as "[redacted]" whatever its value.

#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace wsfleet {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError };

// Parses "debug" | "info" | "warn" | "error".
bool parseLogLevel(std::string_view text, LogLevel* out);

struct LogField {
  using Value = std::variant<std::string_view, int64_t, uint64_t, double, bool>;
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, int v) : key(k), value(int64_t{v}) {}
  LogField(std::string_view k, long v) : key(k), value(int64_t{v}) {}
  LogField(std::string_view k, long long v) : key(k), value(int64_t{v}) {}
  LogField(std::string_view k, unsigned v) : key(k), value(uint64_t{v}) {}
  LogField(std::string_view k, unsigned long v) : key(k), value(uint64_t{v}) {}
  LogField(std::string_view k, unsigned long long v) : key(k), value(uint64_t{v}) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}
  std::string_view key;
  Value value;
};

// Process-wide settings; set once at start-up before threads exist.
void setLogLevel(LogLevel level);
LogLevel logLevel();
// Adds "proc":TAG to every line ("supervisor", "worker-2"): one host runs several
// processes writing to the same stream. Call before starting threads.
void setLogProcessTag(std::string tag);
void setLogOutput(FILE* out);  // default stderr; each line written with one fwrite + flush

// Formats one line (exposed for tests).
std::string formatLogLine(LogLevel level, std::string_view event,
                          std::initializer_list<LogField> fields);

void logEvent(LogLevel level, std::string_view event, std::initializer_list<LogField> fields);
inline void logDebug(std::string_view e, std::initializer_list<LogField> f = {}) {
  if (logLevel() <= LogLevel::kDebug) logEvent(LogLevel::kDebug, e, f);
}
inline void logInfo(std::string_view e, std::initializer_list<LogField> f = {}) {
  logEvent(LogLevel::kInfo, e, f);
}
inline void logWarn(std::string_view e, std::initializer_list<LogField> f = {}) {
  logEvent(LogLevel::kWarn, e, f);
}
inline void logError(std::string_view e, std::initializer_list<LogField> f = {}) {
  logEvent(LogLevel::kError, e, f);
}

}  // namespace wsfleet
