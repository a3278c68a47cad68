#include "common/log.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <string>

namespace wsfleet {
namespace {

// Everything after the timestamp, which is checked on its own.
std::string withoutTs(const std::string& line) {
  const std::string prefix = "{\"ts\":\"";
  EXPECT_EQ(line.compare(0, prefix.size(), prefix), 0) << line;
  const size_t end = line.find('"', prefix.size());
  return line.substr(end + 2);
}

TEST(LogTest, FormatsOneJsonObject) {
  const std::string line = formatLogLine(LogLevel::kInfo, "conn_open",
                                         {{"user", "alice"},
                                          {"conn", 42},
                                          {"bytes", uint64_t{18446744073709551615u}},
                                          {"delta", -7L},
                                          {"ratio", 0.5},
                                          {"tls", true},
                                          {"resumed", false}});
  EXPECT_EQ(withoutTs(line),
            "\"level\":\"info\",\"event\":\"conn_open\",\"user\":\"alice\",\"conn\":42,"
            "\"bytes\":18446744073709551615,\"delta\":-7,\"ratio\":0.5,\"tls\":true,"
            "\"resumed\":false}");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kWarn, "x", {})),
            "\"level\":\"warn\",\"event\":\"x\"}");
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kDebug, "x", {})),
            "\"level\":\"debug\",\"event\":\"x\"}");
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kError, "x", {})),
            "\"level\":\"error\",\"event\":\"x\"}");
}

TEST(LogTest, TimestampIsCurrentUtcWithMillis) {
  const std::string line = formatLogLine(LogLevel::kInfo, "t", {});
  // Matched by hand rather than with std::regex, whose header trips GCC 12's
  // maybe-uninitialized warning under -fsanitize=address (and warnings are errors).
  const std::string prefix = "{\"ts\":\"";
  const std::string shape = "dddd-dd-ddTdd:dd:dd.dddZ\",";  // d: any digit
  ASSERT_GE(line.size(), prefix.size() + shape.size()) << line;
  ASSERT_EQ(line.compare(0, prefix.size(), prefix), 0) << line;
  const std::string ts = line.substr(prefix.size(), shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    const bool ok =
        shape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(ts[i])) != 0 : ts[i] == shape[i];
    ASSERT_TRUE(ok) << "character " << i << " of the timestamp in " << line;
  }
  auto number = [&ts](size_t pos, size_t len) { return std::stoi(ts.substr(pos, len)); };
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  const std::time_t logged = timegm(&tm);
  const std::time_t now = std::time(nullptr);
  EXPECT_LE(std::llabs(static_cast<long long>(now - logged)), 2) << line;
}

TEST(LogTest, EscapesStrings) {
  const std::string ctl("a\"b\\c\n\r\t\b\f\x01\x1f\x7f", 13);
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "e", {{"s", ctl}})),
            "\"level\":\"info\",\"event\":\"e\","
            "\"s\":\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f\\u007f\"}");
  // Embedded NUL is kept, escaped.
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "e", {{"s", std::string_view("x\0y", 3)}})),
            "\"level\":\"info\",\"event\":\"e\",\"s\":\"x\\u0000y\"}");
  // Keys and the event name are escaped the same way.
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "ev\"", {{"k\n", 1}})),
            "\"level\":\"info\",\"event\":\"ev\\\"\",\"k\\n\":1}");
}

TEST(LogTest, UnicodePassesAndInvalidUtf8IsReplaced) {
  // Valid UTF-8 of 2, 3 and 4 bytes is written as is.
  const std::string valid = "h\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "e", {{"s", valid}})),
            "\"level\":\"info\",\"event\":\"e\",\"s\":\"" + valid + "\"}");
  // Stray continuation, truncated sequence, overlong, surrogate, beyond U+10FFFF.
  const std::string bad = "\x80|\xC3|\xC0\xAF|\xED\xA0\x80|\xF4\x90\x80\x80|\xE2\x82";
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "e", {{"s", bad}})),
            "\"level\":\"info\",\"event\":\"e\",\"s\":\""
            "\\ufffd|\\ufffd|\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd|"
            "\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\"}");
  // Line separators would split the line for JavaScript readers.
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "e", {{"s", "a\xE2\x80\xA8z\xE2\x80\xA9"}})),
            "\"level\":\"info\",\"event\":\"e\",\"s\":\"a\\u2028z\\u2029\"}");
}

TEST(LogTest, NonFiniteDoublesAreNull) {
  EXPECT_EQ(withoutTs(formatLogLine(LogLevel::kInfo, "e",
                                    {{"nan", std::numeric_limits<double>::quiet_NaN()},
                                     {"inf", -std::numeric_limits<double>::infinity()},
                                     {"big", 1e300},
                                     {"small", 0.1}})),
            "\"level\":\"info\",\"event\":\"e\",\"nan\":null,\"inf\":null,\"big\":1e+300,"
            "\"small\":0.1}");
}

TEST(LogTest, RedactsCredentialKeys) {
  const std::string line = formatLogLine(LogLevel::kInfo, "auth",
                                         {{"token", "eyJhbGciOi.secret.sig"},
                                          {"access_token", "abc"},
                                          {"API_KEY", "k1"},
                                          {"xApiKey", "k2"},
                                          {"Authorization", "Bearer zzz"},
                                          {"client_secret", 99},
                                          {"db_password", true},
                                          {"user", "bob"}});
  EXPECT_EQ(withoutTs(line),
            "\"level\":\"info\",\"event\":\"auth\",\"token\":\"[redacted]\","
            "\"access_token\":\"[redacted]\",\"API_KEY\":\"[redacted]\","
            "\"xApiKey\":\"[redacted]\",\"Authorization\":\"[redacted]\","
            "\"client_secret\":\"[redacted]\",\"db_password\":\"[redacted]\",\"user\":\"bob\"}");
  // Searched without the timestamp, whose digits may contain "99".
  const std::string body = withoutTs(line);
  for (const char* leaked : {"eyJ", "abc", "k1", "k2", "zzz", "99"}) {
    EXPECT_EQ(body.find(leaked), std::string::npos) << leaked;
  }
}

TEST(LogTest, LevelFilterAndOutput) {
  LogLevel parsed = LogLevel::kError;
  EXPECT_TRUE(parseLogLevel("debug", &parsed));
  EXPECT_EQ(parsed, LogLevel::kDebug);
  EXPECT_TRUE(parseLogLevel("warn", &parsed));
  EXPECT_EQ(parsed, LogLevel::kWarn);
  EXPECT_TRUE(parseLogLevel("info", &parsed));
  EXPECT_EQ(parsed, LogLevel::kInfo);
  EXPECT_TRUE(parseLogLevel("error", &parsed));
  EXPECT_EQ(parsed, LogLevel::kError);
  EXPECT_FALSE(parseLogLevel("verbose", &parsed));
  EXPECT_FALSE(parseLogLevel("", &parsed));
  EXPECT_EQ(parsed, LogLevel::kError);  // untouched on failure

  char* buf = nullptr;
  size_t len = 0;
  FILE* mem = open_memstream(&buf, &len);
  ASSERT_NE(mem, nullptr);
  const LogLevel saved = logLevel();
  setLogOutput(mem);
  setLogLevel(LogLevel::kWarn);
  logDebug("d1");
  logInfo("i1", {{"n", 1}});
  logWarn("w1", {{"n", 2}});
  logError("e1");
  setLogLevel(LogLevel::kDebug);
  logDebug("d2");
  setLogOutput(nullptr);
  setLogLevel(saved);
  // Each line was flushed as written, so the stream already holds all of them.
  std::string text(buf, len);
  std::fclose(mem);
  std::free(buf);

  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    const size_t nl = text.find('\n', start);
    ASSERT_NE(nl, std::string::npos) << "last line not terminated";
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  ASSERT_EQ(lines.size(), 3u) << text;
  EXPECT_EQ(withoutTs(lines[0]), "\"level\":\"warn\",\"event\":\"w1\",\"n\":2}");
  EXPECT_EQ(withoutTs(lines[1]), "\"level\":\"error\",\"event\":\"e1\"}");
  EXPECT_EQ(withoutTs(lines[2]), "\"level\":\"debug\",\"event\":\"d2\"}");
}

}  // namespace
}  // namespace wsfleet
