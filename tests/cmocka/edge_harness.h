#pragma once
// A real EdgeServer (real engine, real LMDB in a temporary directory) over the fake
// libwebsockets of lws_fake.h. Tests call the protocol callbacks the edge registered, with
// the same arguments lws would pass, and inspect what the edge asked lws to do.
//
// cmocka reports a failure by longjmp, which skips C++ destructors in the test body; so the
// harness lives on the heap, created by the group's setup and deleted by its teardown.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "edge/edge_server.h"
#include "tests/cmocka/lws_fake.h"

// Last: cmocka.h defines function-like macros (fail, ...) that break C++ headers included
// after it; it needs the three C headers before it, and 1.1.5 leaves part of its API
// without C linkage.
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
extern "C" {
#include <cmocka.h>
}
// clang-format on

namespace wsfleet::testing {

inline constexpr const char* kTenant = "acme";
inline constexpr const char* kApiKey = "cmocka-api-key-0123456789";

struct EdgeOptions {
  std::vector<std::string> allowed_origins;
  uint64_t max_message_bytes = 1024;
  uint64_t outbound_max_messages = 4096;
  uint64_t max_body_bytes = 256;
};

// One client WebSocket as lws would hold it: the wsi and the zeroed per-session memory.
struct WsClient {
  fake::FakeWsi wsi;
  alignas(WsSession) unsigned char session[sizeof(WsSession)] = {};
  Connection* conn() const { return reinterpret_cast<const WsSession*>(session)->conn; }
};

struct AdminClient {
  fake::FakeWsi wsi;
  alignas(AdminSession) unsigned char session[sizeof(AdminSession)] = {};
};

class EdgeHarness {
 public:
  EdgeHarness();
  ~EdgeHarness();
  EdgeHarness(const EdgeHarness&) = delete;
  EdgeHarness& operator=(const EdgeHarness&) = delete;

  // Builds the config from `options` and creates the server on the fake lws.
  Status start(const EdgeOptions& options = {});
  // start() that must succeed (fails the test otherwise).
  void mustStart(const EdgeOptions& options = {});
  EdgeServer& server() { return *server_; }
  EdgeService& service() { return server_->service(); }

  // The value of one series in the Prometheus text, e.g.
  // `wsfleet_disconnects_total{code="1000"}`; 0 when the series is not exported.
  double metric(std::string_view series);

  std::string mintToken(const std::string& user = "alice") const;

  // The protocol callbacks exactly as lws calls them.
  int ws(WsClient& client, lws_callback_reasons reason, const void* in = nullptr, size_t len = 0);
  int admin(AdminClient& client, lws_callback_reasons reason, const void* in = nullptr,
            size_t len = 0);

  // ---- WebSocket steps ----
  // Request headers of a well-formed upgrade carrying `token` as a bearer token.
  static void setUpgradeHeaders(WsClient& client, const std::string& token);
  int confirmUpgrade(WsClient& client);
  // Upgrade + ESTABLISHED, both accepted; the welcome frame is then queued.
  void connect(WsClient& client, const std::string& user = "alice");
  // One whole text message in one RECEIVE callback.
  int receive(WsClient& client, std::string_view text);
  int writeable(WsClient& client) { return ws(client, LWS_CALLBACK_SERVER_WRITEABLE); }
  // WRITEABLE until the connection's queue is empty (each call must succeed).
  void drain(WsClient& client);
  // Runs the worker tick as lws's scheduler would.
  void tick();

 private:
  std::string dir_;
  std::unique_ptr<EdgeConfig> config_;  // outlives server_: the server keeps a reference
  std::unique_ptr<EdgeServer> server_;
};

// Setup/teardown for cmocka: *state is the EdgeHarness (not yet started).
int harnessSetup(void** state);
int harnessTeardown(void** state);
inline EdgeHarness& harnessOf(void** state) {
  return *static_cast<EdgeHarness*>(*state);
}

bool contains(std::string_view haystack, std::string_view needle);

}  // namespace wsfleet::testing
