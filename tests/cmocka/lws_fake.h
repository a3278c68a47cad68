#pragma once
// Stand-ins for the libwebsockets functions the edge glue calls. The test executables link
// with `--wrap=lws_xxx`, so every call the edge makes to lws_xxx lands in __wrap_lws_xxx
// (lws_fake.cc) and is recorded here instead of touching a socket. That lets a test force
// what real sockets rarely do on demand: short writes, failed writes, a choked peer.
//
// A fake connection is a FakeWsi owned by the test; its address is the `lws*` the edge
// sees. The edge never dereferences an lws*, it only hands it back to lws functions.

#include <libwebsockets.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace wsfleet::fake {

struct WrittenFrame {
  std::string bytes;
  lws_write_protocol protocol;
};

struct CloseRecord {
  int code;
  std::string reason;
};

// What lws would know about one connection, and what the edge did to it.
struct FakeWsi {
  // ---- inputs, set by the test ----
  std::map<lws_token_indexes, std::string> headers;
  std::vector<std::string> uri_args;  // WSI_TOKEN_HTTP_URI_ARGS fragments, "name=value"
  std::string peer = "192.0.2.10";
  bool binary = false;         // lws_frame_is_binary
  bool final_fragment = true;  // lws_is_final_fragment
  size_t remaining = 0;        // lws_remaining_packet_payload
  // lws_write returns this instead of the full length when set (short count or -1).
  std::optional<int> write_result;
  int transaction_completed_result = 0;  // lws_http_transaction_completed
  int fd = -1;                           // lws_get_socket_fd: no real socket by default
  bool partial = false;                  // lws_partial_buffered: lws holds unsent bytes

  // ---- outputs, recorded by the wrappers ----
  std::vector<WrittenFrame> writes;
  int writable_requests = 0;
  std::vector<CloseRecord> closes;
  int http_status = 0;  // from lws_add_http_common_headers
  std::string content_type;
  uint64_t content_length = 0;
  std::vector<std::pair<std::string, std::string>> http_headers;
  int headers_finalized = 0;
  int transactions_completed = 0;
  int dummy_callbacks = 0;
  std::vector<std::pair<int, int>> timeouts;  // lws_set_timeout (reason, secs)

  lws* wsi() { return reinterpret_cast<lws*>(this); }
  // Body bytes written with an HTTP write protocol, concatenated.
  std::string httpBody() const;
  bool rx_paused = false;  // lws_rx_flow_control(wsi, 0) was called
};

// Process-wide state of the fake context (one EdgeServer at a time).
struct FakeLws {
  void* context_user = nullptr;
  int contexts_created = 0;
  int contexts_destroyed = 0;
  unsigned int context_port = 0xffffffffu;
  uint64_t context_options = 0;
  void* foreign_loop = nullptr;  // the event loop the edge handed to lws
  // Vhosts by vhost_name: the protocol table and the listen settings the edge asked for.
  struct Vhost {
    const lws_protocols* protocols = nullptr;
    int port = 0;
    std::string iface;
    uint64_t options = 0;
  };
  std::map<std::string, Vhost> vhosts;
  std::string fail_vhost;  // lws_create_vhost returns NULL for this vhost_name

  // The last lws_sul_schedule call (the worker tick).
  lws_sorted_usec_list_t* tick_sul = nullptr;
  sul_cb_t tick_cb = nullptr;
  lws_usec_t tick_us = 0;
  int ticks_scheduled = 0;
  int64_t clock_offset_ms = 0;
};

// Moves both clocks the edge reads (clock_gettime is wrapped too) forward: lets timers
// such as the ping interval or the close deadline fire without sleeping.
void advanceClock(int64_t ms);

FakeLws& state();
// Forgets everything recorded (between tests).
void reset();
// The non-null pointer handed out as the lws_context.
lws_context* fakeContext();

}  // namespace wsfleet::fake
