// Time-driven paths of the client WebSocket glue: server pings, the ping timeout and the
// deadline for a close that a choked socket never lets out. The clock is moved forward
// (lws_fake.h advanceClock) and the worker tick run by hand, so nothing sleeps.
#include <string>

#include "tests/cmocka/edge_harness.h"

namespace wsfleet::testing {
namespace {

constexpr int64_t kPingIntervalMs = 25000;  // the config default
constexpr int64_t kCloseGraceMs = 5000;     // edge_service.cc

void advance(EdgeHarness& h, int64_t ms) {
  fake::advanceClock(ms);
  h.tick();
}

void pingGoesOutAndAPongKeepsTheConnection(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  h.drain(c);
  const int requests = c.wsi.writable_requests;

  advance(h, kPingIntervalMs / 2);
  assert_false(c.conn()->ping_due);
  advance(h, kPingIntervalMs / 2 + 100);
  assert_true(c.conn()->ping_due);
  assert_int_equal(c.wsi.writable_requests, requests + 1);
  assert_int_equal(h.writeable(c), 0);
  assert_int_equal(c.wsi.writes.back().protocol, LWS_WRITE_PING);
  assert_true(c.wsi.writes.back().bytes.size() <= 125);  // a control frame's limit

  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE_PONG), 0);
  advance(h, kPingIntervalMs + 100);
  assert_int_equal(c.conn()->close_code, 0);
  assert_true(c.conn()->ping_due);  // the next ping, not a close
}

void unansweredPingClosesWith1001(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  h.drain(c);
  advance(h, kPingIntervalMs + 100);
  assert_int_equal(h.writeable(c), 0);  // the ping
  advance(h, kPingIntervalMs + 100);    // and no pong
  assert_int_equal(c.conn()->close_code, 1001);
  assert_int_equal(h.writeable(c), -1);
  assert_int_equal(c.wsi.closes.size(), 1);
  assert_int_equal(c.wsi.closes[0].code, 1001);
  assert_string_equal(c.wsi.closes[0].reason.c_str(), "ping timeout");
}

void chokedCloseIsKilledAtTheDeadline(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient choked, healthy;
  h.connect(choked, "choked");
  h.connect(healthy, "healthy");
  h.service().shutdown();  // asks both for a 1001 close
  assert_int_equal(choked.conn()->close_code, 1001);
  // The healthy peer's socket drains: the close goes out and lws reports it closed.
  assert_int_equal(h.writeable(healthy), -1);
  assert_int_equal(healthy.wsi.closes[0].code, 1001);
  assert_int_equal(h.ws(healthy, LWS_CALLBACK_CLOSED), 0);

  // The choked one never becomes writable.
  advance(h, kCloseGraceMs - 1000);
  assert_true(choked.wsi.timeouts.empty());
  advance(h, 1100);
  assert_int_equal(choked.wsi.timeouts.size(), 1);
  assert_int_equal(choked.wsi.timeouts[0].first, PENDING_TIMEOUT_KILLED_BY_PARENT);
  assert_int_equal(choked.wsi.timeouts[0].second, LWS_TO_KILL_ASYNC);
  assert_true(healthy.wsi.timeouts.empty());

  const double going_away = h.metric(R"(wsfleet_disconnects_total{code="1001"})");
  assert_int_equal(h.ws(choked, LWS_CALLBACK_CLOSED), 0);
  assert_int_equal(h.service().connectionCount(), 0);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1001"})") == going_away + 1);
  // Nothing fires for a connection that is gone.
  advance(h, 2 * kCloseGraceMs);
  assert_int_equal(choked.wsi.timeouts.size(), 1);
}

}  // namespace
}  // namespace wsfleet::testing

int main() {
  using namespace wsfleet::testing;
  const CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(pingGoesOutAndAPongKeepsTheConnection, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(unansweredPingClosesWith1001, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(chokedCloseIsKilledAtTheDeadline, harnessSetup,
                                      harnessTeardown),
  };
  return cmocka_run_group_tests_name("ws_timers", tests, nullptr, nullptr);
}
