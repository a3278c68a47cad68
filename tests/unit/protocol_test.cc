#include "common/protocol.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace wsfleet {
namespace {

class ProtocolTest : public ::testing::Test {
 protected:
  Status decode(std::string_view text) { return decodeClientCommand(parser_, text, &cmd_); }

  void expectBadField(std::string_view text, std::string_view field) {
    const Status s = decode(text);
    ASSERT_FALSE(s.isOk()) << "accepted: " << text;
    EXPECT_EQ(s.code(), Code::kBadRequest) << text;
    EXPECT_STREQ(s.reason(), "bad_field") << text;
    EXPECT_NE(s.message().find(field), std::string::npos) << s.message();
  }

  JsonParser parser_;
  ClientCommand cmd_;
};

TEST_F(ProtocolTest, CommandTypeNames) {
  EXPECT_EQ(commandTypeName(CommandType::kSubscribe), "subscribe");
  EXPECT_EQ(commandTypeName(CommandType::kUnsubscribe), "unsubscribe");
  EXPECT_EQ(commandTypeName(CommandType::kPublish), "publish");
  EXPECT_EQ(commandTypeName(CommandType::kSend), "send");
  EXPECT_EQ(commandTypeName(CommandType::kPresence), "presence");
  EXPECT_EQ(commandTypeName(CommandType::kRefresh), "refresh");
  EXPECT_EQ(commandTypeName(CommandType::kPing), "ping");
}

TEST_F(ProtocolTest, Subscribe) {
  ASSERT_TRUE(decode(R"({"type":"subscribe","id":1,"channel":"chat:room42"})").isOk());
  EXPECT_EQ(cmd_.type, CommandType::kSubscribe);
  EXPECT_EQ(cmd_.id, 1u);
  EXPECT_EQ(cmd_.channel, "chat:room42");
  EXPECT_FALSE(cmd_.since.has_value());

  ASSERT_TRUE(decode(R"({"type":"subscribe","channel":"chat:r",
                         "since":{"epoch":"e-1","offset":1241}})")
                  .isOk());
  EXPECT_FALSE(cmd_.id.has_value());
  ASSERT_TRUE(cmd_.since.has_value());
  EXPECT_EQ(cmd_.since->epoch, "e-1");
  EXPECT_EQ(cmd_.since->offset, 1241u);

  ASSERT_TRUE(decode(R"({"type":"subscribe","channel":"chat:r","since":null})").isOk());
  EXPECT_FALSE(cmd_.since.has_value());

  expectBadField(R"({"type":"subscribe","channel":"chat:r","since":5})", "since");
  expectBadField(R"({"type":"subscribe","channel":"chat:r","since":{"offset":1}})", "since.epoch");
  expectBadField(R"({"type":"subscribe","channel":"chat:r","since":{"epoch":"e"}})",
                 "since.offset");
  expectBadField(R"({"type":"subscribe","channel":"chat:r","since":{"epoch":"e","offset":-1}})",
                 "since.offset");
  expectBadField(R"({"type":"subscribe","channel":"chat:r","since":{"epoch":1,"offset":1}})",
                 "since.epoch");
}

TEST_F(ProtocolTest, UnsubscribePresencePingRefresh) {
  ASSERT_TRUE(decode(R"({"type":"unsubscribe","id":2,"channel":"chat:x"})").isOk());
  EXPECT_EQ(cmd_.type, CommandType::kUnsubscribe);
  EXPECT_EQ(cmd_.channel, "chat:x");
  ASSERT_TRUE(decode(R"({"type":"presence","id":3,"channel":"chat:y"})").isOk());
  EXPECT_EQ(cmd_.type, CommandType::kPresence);
  EXPECT_EQ(cmd_.channel, "chat:y");
  ASSERT_TRUE(decode(R"({"type":"ping","id":4})").isOk());
  EXPECT_EQ(cmd_.type, CommandType::kPing);
  EXPECT_EQ(cmd_.id, 4u);
  ASSERT_TRUE(decode(R"({"type":"ping"})").isOk());
  EXPECT_FALSE(cmd_.id.has_value());  // the previous command's id does not leak
  ASSERT_TRUE(decode(R"({"type":"refresh","id":5,"token":"eyJ.a.b"})").isOk());
  EXPECT_EQ(cmd_.type, CommandType::kRefresh);
  EXPECT_EQ(cmd_.token, "eyJ.a.b");
  expectBadField(R"({"type":"refresh","id":5})", "token");
  expectBadField(R"({"type":"refresh","id":5,"token":7})", "token");
  expectBadField(R"({"type":"unsubscribe"})", "channel");
  expectBadField(R"({"type":"presence","channel":["chat:x"]})", "channel");
}

TEST_F(ProtocolTest, Publish) {
  ASSERT_TRUE(decode(R"({"type":"publish","id":9,"channel":"chat:r",
                         "data": {"text" : "hi", "n":[1, 2.5, true, null]},
                         "idempotency_key":"k-1"})")
                  .isOk());
  EXPECT_EQ(cmd_.type, CommandType::kPublish);
  EXPECT_EQ(cmd_.channel, "chat:r");
  EXPECT_EQ(cmd_.data_json, R"({"text":"hi","n":[1,2.5,true,null]})");
  EXPECT_EQ(cmd_.idempotency_key, "k-1");

  // Any JSON value is data, including scalars and null.
  ASSERT_TRUE(decode(R"({"type":"publish","channel":"chat:r","data":"str"})").isOk());
  EXPECT_EQ(cmd_.data_json, R"("str")");
  EXPECT_TRUE(cmd_.idempotency_key.empty());
  ASSERT_TRUE(decode(R"({"type":"publish","channel":"chat:r","data":null})").isOk());
  EXPECT_EQ(cmd_.data_json, "null");

  expectBadField(R"({"type":"publish","channel":"chat:r"})", "data");
  expectBadField(R"({"type":"publish","data":1})", "channel");
  expectBadField(R"({"type":"publish","channel":"chat:r","data":1,"idempotency_key":""})",
                 "idempotency_key");
  expectBadField(R"({"type":"publish","channel":"chat:r","data":1,"idempotency_key":5})",
                 "idempotency_key");
  const std::string key128(128, 'k');
  ASSERT_TRUE(decode(R"({"type":"publish","channel":"chat:r","data":1,"idempotency_key":")" +
                     key128 + "\"}")
                  .isOk());
  EXPECT_EQ(cmd_.idempotency_key, key128);
  expectBadField(
      R"({"type":"publish","channel":"chat:r","data":1,"idempotency_key":")" + key128 + "k\"}",
      "idempotency_key");
  expectBadField(R"({"type":"publish","channel":"chat:r","data":1,"idempotency_key":"a\nb"})",
                 "idempotency_key");
}

TEST_F(ProtocolTest, DataPreservedWithUnicodeAndNesting) {
  ASSERT_TRUE(decode("{\"type\":\"publish\",\"channel\":\"chat:r\",\"data\":"
                     "{ \"a\" : { \"b\" : [ { \"c\" : \"caf\xC3\xA9 \\ud83d\\ude00\" } ] },"
                     " \"q\" : \"say \\\"hi\\\"\\n\", \"big\": 18446744073709551615,"
                     " \"neg\": -5 } }")
                  .isOk());
  EXPECT_EQ(cmd_.data_json,
            "{\"a\":{\"b\":[{\"c\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}]},"
            "\"q\":\"say \\\"hi\\\"\\n\",\"big\":18446744073709551615,\"neg\":-5}");
  // The minified data is itself valid JSON.
  JsonParser other;
  EXPECT_TRUE(other.parse(cmd_.data_json).isOk());
}

TEST_F(ProtocolTest, Send) {
  ASSERT_TRUE(decode(R"({"type":"send","id":3,"user":"bob","data":{"x":1}})").isOk());
  EXPECT_EQ(cmd_.type, CommandType::kSend);
  EXPECT_EQ(cmd_.user, "bob");
  EXPECT_EQ(cmd_.data_json, R"({"x":1})");
  expectBadField(R"({"type":"send","data":1})", "user");
  expectBadField(R"({"type":"send","user":"bob"})", "data");
  const Status bad_user = decode(R"({"type":"send","user":"b ob","data":1})");
  EXPECT_STREQ(bad_user.reason(), "bad_user");
}

TEST_F(ProtocolTest, IdRange) {
  ASSERT_TRUE(decode(R"({"type":"ping","id":0})").isOk());
  EXPECT_EQ(cmd_.id, 0u);
  ASSERT_TRUE(decode(R"({"type":"ping","id":18446744073709551615})").isOk());
  EXPECT_EQ(cmd_.id, std::numeric_limits<uint64_t>::max());
  ASSERT_TRUE(decode(R"({"type":"ping","id":9223372036854775807})").isOk());
  EXPECT_EQ(cmd_.id, 9223372036854775807u);
  ASSERT_TRUE(decode(R"({"type":"ping","id":9223372036854775808})").isOk());
  EXPECT_EQ(cmd_.id, 9223372036854775808u);

  for (std::string_view text :
       {R"({"type":"ping","id":-1})", R"({"type":"ping","id":1.5})", R"({"type":"ping","id":1.0})",
        R"({"type":"ping","id":1e3})", R"({"type":"ping","id":"7"})",
        R"({"type":"ping","id":null})", R"({"type":"ping","id":true})"}) {
    expectBadField(text, "id");
    EXPECT_FALSE(cmd_.id.has_value()) << text;
  }
  // Beyond 64 bits the number itself is refused by the parser.
  const Status big = decode(R"({"type":"ping","id":18446744073709551616})");
  EXPECT_EQ(big.code(), Code::kBadRequest);
  EXPECT_STREQ(big.reason(), "json_bad_number");
  EXPECT_FALSE(cmd_.id.has_value());
}

TEST_F(ProtocolTest, IdKeptOnLaterFailures) {
  expectBadField(R"({"type":"publish","id":77,"channel":"chat:r"})", "data");
  EXPECT_EQ(cmd_.id, 77u);
  const Status unknown = decode(R"({"id":78,"type":"teleport"})");
  EXPECT_STREQ(unknown.reason(), "unknown_command");
  EXPECT_EQ(unknown.code(), Code::kBadRequest);
  EXPECT_EQ(cmd_.id, 78u);
  expectBadField(R"({"id":79})", "type");
  EXPECT_EQ(cmd_.id, 79u);
  expectBadField(R"({"id":80,"type":5})", "type");
  EXPECT_EQ(cmd_.id, 80u);
}

TEST_F(ProtocolTest, UnknownAndIdentityFieldsIgnored) {
  ASSERT_TRUE(decode(R"({"type":"publish","channel":"chat:r","data":{"m":1},
                         "from":"mallory","tenant":"other","tnt":"x","sub":"root",
                         "future_field":{"deep":[1,2,3]}})")
                  .isOk());
  EXPECT_EQ(cmd_.data_json, R"({"m":1})");
  EXPECT_EQ(cmd_.user, "");
  ASSERT_TRUE(decode(R"({"type":"ping","extra":1})").isOk());
}

TEST_F(ProtocolTest, FrameLevelErrors) {
  for (std::string_view text : {"[]", "\"ping\"", "7", "null"}) {
    const Status s = decode(text);
    ASSERT_FALSE(s.isOk()) << text;
    EXPECT_EQ(s.code(), Code::kBadRequest);
    EXPECT_STREQ(s.reason(), "bad_frame") << text;
  }
  EXPECT_STREQ(decode("{\"type\":").reason(), "json_invalid");
  EXPECT_STREQ(decode("{\"type\":\"ping\",\"x\":\"\\ud800\"}").reason(), "json_bad_string");
  EXPECT_STREQ(decode("{\"type\":\"ping\",\"x\":\"\xFF\"}").reason(), "json_bad_string");
  JsonParser small(JsonLimits{.max_bytes = 32, .max_depth = 4});
  const Status too_big =
      decodeClientCommand(small, R"({"type":"publish","channel":"chat:r","data":1})", &cmd_);
  EXPECT_EQ(too_big.code(), Code::kTooLarge);
  const Status too_deep = decodeClientCommand(small, R"({"type":"ping","d":[[[[1]]]]})", &cmd_);
  EXPECT_STREQ(too_deep.reason(), "json_too_deep");
}

TEST_F(ProtocolTest, ApiBodies) {
  auto pub = decodeApiPublish(
      parser_, R"({"tenant":"acme","channel":"chat:r","data":[1,"a"],"idempotency_key":"i"})");
  ASSERT_TRUE(pub.isOk()) << pub.status().toString();
  EXPECT_EQ(pub->tenant, "acme");
  EXPECT_EQ(pub->channel, "chat:r");
  EXPECT_EQ(pub->data_json, R"([1,"a"])");
  EXPECT_EQ(pub->idempotency_key, "i");
  EXPECT_FALSE(decodeApiPublish(parser_, R"({"channel":"chat:r","data":1})").isOk());
  EXPECT_FALSE(decodeApiPublish(parser_, R"({"tenant":"acme","data":1})").isOk());
  EXPECT_FALSE(decodeApiPublish(parser_, R"({"tenant":"acme","channel":"chat:r"})").isOk());
  EXPECT_FALSE(decodeApiPublish(parser_, R"([1])").isOk());

  auto send = decodeApiSend(parser_, R"({"tenant":"acme","user":"bob","data":{"k":"v"}})");
  ASSERT_TRUE(send.isOk()) << send.status().toString();
  EXPECT_EQ(send->tenant, "acme");
  EXPECT_EQ(send->user, "bob");
  EXPECT_EQ(send->data_json, R"({"k":"v"})");
  EXPECT_TRUE(send->idempotency_key.empty());
  auto no_user = decodeApiSend(parser_, R"({"tenant":"acme","data":1})");
  ASSERT_FALSE(no_user.isOk());
  EXPECT_STREQ(no_user.status().reason(), "bad_field");
  EXPECT_NE(no_user.status().message().find("user"), std::string::npos);
  EXPECT_FALSE(decodeApiSend(parser_, R"({"tenant":"acme","user":"bob"})").isOk());
  EXPECT_FALSE(decodeApiSend(parser_, R"({"tenant":7,"user":"bob","data":1})").isOk());
}

// ---- encoders: exact bytes ----

TEST(ProtocolEncodeTest, Welcome) {
  WelcomeInfo w;
  w.session = "s1";
  w.node = "edge-1";
  w.region = "us-east";
  w.ping_interval_ms = 25000;
  w.resume_window_ms = 120000;
  w.max_message_bytes = 65536;
  w.regions = {{"us-east", "wss://us-east.rt.example.com/ws"},
               {"eu-west", "wss://eu-west.rt.example.com/ws"}};
  EXPECT_EQ(encodeWelcome(w),
            R"({"type":"welcome","session":"s1","node":"edge-1","region":"us-east",)"
            R"("ping_interval_ms":25000,"resume_window_ms":120000,"max_message_bytes":65536,)"
            R"("regions":[{"name":"us-east","url":"wss://us-east.rt.example.com/ws"},)"
            R"({"name":"eu-west","url":"wss://eu-west.rt.example.com/ws"}]})");
  w.regions.clear();
  EXPECT_NE(encodeWelcome(w).find(R"("regions":[]})"), std::string::npos);
}

TEST(ProtocolEncodeTest, Replies) {
  EXPECT_EQ(encodeOkReply(7), R"({"type":"reply","id":7,"ok":true})");
  EXPECT_EQ(encodeOkReply(std::nullopt), R"({"type":"reply","ok":true})");
  EXPECT_EQ(encodeOkReply(std::numeric_limits<uint64_t>::max()),
            R"({"type":"reply","id":18446744073709551615,"ok":true})");
  EXPECT_EQ(encodeSubscribeReply(1, {"ep", 1241}, true),
            R"({"type":"reply","id":1,"ok":true,"epoch":"ep","offset":1241,"recovered":true})");
  EXPECT_EQ(encodeSubscribeReply(std::nullopt, {"ep", 0}, false),
            R"({"type":"reply","ok":true,"epoch":"ep","offset":0,"recovered":false})");
  EXPECT_EQ(encodePublishReply(2, 99), R"({"type":"reply","id":2,"ok":true,"offset":99})");
  EXPECT_EQ(encodePublishReply(2, 99, "e1"),
            R"({"type":"reply","id":2,"ok":true,"offset":99,"epoch":"e1"})");
  EXPECT_EQ(encodeSendReply(3, "queued"),
            R"({"type":"reply","id":3,"ok":true,"delivered":"queued"})");
  EXPECT_EQ(encodePresenceReply(4, {{"a", 2}, {"b\"", 1}}),
            R"({"type":"reply","id":4,"ok":true,"members":[{"user":"a","connections":2},)"
            R"({"user":"b\"","connections":1}]})");
  EXPECT_EQ(encodePresenceReply(5, {}), R"({"type":"reply","id":5,"ok":true,"members":[]})");
  EXPECT_EQ(encodeRefreshReply(6, 1764300030000),
            R"({"type":"reply","id":6,"ok":true,"expires_at":1764300030000})");
}

TEST(ProtocolEncodeTest, ErrorReplyAndPong) {
  EXPECT_EQ(encodeErrorReply(8, Code::kBadRequest, "missing field \"data\""),
            R"({"type":"reply","id":8,"ok":false,"error":{"code":"bad_request",)"
            R"("message":"missing field \"data\""}})");
  EXPECT_EQ(encodeErrorReply(std::nullopt, Code::kRateLimited, "slow down"),
            R"({"type":"reply","ok":false,"error":{"code":"rate_limited","message":"slow down"}})");
  EXPECT_EQ(encodeErrorReply(1, Code::kForbidden, "x"),
            R"({"type":"reply","id":1,"ok":false,"error":{"code":"forbidden","message":"x"}})");
  // Non-protocol codes never reach the wire as such.
  EXPECT_NE(encodeErrorReply(1, Code::kConfig, "x").find(R"("code":"internal")"),
            std::string::npos);
  // Control characters and invalid UTF-8 in a message are made safe.
  EXPECT_EQ(encodeErrorReply(1, Code::kInternal, "a\r\n\xFF"),
            "{\"type\":\"reply\",\"id\":1,\"ok\":false,\"error\":{\"code\":\"internal\","
            "\"message\":\"a\\r\\n\xEF\xBF\xBD\"}}");
  EXPECT_EQ(encodePong(12), R"({"type":"pong","id":12})");
  EXPECT_EQ(encodePong(std::nullopt), R"({"type":"pong"})");
}

TEST(ProtocolEncodeTest, Events) {
  EXPECT_EQ(encodeMessage("chat:room42", "e1", 1241, "alice", R"({"t":"hi"})", 1764300000123),
            R"({"type":"message","channel":"chat:room42","epoch":"e1","offset":1241,)"
            R"("from":"alice","data":{"t":"hi"},"ts":1764300000123})");
  EXPECT_EQ(encodeDirect("alice", "[1,2]", 5),
            R"({"type":"direct","from":"alice","data":[1,2],"ts":5})");
  EXPECT_EQ(encodeJoin("chat:room42", "bob"),
            R"({"type":"join","channel":"chat:room42","user":"bob"})");
  EXPECT_EQ(encodeLeave("chat:room42", "bob"),
            R"({"type":"leave","channel":"chat:room42","user":"bob"})");
  EXPECT_EQ(encodeReconnect(1800, "wss://eu.example/ws", "drain"),
            R"({"type":"reconnect","after_ms":1800,"url":"wss://eu.example/ws","reason":"drain"})");
  EXPECT_EQ(encodeReconnect(0, "", "overload"),
            R"({"type":"reconnect","after_ms":0,"reason":"overload"})");
  EXPECT_EQ(encodeRefreshRequired(1764300030000),
            R"({"type":"refresh_required","expires_at":1764300030000})");
}

TEST(ProtocolEncodeTest, MessageRoundTrip) {
  JsonParser parser;
  ClientCommand cmd;
  ASSERT_TRUE(
      decodeClientCommand(parser,
                          "{\"type\":\"publish\",\"channel\":\"chat:r\",\"data\":"
                          "{\"emoji\":\"\\ud83d\\ude00\",\"n\":[1,-2,3.25],\"s\":\"q\\\"\"}}",
                          &cmd)
          .isOk());
  const std::string frame =
      encodeMessage(cmd.channel, "ep\"och", 42, "al\nice", cmd.data_json, 1764300000123);
  auto r = parser.parse(frame);
  ASSERT_TRUE(r.isOk()) << r.status().toString() << " in " << frame;
  simdjson::dom::object obj;
  ASSERT_EQ(r->get_object().get(obj), simdjson::SUCCESS);
  std::string_view type, channel, epoch, from;
  uint64_t offset = 0;
  int64_t ts = 0;
  ASSERT_EQ(obj["type"].get_string().get(type), simdjson::SUCCESS);
  ASSERT_EQ(obj["channel"].get_string().get(channel), simdjson::SUCCESS);
  ASSERT_EQ(obj["epoch"].get_string().get(epoch), simdjson::SUCCESS);
  ASSERT_EQ(obj["from"].get_string().get(from), simdjson::SUCCESS);
  ASSERT_EQ(obj["offset"].get_uint64().get(offset), simdjson::SUCCESS);
  ASSERT_EQ(obj["ts"].get_int64().get(ts), simdjson::SUCCESS);
  EXPECT_EQ(type, "message");
  EXPECT_EQ(channel, "chat:r");
  EXPECT_EQ(epoch, "ep\"och");
  EXPECT_EQ(from, "al\nice");
  EXPECT_EQ(offset, 42u);
  EXPECT_EQ(ts, 1764300000123);
  simdjson::dom::element data;
  ASSERT_EQ(obj["data"].get(data), simdjson::SUCCESS);
  EXPECT_EQ(jsonToString(data), cmd.data_json);
}

}  // namespace
}  // namespace wsfleet
