#pragma once
// One client connection: non-blocking TCP connect (from a chosen source address), the HTTP
// upgrade, then WebSocket frames. Reads land in a buffer shared by all connections of the
// process; only an incomplete trailing frame is copied into the connection, so an idle
// connection holds almost no memory and a busy one parses many frames per recv().

#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tools/bench/adapter.h"
#include "tools/bench/mqtt_codec.h"
#include "tools/bench/nats_codec.h"

namespace wsfleet::bench {

class Connection;

// Shared by all connections of one worker process.
struct IoContext {
  int epoll_fd = -1;
  const Adapter* adapter = nullptr;
  ConnEvents* events = nullptr;
  sockaddr_storage target{};
  socklen_t target_len = 0;
  bool have_source = false;
  sockaddr_in source{};
  std::string request_prefix;       // request line + fixed headers, no terminating CRLF
  // Where publisher connections go (--publish-url; the same as target by default).
  sockaddr_storage publish_target{};
  socklen_t publish_target_len = 0;
  std::string publish_request_prefix;
  std::vector<char> rbuf;           // shared receive buffer
  std::vector<Connection*> dirty;   // connections with bytes to flush
  uint64_t now_ns = 0;              // CLOCK_MONOTONIC at the last recv
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t recv_calls = 0;
  uint64_t frames_in = 0;
  uint32_t mask_seed = 0x9E3779B9u;
};

class Connection {
 public:
  enum class State : uint8_t { kIdle, kConnecting, kHandshake, kOpen, kClosed };

  Connection(uint32_t global_index, uint32_t local_index)
      : global_index_(global_index), local_index_(local_index) {}
  ~Connection();
  Connection(Connection&&) = delete;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  Connection& operator=(Connection&&) = delete;

  // Starts the TCP connect. On an immediate failure returns false with *why set.
  bool start(IoContext& io, Fail* why);
  // epoll readiness.
  void onEvent(IoContext& io, uint32_t events);
  // Sends pending bytes; arms EPOLLOUT when the socket is full.
  void flush(IoContext& io);
  // Closes the socket (after a best-effort goodbye and close frame when open).
  void close(IoContext& io, bool polite);

  // Queue a frame (masked, FIN).
  void sendText(std::string_view payload) { send(*io_, WsOpcode::kText, payload); }
  void sendBinary(std::string_view payload) { send(*io_, WsOpcode::kBinary, payload); }
  void send(IoContext& io, WsOpcode op, std::string_view payload);
  size_t pendingOut() const { return wbuf_.size() - woff_; }

  State state() const { return state_; }
  uint32_t globalIndex() const { return global_index_; }
  uint32_t localIndex() const { return local_index_; }

  // Scenario bookkeeping (owned by the worker).
  uint64_t started_ns = 0;
  uint32_t pending_subs = 0;
  bool session_ready = false;
  bool settled = false;     // ready or failed: counted once
  bool failed = false;
  bool publisher = false;
  std::string token;

  // Per-connection protocol state (adapters).
  NatsParser nats;
  MqttParser mqtt;
  bool nats_connected = false;

 private:
  void fail(IoContext& io, Fail why);
  void onConnected(IoContext& io);
  void onReadable(IoContext& io);
  // Parses frames out of [data, data+len); returns bytes consumed, or SIZE_MAX when the
  // connection was closed.
  size_t consumeFrames(IoContext& io, char* data, size_t len);
  size_t consumeHandshake(IoContext& io, char* data, size_t len);
  void handleFrame(IoContext& io, WsOpcode op, bool fin, std::string_view payload);
  void setWantWrite(IoContext& io, bool want);

  IoContext* io_ = nullptr;  // set by start()
  uint32_t global_index_;
  uint32_t local_index_;
  int fd_ = -1;
  State state_ = State::kIdle;
  bool want_write_ = false;
  bool in_dirty_ = false;
  std::string wbuf_;
  size_t woff_ = 0;
  std::string pending_in_;   // incomplete frame carried to the next recv
  std::string fragments_;    // a fragmented message being assembled
  WsOpcode frag_op_ = WsOpcode::kContinuation;  // kContinuation: none in progress
  uint32_t mask_state_ = 0;
};

uint64_t monotonicNs();

}  // namespace wsfleet::bench
