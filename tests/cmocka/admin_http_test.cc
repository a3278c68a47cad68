// The admin listener callbacks (edge/admin_http.cc) driven as libwebsockets would: request
// line and headers at LWS_CALLBACK_HTTP, the body in HTTP_BODY pieces, the answer at
// BODY_COMPLETION.
#include <cstring>
#include <string>

#include "tests/cmocka/edge_harness.h"

namespace wsfleet::testing {
namespace {

const char kPublishPath[] = "/api/v1/publish";

AdminRequest* pendingRequest(const AdminClient& client) {
  return reinterpret_cast<const AdminSession*>(client.session)->request;
}

int request(EdgeHarness& h, AdminClient& client, const char* path) {
  return h.admin(client, LWS_CALLBACK_HTTP, path, std::strlen(path));
}

int body(EdgeHarness& h, AdminClient& client, std::string_view chunk) {
  return h.admin(client, LWS_CALLBACK_HTTP_BODY, chunk.data(), chunk.size());
}

void preparePost(AdminClient& client, const std::string& api_key, size_t content_length) {
  client.wsi.headers[WSI_TOKEN_POST_URI] = kPublishPath;
  client.wsi.headers[WSI_TOKEN_HTTP_AUTHORIZATION] = "Bearer " + api_key;
  client.wsi.headers[WSI_TOKEN_HTTP_CONTENT_LENGTH] = std::to_string(content_length);
}

void healthzAnswers200(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  AdminClient a;
  a.wsi.headers[WSI_TOKEN_GET_URI] = "/healthz";
  assert_int_equal(request(h, a, "/healthz"), 0);
  assert_int_equal(a.wsi.http_status, 200);
  assert_int_equal(a.wsi.headers_finalized, 1);
  assert_string_equal(a.wsi.httpBody().c_str(), "ok\n");
  assert_int_equal(a.wsi.content_length, 3);
  assert_int_equal(a.wsi.writes.back().protocol, LWS_WRITE_HTTP_FINAL);
  assert_int_equal(a.wsi.transactions_completed, 1);
}

void connectionNotKeptAliveIsClosed(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  AdminClient a;
  a.wsi.headers[WSI_TOKEN_GET_URI] = "/healthz";
  a.wsi.transaction_completed_result = 1;  // lws: this transaction ends the connection
  assert_int_equal(request(h, a, "/healthz"), -1);
  assert_int_equal(a.wsi.http_status, 200);
}

void failedBodyWriteCloses(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  AdminClient a;
  a.wsi.headers[WSI_TOKEN_GET_URI] = "/readyz";
  a.wsi.write_result = -1;
  assert_int_equal(request(h, a, "/readyz"), -1);
  assert_int_equal(a.wsi.transactions_completed, 0);
}

void declaredOversizeBodyGets413AtOnce(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();  // max_body_bytes = 256
  AdminClient a;
  preparePost(a, kApiKey, 100000);
  assert_int_equal(request(h, a, kPublishPath), -1);  // answered and closed: no body read
  assert_int_equal(a.wsi.http_status, 413);
  assert_true(contains(a.wsi.httpBody(), R"("reason":"body_too_large")"));
  assert_null(pendingRequest(a));  // nothing waits for a body that will not be read
}

void publishBodyInTwoChunks(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  WsClient subscriber;
  h.connect(subscriber);
  assert_int_equal(h.receive(subscriber, R"({"type":"subscribe","id":1,"channel":"chat:room"})"),
                   0);
  h.drain(subscriber);

  const std::string json = R"({"tenant":"acme","channel":"chat:room","data":{"text":"hi"}})";
  AdminClient a;
  preparePost(a, kApiKey, json.size());
  assert_int_equal(request(h, a, kPublishPath), 0);
  assert_int_equal(a.wsi.http_status, 0);  // no answer before the body
  assert_non_null(pendingRequest(a));
  assert_int_equal(body(h, a, std::string_view(json).substr(0, 20)), 0);
  assert_int_equal(body(h, a, std::string_view(json).substr(20)), 0);
  assert_int_equal(a.wsi.http_status, 0);
  assert_int_equal(h.admin(a, LWS_CALLBACK_HTTP_BODY_COMPLETION), 0);
  assert_int_equal(a.wsi.http_status, 200);
  assert_true(contains(a.wsi.httpBody(), R"("offset":1)"));
  assert_null(pendingRequest(a));

  // The whole reassembled body reached the engine: the subscriber has the message.
  assert_int_equal(subscriber.conn()->out.size(), 1);
  assert_int_equal(h.writeable(subscriber), 0);
  const std::string& frame = subscriber.wsi.writes.back().bytes;
  assert_true(contains(frame, R"("type":"message")"));
  assert_true(contains(frame, R"("text":"hi")"));
}

void postWithoutContentLengthGets411(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  AdminClient a;
  preparePost(a, kApiKey, 0);
  a.wsi.headers.erase(WSI_TOKEN_HTTP_CONTENT_LENGTH);  // chunked transfer
  assert_int_equal(request(h, a, kPublishPath), -1);
  assert_int_equal(a.wsi.http_status, 411);
  assert_true(contains(a.wsi.httpBody(), R"("reason":"length_required")"));
  assert_null(pendingRequest(a));
}

void bodyLongerThanDeclaredGets413AtCompletion(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();  // max_body_bytes = 256
  AdminClient a;
  preparePost(a, kApiKey, 200);
  assert_int_equal(request(h, a, kPublishPath), 0);
  const std::string chunk(200, ' ');
  assert_int_equal(body(h, a, chunk), 0);
  assert_int_equal(body(h, a, chunk), 0);
  assert_int_equal(h.admin(a, LWS_CALLBACK_HTTP_BODY_COMPLETION), -1);
  assert_int_equal(a.wsi.http_status, 413);
  assert_null(pendingRequest(a));
}

void unknownApiKeyGets401(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  const std::string json = R"({"tenant":"acme","channel":"chat:room","data":1})";
  AdminClient a;
  preparePost(a, "not-the-key-0123456789", json.size());
  assert_int_equal(request(h, a, kPublishPath), 0);
  assert_int_equal(body(h, a, json), 0);
  assert_int_equal(h.admin(a, LWS_CALLBACK_HTTP_BODY_COMPLETION), 0);
  assert_int_equal(a.wsi.http_status, 401);
}

void closeMidBodyFreesTheRequest(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  AdminClient a;
  preparePost(a, kApiKey, 50);
  assert_int_equal(request(h, a, kPublishPath), 0);
  assert_int_equal(body(h, a, R"({"tenant":)"), 0);
  assert_non_null(pendingRequest(a));
  assert_int_equal(h.admin(a, LWS_CALLBACK_CLOSED_HTTP), 0);
  assert_null(pendingRequest(a));
  // A stray body callback with no request in flight closes the connection.
  assert_int_equal(body(h, a, "x"), -1);
  assert_int_equal(h.admin(a, LWS_CALLBACK_HTTP_BODY_COMPLETION), -1);
}

void unsupportedMethodGets405(void** state) {
  EdgeHarness& h = harnessOf(state);
  h.mustStart();
  AdminClient a;
  a.wsi.headers[WSI_TOKEN_PUT_URI] = "/healthz";
  assert_int_equal(request(h, a, "/healthz"), 0);
  assert_int_equal(a.wsi.http_status, 405);
}

}  // namespace
}  // namespace wsfleet::testing

int main() {
  using namespace wsfleet::testing;
  const CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(healthzAnswers200, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(connectionNotKeptAliveIsClosed, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(failedBodyWriteCloses, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(declaredOversizeBodyGets413AtOnce, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(publishBodyInTwoChunks, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(postWithoutContentLengthGets411, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(bodyLongerThanDeclaredGets413AtCompletion, harnessSetup,
                                      harnessTeardown),
      cmocka_unit_test_setup_teardown(unknownApiKeyGets401, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(closeMidBodyFreesTheRequest, harnessSetup, harnessTeardown),
      cmocka_unit_test_setup_teardown(unsupportedMethodGets405, harnessSetup, harnessTeardown),
  };
  return cmocka_run_group_tests_name("admin_http", tests, nullptr, nullptr);
}
