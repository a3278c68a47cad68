#pragma once
// The subset of the NATS client protocol the bench speaks: it parses INFO, MSG, PING, PONG,
// +OK and -ERR from the server, across WebSocket frame boundaries, and builds CONNECT, SUB
// and PUB lines.

#include <cstdint>
#include <string>
#include <string_view>

#include "tools/bench/stream_buffer.h"

namespace wsfleet::bench {

enum class NatsOp { kInfo, kMsg, kPing, kPong, kOk, kErr };

struct NatsEvent {
  NatsOp op = NatsOp::kOk;
  std::string_view subject;  // kMsg
  std::string_view sid;      // kMsg
  std::string_view payload;  // kMsg: the message; kInfo/kErr: the rest of the line
};

class NatsParser {
 public:
  // Feeds bytes; calls on_event(const NatsEvent&) for every complete operation. Views in
  // the event are valid only during the call. Returns false on a protocol error (unknown
  // operation, malformed MSG line, payload not followed by CRLF, line over max_line).
  template <class OnEvent>
  bool feed(std::string_view bytes, OnEvent&& on_event) {
    return buffer_.feed(bytes, [&](std::string_view in) { return parse(in, on_event); });
  }

  size_t carried() const { return buffer_.carried(); }
  static constexpr size_t kMaxLine = 64 * 1024;

 private:
  template <class OnEvent>
  size_t parse(std::string_view in, OnEvent& on_event) {
    size_t pos = 0;
    NatsEvent ev;
    for (;;) {
      size_t used = parseOne(in.substr(pos), ev);
      if (used == StreamBuffer::kError) return used;
      if (used == 0) return pos;
      on_event(static_cast<const NatsEvent&>(ev));
      pos += used;
    }
  }
  // Parses one operation at the start of `in`: bytes used, 0 when incomplete, kError.
  static size_t parseOne(std::string_view in, NatsEvent& ev);

  StreamBuffer buffer_;
};

void appendNatsConnect(std::string& out);
void appendNatsSub(std::string& out, std::string_view subject, uint64_t sid);
void appendNatsPub(std::string& out, std::string_view subject, std::string_view payload);

}  // namespace wsfleet::bench
