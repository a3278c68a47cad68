#include "tools/bench/nats_codec.h"

#include <charconv>

namespace wsfleet::bench {
namespace {

bool startsWithNoCase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = s[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != prefix[i]) return false;
  }
  return true;
}

// Splits a MSG argument list on spaces/tabs: subject sid [reply-to] #bytes.
int splitArgs(std::string_view args, std::string_view* out, int max) {
  int n = 0;
  size_t i = 0;
  while (i < args.size()) {
    while (i < args.size() && (args[i] == ' ' || args[i] == '\t')) ++i;
    if (i >= args.size()) break;
    size_t j = i;
    while (j < args.size() && args[j] != ' ' && args[j] != '\t') ++j;
    if (n == max) return -1;
    out[n++] = args.substr(i, j - i);
    i = j;
  }
  return n;
}

}  // namespace

size_t NatsParser::parseOne(std::string_view in, NatsEvent& ev) {
  size_t eol = in.find("\r\n");
  if (eol == std::string_view::npos) {
    return in.size() > kMaxLine ? StreamBuffer::kError : 0;
  }
  std::string_view line = in.substr(0, eol);
  const size_t line_bytes = eol + 2;
  ev = NatsEvent{};
  if (startsWithNoCase(line, "MSG") && line.size() > 3 && (line[3] == ' ' || line[3] == '\t')) {
    std::string_view args[4];
    int n = splitArgs(line.substr(4), args, 4);
    if (n != 3 && n != 4) return StreamBuffer::kError;
    std::string_view count = args[n - 1];
    uint64_t bytes = 0;
    auto [ptr, ec] = std::from_chars(count.data(), count.data() + count.size(), bytes);
    if (ec != std::errc() || ptr != count.data() + count.size()) return StreamBuffer::kError;
    if (bytes > kMaxLine * 16) return StreamBuffer::kError;
    if (in.size() < line_bytes + bytes + 2) return 0;
    if (in.substr(line_bytes + bytes, 2) != "\r\n") return StreamBuffer::kError;
    ev.op = NatsOp::kMsg;
    ev.subject = args[0];
    ev.sid = args[1];
    ev.payload = in.substr(line_bytes, bytes);
    return line_bytes + bytes + 2;
  }
  if (startsWithNoCase(line, "PING")) {
    ev.op = NatsOp::kPing;
  } else if (startsWithNoCase(line, "PONG")) {
    ev.op = NatsOp::kPong;
  } else if (startsWithNoCase(line, "+OK")) {
    ev.op = NatsOp::kOk;
  } else if (startsWithNoCase(line, "-ERR")) {
    ev.op = NatsOp::kErr;
    ev.payload = line.substr(4);
  } else if (startsWithNoCase(line, "INFO")) {
    ev.op = NatsOp::kInfo;
    ev.payload = line.substr(4);
  } else {
    return StreamBuffer::kError;
  }
  return line_bytes;
}

void appendNatsConnect(std::string& out) {
  out += R"(CONNECT {"verbose":false,"pedantic":false,"name":"wsfleet-bench"})";
  out += "\r\n";
}

void appendNatsSub(std::string& out, std::string_view subject, uint64_t sid) {
  out += "SUB ";
  out += subject;
  out += ' ';
  out += std::to_string(sid);
  out += "\r\n";
}

void appendNatsPub(std::string& out, std::string_view subject, std::string_view payload) {
  out += "PUB ";
  out += subject;
  out += ' ';
  char num[24];
  auto [end, ec] = std::to_chars(num, num + sizeof num, payload.size());
  (void)ec;
  out.append(num, end);
  out += "\r\n";
  out += payload;
  out += "\r\n";
}

}  // namespace wsfleet::bench
