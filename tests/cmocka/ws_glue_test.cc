// The client WebSocket callbacks (edge/ws_glue.cc) driven as libwebsockets would drive them,
// with the socket side faked: choked peers, short and failed writes, oversized or split
// messages, refused upgrades and the close paths.
#include <cstring>
#include <string>
#include <vector>

#include "tests/cmocka/edge_harness.h"

namespace wsfleet::testing {
namespace {

void assertFrameHas(const fake::WrittenFrame& frame, std::string_view needle) {
  if (!contains(frame.bytes, needle)) {
    fail_msg("frame '%s' lacks '%s'", frame.bytes.c_str(), std::string(needle).c_str());
  }
}

// ---- start-up against the fake context

void startupRegistersBothListeners(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  fake::FakeLws& lws = fake::state();
  assert_int_equal(lws.contexts_created, 1);
  assert_ptr_equal(lws.context_user, &h.server());
  // The context itself must not listen: every listener is an explicit vhost.
  assert_int_equal(lws.context_port, static_cast<unsigned int>(CONTEXT_PORT_NO_LISTEN));
  // lws runs on the edge's own epoll loop, never on its poll() loop.
  assert_true(lws.context_options & LWS_SERVER_OPTION_LIBEV);
  assert_non_null(lws.foreign_loop);
  const fake::FakeLws::Vhost& ws = lws.vhosts["wsfleet-ws"];
  assert_non_null(ws.protocols);
  assert_string_equal(ws.protocols[0].name, "wsfleet.v1");
  // The edge accepts on its own SO_REUSEPORT socket and hands sockets to this vhost.
  assert_int_equal(ws.port, CONTEXT_PORT_NO_LISTEN_SERVER);
  assert_string_equal(ws.iface.c_str(), "127.0.0.1");
  // An IPv4 iface without this option makes lws listen on every interface.
  assert_true(ws.options & LWS_SERVER_OPTION_DISABLE_IPV6);
  const fake::FakeLws::Vhost& admin = lws.vhosts["wsfleet-admin"];
  assert_non_null(admin.protocols);
  assert_int_equal(admin.port, 19090);
  assert_true(admin.options & LWS_SERVER_OPTION_DISABLE_IPV6);

  // The worker tick re-arms itself each time it runs.
  assert_int_equal(lws.ticks_scheduled, 1);
  assert_non_null(lws.tick_cb);
  assert_true(lws.tick_us > 0);
  lws.tick_cb(lws.tick_sul);
  assert_int_equal(lws.ticks_scheduled, 2);
}

void listenFailureReleasesTheContext(void** state) {
  EdgeHarness& h = harnessOf(state);
  fake::state().fail_vhost = "wsfleet-admin";
  Status status = h.start();
  assert_false(status.isOk());
  assert_int_equal(static_cast<int>(status.code()), static_cast<int>(Code::kUnavailable));
  assert_string_equal(status.reason(), "listen_failed");
  assert_int_equal(fake::state().contexts_created, 1);
  assert_int_equal(fake::state().contexts_destroyed, 1);
}

// ---- 1. one write per WRITEABLE on a choked socket: frames queued meanwhile go together

// Splits a coalesced write back into its frames' payloads (unmasked server frames).
std::vector<std::string> splitFrames(const std::string& bytes) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i + 2 <= bytes.size()) {
    assert_int_equal(static_cast<unsigned char>(bytes[i]), 0x81);  // FIN + text
    size_t len = static_cast<unsigned char>(bytes[i + 1]);
    i += 2;
    if (len == 126) {
      len = (static_cast<unsigned char>(bytes[i]) << 8) | static_cast<unsigned char>(bytes[i + 1]);
      i += 2;
    } else if (len == 127) {
      len = 0;
      for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<unsigned char>(bytes[i + k]);
      i += 8;
    }
    assert_true(i + len <= bytes.size());
    out.push_back(bytes.substr(i, len));
    i += len;
  }
  assert_int_equal(i, bytes.size());
  return out;
}

void writeableCoalescesQueuedFramesInOrder(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  // The welcome is queued for the end of the loop iteration, not via WRITEABLE.
  assert_int_equal(c.conn()->out.size(), 1);
  assert_int_equal(c.wsi.writable_requests, 0);
  assert_true(c.conn()->flush_queued);
  assert_true(c.wsi.writes.empty());
  // A lone frame goes out as it is, framed by lws.
  assert_int_equal(h.writeable(c), 0);
  assert_int_equal(c.wsi.writes.size(), 1);
  assert_int_equal(c.wsi.writes.back().protocol, LWS_WRITE_TEXT);
  assertFrameHas(c.wsi.writes[0], R"("type":"welcome")");

  // The socket stays choked (no WRITEABLE) while more frames pile up.
  assert_int_equal(h.receive(c, R"({"type":"subscribe","id":1,"channel":"live:room"})"), 0);
  for (int n = 1; n <= 3; ++n) {
    const std::string publish = R"({"type":"publish","id":)" + std::to_string(n + 1) +
                                R"(,"channel":"live:room","data":{"n":)" + std::to_string(n) + "}}";
    assert_int_equal(h.receive(c, publish), 0);
  }
  // The subscribe reply, then per publish: the message and the reply.
  assert_int_equal(c.conn()->out.size(), 7);
  const int requests_before = c.wsi.writable_requests;

  // One WRITEABLE, one write carrying all seven frames, in order; nothing left to ask for.
  assert_int_equal(h.writeable(c), 0);
  assert_int_equal(c.wsi.writes.size(), 2);
  assert_int_equal(c.wsi.writes.back().protocol, LWS_WRITE_HTTP);  // lws' raw write
  assert_int_equal(c.wsi.writable_requests, requests_before);
  assert_int_equal(c.conn()->out.bytes(), 0);
  const std::vector<std::string> frames = splitFrames(c.wsi.writes.back().bytes);
  assert_int_equal(frames.size(), 7);
  assert_true(contains(frames[0], R"("id":1)"));
  for (int n = 1; n <= 3; ++n) {
    const size_t at = static_cast<size_t>(2 * n - 1);
    assert_true(contains(frames[at], R"("type":"message")"));
    assert_true(contains(frames[at], R"("n":)" + std::to_string(n)));
    assert_true(contains(frames[at + 1], R"("id":)" + std::to_string(n + 1)));
  }
  // Nothing left: WRITEABLE writes nothing.
  assert_int_equal(h.writeable(c), 0);
  assert_int_equal(c.wsi.writes.size(), 2);
  assert_true(c.wsi.closes.empty());
}

// ---- 2. and 3. the socket takes less than the frame, or fails

void partialWriteDropsTheConnectionAndClosedCleansUp(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  assert_int_equal(h.service().connectionCount(), 1);
  assert_true(h.metric("wsfleet_connections_active") == 1);
  const double abnormal_before = h.metric(R"(wsfleet_disconnects_total{code="1006"})");

  c.wsi.write_result = 10;  // fewer bytes than the welcome frame
  assert_int_equal(h.writeable(c), -1);
  assert_int_equal(c.wsi.writes.size(), 1);
  assert_true(c.wsi.writes[0].bytes.size() > 10);

  // lws then closes the wsi and tells us.
  assert_int_equal(h.ws(c, LWS_CALLBACK_CLOSED), 0);
  assert_null(c.conn());
  assert_int_equal(h.service().connectionCount(), 0);
  assert_true(h.metric("wsfleet_connections_active") == 0);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1006"})") == abnormal_before + 1);
  // A second CLOSED (or WRITEABLE) on the same session memory is harmless.
  assert_int_equal(h.ws(c, LWS_CALLBACK_CLOSED), 0);
  assert_int_equal(h.writeable(c), 0);
}

void failedWriteDropsTheConnection(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  assert_int_equal(h.receive(c, R"({"type":"ping","id":1})"), 0);
  assert_int_equal(c.conn()->out.size(), 2);
  c.wsi.write_result = -1;
  assert_int_equal(h.writeable(c), -1);
  assert_int_equal(c.wsi.writes.size(), 1);
  // A dead socket does not ask for more WRITEABLE callbacks, even with frames queued.
  assert_int_equal(c.wsi.writable_requests, 0);
}

void endOfIterationFlushWritesEverythingQueuedInOneWrite(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  h.server().flushWrites();  // as the loop does before it blocks again
  assert_int_equal(c.wsi.writes.size(), 1);
  assert_false(c.conn()->flush_queued);
  assertFrameHas(c.wsi.writes[0], R"("type":"welcome")");
  assert_int_equal(h.receive(c, R"({"type":"subscribe","id":1,"channel":"live:room"})"), 0);
  assert_int_equal(h.receive(c, R"({"type":"publish","id":2,"channel":"live:room","data":{}})"), 0);
  assert_int_equal(c.conn()->out.size(), 3);
  h.server().flushWrites();
  assert_int_equal(c.wsi.writes.size(), 2);
  assert_int_equal(splitFrames(c.wsi.writes.back().bytes).size(), 3);
  assert_int_equal(c.wsi.writable_requests, 0);  // no epoll round trip for any of it
  assert_true(c.conn()->out.empty());
}

void endOfIterationFlushDefersToWriteableWhileLwsHoldsBytes(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  c.wsi.partial = true;  // an earlier write was not taken whole
  h.server().flushWrites();
  assert_true(c.wsi.writes.empty());
  assert_int_equal(c.wsi.writable_requests, 1);
  c.wsi.partial = false;
  assert_int_equal(h.writeable(c), 0);
  assert_int_equal(c.wsi.writes.size(), 1);
}

void endOfIterationFlushFailureKillsTheConnection(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  c.wsi.write_result = -1;
  h.server().flushWrites();
  assert_int_equal(c.wsi.writes.size(), 1);
  // Killed asynchronously (lws closes it at its next pass and reports it closed).
  assert_false(c.wsi.timeouts.empty());
}

void connectionClosedBeforeTheFlushIsNotTouched(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  assert_true(c.conn()->flush_queued);
  assert_int_equal(h.ws(c, LWS_CALLBACK_CLOSED), 0);
  h.server().flushWrites();  // must not write to (or read) the closed connection
  assert_true(c.wsi.writes.empty());
}

void failedPingWriteDropsTheConnection(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  h.drain(c);
  c.conn()->ping_due = true;  // as the ping timer leaves it
  c.wsi.write_result = -1;
  assert_int_equal(h.writeable(c), -1);
  assert_int_equal(c.wsi.writes.back().protocol, LWS_WRITE_PING);
}

// ---- 4. refused upgrades

void upgradeWithoutTokenGets401(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  const char* series = R"(wsfleet_handshake_rejected_total{reason="token_missing"})";
  const double before = h.metric(series);
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, "unused");
  c.wsi.headers.erase(WSI_TOKEN_HTTP_AUTHORIZATION);
  assert_int_equal(h.confirmUpgrade(c), 1);
  assert_int_equal(c.wsi.http_status, 401);
  assert_int_equal(c.wsi.headers_finalized, 1);
  const std::string body = c.wsi.httpBody();
  assert_true(contains(body, R"("reason":"token_missing")"));
  assert_int_equal(c.wsi.content_length, body.size());
  assert_true(h.metric(series) == before + 1);
  // The refused upgrade left nothing behind to establish.
  assert_int_equal(h.ws(c, LWS_CALLBACK_ESTABLISHED), -1);
  assert_int_equal(h.service().connectionCount(), 0);
}

void upgradeWithBadSubprotocolGets400(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, h.mintToken());
  c.wsi.headers[WSI_TOKEN_PROTOCOL] = "chat, wsfleet.v2";
  assert_int_equal(h.confirmUpgrade(c), 1);
  assert_int_equal(c.wsi.http_status, 400);
  assert_true(contains(c.wsi.httpBody(), R"("reason":"subprotocol")"));
}

void upgradeFromForeignOriginGets403(void** state) {
  EdgeHarness& h = harnessOf(state);
  EdgeOptions options;
  options.allowed_origins = {"https://app.example.com"};
  h.mustStart(options);

  WsClient foreign;
  EdgeHarness::setUpgradeHeaders(foreign, h.mintToken());
  foreign.wsi.headers[WSI_TOKEN_ORIGIN] = "https://evil.example.com";
  assert_int_equal(h.confirmUpgrade(foreign), 1);
  assert_int_equal(foreign.wsi.http_status, 403);
  assert_true(h.metric(R"(wsfleet_handshake_rejected_total{reason="origin"})") == 1);

  WsClient listed;
  EdgeHarness::setUpgradeHeaders(listed, h.mintToken());
  listed.wsi.headers[WSI_TOKEN_ORIGIN] = "https://app.example.com";
  assert_int_equal(h.confirmUpgrade(listed), 0);
  assert_int_equal(listed.wsi.http_status, 0);
}

void upgradeWithWrongVersionGets426(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, h.mintToken());
  c.wsi.headers[WSI_TOKEN_VERSION] = "8";
  assert_int_equal(h.confirmUpgrade(c), 1);
  assert_int_equal(c.wsi.http_status, 426);
  // RFC 6455 4.4: tell the client which version to use.
  bool hinted = false;
  for (const auto& [name, value] : c.wsi.http_headers) {
    hinted = hinted || (name == "Sec-WebSocket-Version:" && value == "13");
  }
  assert_true(hinted);
}

void upgradeWithQueryTokenIsAccepted(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, "unused");
  c.wsi.headers.erase(WSI_TOKEN_HTTP_AUTHORIZATION);
  c.wsi.uri_args = {"v=1", "access_token=" + h.mintToken("bob")};
  assert_int_equal(h.confirmUpgrade(c), 0);
  assert_int_equal(h.ws(c, LWS_CALLBACK_ESTABLISHED), 0);
  assert_non_null(c.conn());
  assert_string_equal(c.conn()->user.c_str(), "bob");
  assert_string_equal(c.conn()->peer.c_str(), "192.0.2.10");
}

void nonWebSocketUpgradeIsRefused(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, h.mintToken());
  static const char kH2c[] = "h2c";
  assert_int_equal(h.ws(c, LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kH2c, 3), 1);
  assert_int_equal(c.wsi.http_status, 400);
  assert_true(contains(c.wsi.httpBody(), R"("reason":"bad_upgrade")"));
}

void upgradeValueIsCaseInsensitive(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, h.mintToken());
  static const char kMixed[] = "WebSocket";
  assert_int_equal(h.ws(c, LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kMixed, 9), 0);
}

// lws 4.1.6 would hang up without a response on these lengths; the glue answers 400 first.
void negotiationListsTooLongForLwsGet400(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  static const char kWebSocket[] = "websocket";
  {
    WsClient c;
    EdgeHarness::setUpgradeHeaders(c, h.mintToken());
    c.wsi.headers[WSI_TOKEN_PROTOCOL] = "wsfleet.v1," + std::string(116, 'x');  // 127 bytes
    assert_int_equal(h.ws(c, LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kWebSocket, 9), 1);
    assert_int_equal(c.wsi.http_status, 400);
    assert_true(contains(c.wsi.httpBody(), R"("reason":"subprotocol")"));
  }
  {
    WsClient c;
    EdgeHarness::setUpgradeHeaders(c, h.mintToken());
    c.wsi.headers[WSI_TOKEN_EXTENSIONS] = std::string(255, 'e');
    assert_int_equal(h.ws(c, LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kWebSocket, 9), 1);
    assert_int_equal(c.wsi.http_status, 400);
    assert_true(contains(c.wsi.httpBody(), R"("reason":"extensions")"));
  }
  {
    WsClient c;
    EdgeHarness::setUpgradeHeaders(c, h.mintToken());
    c.wsi.headers[WSI_TOKEN_PROTOCOL] = "wsfleet.v1," + std::string(115, 'x');  // 126 bytes
    c.wsi.headers[WSI_TOKEN_EXTENSIONS] = std::string(254, 'e');
    assert_int_equal(h.ws(c, LWS_CALLBACK_HTTP_CONFIRM_UPGRADE, kWebSocket, 9), 0);
  }
}

void plainHttpOnTheWebSocketPortGets426(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  c.wsi.headers[WSI_TOKEN_GET_URI] = "/ws";
  static const char kPath[] = "/ws";
  // One request per connection on this listener: answered, then closed.
  assert_int_equal(h.ws(c, LWS_CALLBACK_HTTP, kPath, 3), -1);
  assert_int_equal(c.wsi.http_status, 426);
  assert_int_equal(c.wsi.http_headers.size(), 2);
  assert_string_equal(c.wsi.http_headers[0].first.c_str(), "Upgrade:");
  assert_string_equal(c.wsi.http_headers[0].second.c_str(), "websocket");
  assert_string_equal(c.wsi.http_headers[1].first.c_str(), "Connection:");
  assert_string_equal(c.wsi.http_headers[1].second.c_str(), "close");
  assert_true(contains(c.wsi.httpBody(), R"("reason":"upgrade_required")"));
  assert_int_equal(c.wsi.transactions_completed, 0);  // closed, not kept for another
}

// ---- 5. inbound messages: size cap, binary, reassembly

void declaredOversizeClosesWith1009BeforeBuffering(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();  // max_message_bytes = 1024
  WsClient c;
  h.connect(c);
  const char* series = R"(wsfleet_messages_dropped_total{reason="message_too_large"})";
  const double before = h.metric(series);
  c.wsi.remaining = 5000;  // the frame header announces far more than the cap
  c.wsi.final_fragment = true;
  static const char kStart[] = R"({"type":"publish")";
  // Reading stops at once; the close frame goes out on the next WRITEABLE.
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, kStart, std::strlen(kStart)), 0);
  assert_true(c.wsi.rx_paused);
  assert_true(c.conn()->rx.empty());
  assert_int_equal(h.writeable(c), -1);
  assert_int_equal(c.wsi.closes.size(), 1);
  assert_int_equal(c.wsi.closes[0].code, 1009);
  assert_true(h.metric(series) == before + 1);
}

void accumulatedOversizeClosesWith1009(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  // Fragments that each look small but add up past the cap.
  const std::string piece(600, 'x');
  c.wsi.remaining = 0;
  c.wsi.final_fragment = false;
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, piece.data(), piece.size()), 0);
  assert_int_equal(c.conn()->rx.size(), 600);
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, piece.data(), piece.size()), 0);
  assert_true(c.wsi.rx_paused);
  assert_true(c.conn()->rx.empty());  // what was buffered is released at once
  // Anything lws still hands over before reading stops is ignored.
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, piece.data(), piece.size()), 0);
  assert_true(c.conn()->rx.empty());
  assert_int_equal(h.writeable(c), -1);
  assert_int_equal(c.wsi.closes.size(), 1);
  assert_int_equal(c.wsi.closes[0].code, 1009);
}

void binaryFrameClosesWith1003(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  c.wsi.binary = true;
  static const unsigned char kBytes[] = {0x00, 0xff, 0x10};
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, kBytes, sizeof(kBytes)), -1);
  assert_int_equal(c.wsi.closes.size(), 1);
  assert_int_equal(c.wsi.closes[0].code, 1003);
  assert_int_equal(c.conn()->out.size(), 1);  // only the welcome
}

void splitMessageIsReassembled(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  h.drain(c);
  const std::string text = R"({"type":"ping","id":7})";
  const std::string a = text.substr(0, 5), b = text.substr(5, 9), rest = text.substr(14);
  // First frame, delivered in two callbacks (lws says how much of the frame is left) ...
  c.wsi.final_fragment = false;
  c.wsi.remaining = b.size();
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, a.data(), a.size()), 0);
  c.wsi.remaining = 0;
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, b.data(), b.size()), 0);
  assert_true(c.conn()->out.empty());  // nothing answered from a partial message
  assert_int_equal(c.conn()->rx.size(), a.size() + b.size());
  // ... then the final continuation frame.
  c.wsi.final_fragment = true;
  assert_int_equal(h.ws(c, LWS_CALLBACK_RECEIVE, rest.data(), rest.size()), 0);
  assert_true(c.conn()->rx.empty());
  assert_int_equal(c.conn()->out.size(), 1);
  assert_int_equal(h.writeable(c), 0);
  assertFrameHas(c.wsi.writes.back(), R"("type":"pong")");
  assertFrameHas(c.wsi.writes.back(), R"("id":7)");
}

// ---- 6. slow consumer

void slowConsumerIsClosedWith4009(void** state) {
  EdgeHarness& h = harnessOf(state);
  EdgeOptions options;
  options.outbound_max_messages = 4;
  h.mustStart(options);
  const char* series = R"(wsfleet_messages_dropped_total{reason="slow_consumer"})";
  const double dropped_before = h.metric(series);

  WsClient slow;
  h.connect(slow, "slow");
  assert_int_equal(h.receive(slow, R"({"type":"subscribe","id":1,"channel":"live:feed"})"), 0);
  // `slow` never gets WRITEABLE again: its queue holds the welcome and the reply.
  WsClient fast;
  h.connect(fast, "fast");
  auto publish = [&](int n) {
    const std::string text = R"({"type":"publish","id":)" + std::to_string(n) +
                             R"(,"channel":"live:feed","data":)" + std::to_string(n) + "}";
    assert_int_equal(h.receive(fast, text), 0);
    h.drain(fast);
  };
  // Messages 1 and 2 fill the queue to its cap of 4 (welcome, reply, 1, 2) ...
  publish(1);
  publish(2);
  assert_int_equal(slow.conn()->out.size(), 4);
  assert_int_equal(slow.conn()->close_code, 0);
  assert_true(h.metric(series) == dropped_before);
  // ... and message 3 overflows it.
  publish(3);
  assert_int_equal(slow.conn()->close_code, 4009);
  assert_true(h.metric(series) > dropped_before);

  assert_int_equal(h.writeable(slow), -1);
  assert_true(slow.wsi.writes.empty());  // the close goes before any queued frame
  assert_int_equal(slow.wsi.closes.size(), 1);
  assert_int_equal(slow.wsi.closes[0].code, 4009);
  assert_string_equal(slow.wsi.closes[0].reason.c_str(), "slow consumer");

  assert_int_equal(h.ws(slow, LWS_CALLBACK_CLOSED), 0);
  assert_int_equal(h.service().connectionCount(), 1);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="4009"})") == 1);
  // The publisher is unaffected.
  assert_int_equal(h.receive(fast, R"({"type":"ping","id":9})"), 0);
  assert_int_equal(h.writeable(fast), 0);
  assertFrameHas(fast.wsi.writes.back(), R"("type":"pong")");
}

// ---- 7. the peer closes

void peerCloseIsCountedByItsCode(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  const double normal_before = h.metric(R"(wsfleet_disconnects_total{code="1000"})");
  const double abnormal_before = h.metric(R"(wsfleet_disconnects_total{code="1006"})");
  static const unsigned char kClose[] = {0x03, 0xe8, 'b', 'y', 'e'};  // 1000 "bye"
  assert_int_equal(h.ws(c, LWS_CALLBACK_WS_PEER_INITIATED_CLOSE, kClose, sizeof(kClose)), 0);
  assert_int_equal(h.ws(c, LWS_CALLBACK_CLOSED), 0);
  assert_int_equal(h.service().connectionCount(), 0);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1000"})") == normal_before + 1);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1006"})") == abnormal_before);
}

void peerCloseWithoutCodeCountsAs1005(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  assert_int_equal(h.ws(c, LWS_CALLBACK_WS_PEER_INITIATED_CLOSE, nullptr, 0), 0);
  assert_int_equal(h.ws(c, LWS_CALLBACK_CLOSED), 0);
  // RFC 6455 7.1.5: a close frame without a code is "no status", not abnormal.
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1005"})") == 1);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1006"})") == 0);
}

void peerCloseWithReservedCodeIsAProtocolError(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  h.connect(c);
  static const unsigned char kReserved[] = {0x03, 0xed};  // 1005 must never be sent
  assert_int_equal(h.ws(c, LWS_CALLBACK_WS_PEER_INITIATED_CLOSE, kReserved, 2), -1);
  assert_int_equal(c.wsi.closes.size(), 1);
  assert_int_equal(c.wsi.closes[0].code, 1002);
  assert_int_equal(h.ws(c, LWS_CALLBACK_CLOSED), 0);
  assert_true(h.metric(R"(wsfleet_disconnects_total{code="1002"})") == 1);

  WsClient truncated;
  h.connect(truncated);
  static const unsigned char kOneByte[] = {0x03};
  assert_int_equal(h.ws(truncated, LWS_CALLBACK_WS_PEER_INITIATED_CLOSE, kOneByte, 1), -1);
  assert_int_equal(truncated.wsi.closes[0].code, 1002);
}

// ---- 9. ESTABLISHED without an accepted upgrade

void establishedWithoutUpgradeClosesWith1011(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  assert_int_equal(h.ws(c, LWS_CALLBACK_ESTABLISHED), -1);
  assert_int_equal(c.wsi.closes.size(), 1);
  assert_int_equal(c.wsi.closes[0].code, 1011);
  assert_null(c.conn());
  assert_int_equal(h.service().connectionCount(), 0);
}

void destroyedBeforeEstablishedForgetsTheClaims(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient c;
  EdgeHarness::setUpgradeHeaders(c, h.mintToken());
  assert_int_equal(h.confirmUpgrade(c), 0);
  // The socket died between the upgrade and ESTABLISHED; lws may reuse the address.
  assert_int_equal(h.ws(c, LWS_CALLBACK_WSI_DESTROY), 0);
  assert_int_equal(h.ws(c, LWS_CALLBACK_ESTABLISHED), -1);
  assert_int_equal(c.wsi.closes.back().code, 1011);
  assert_int_equal(h.service().connectionCount(), 0);
}

}  // namespace
}  // namespace wsfleet::testing

int main() {
  using namespace wsfleet::testing;
  const CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(startupRegistersBothListeners, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(listenFailureReleasesTheContext, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(writeableCoalescesQueuedFramesInOrder, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(partialWriteDropsTheConnectionAndClosedCleansUp, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(failedWriteDropsTheConnection, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(endOfIterationFlushWritesEverythingQueuedInOneWrite,
                                      harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(endOfIterationFlushDefersToWriteableWhileLwsHoldsBytes,
                                      harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(endOfIterationFlushFailureKillsTheConnection, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(connectionClosedBeforeTheFlushIsNotTouched, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(failedPingWriteDropsTheConnection, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(upgradeWithoutTokenGets401, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(upgradeWithBadSubprotocolGets400, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(upgradeFromForeignOriginGets403, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(upgradeWithWrongVersionGets426, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(upgradeWithQueryTokenIsAccepted, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(nonWebSocketUpgradeIsRefused, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(upgradeValueIsCaseInsensitive, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(negotiationListsTooLongForLwsGet400, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(plainHttpOnTheWebSocketPortGets426, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(declaredOversizeClosesWith1009BeforeBuffering, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(accumulatedOversizeClosesWith1009, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(binaryFrameClosesWith1003, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(splitMessageIsReassembled, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(slowConsumerIsClosedWith4009, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(peerCloseIsCountedByItsCode, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(peerCloseWithoutCodeCountsAs1005, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(peerCloseWithReservedCodeIsAProtocolError, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(establishedWithoutUpgradeClosesWith1011, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(destroyedBeforeEstablishedForgetsTheClaims, harnessSetup,
                                      harnessTeardown),
  };
  return cmocka_run_group_tests_name("ws_glue", tests, nullptr, nullptr);
}
