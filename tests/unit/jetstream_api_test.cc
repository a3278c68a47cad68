#include "common/jetstream_api.h"

#include <gtest/gtest.h>

namespace wsfleet {
namespace {

TEST(JetStreamApi, StreamConfigCarriesLimitsAndRepublish) {
  StreamSpec spec;
  spec.name = "WSF_HIST_eu";
  spec.subjects = "wsf.eu.hist.>";
  spec.republish_dest = "wsf.eu.ch.>";
  spec.max_msgs_per_subject = 100;
  spec.max_age_ms = 300000;
  spec.duplicate_window_ms = 120000;
  spec.replicas = 3;
  JsonParser parser;
  auto doc = parser.parse(streamConfigJson(spec));
  ASSERT_TRUE(doc.isOk());
  EXPECT_EQ(std::string_view((*doc)["name"]), "WSF_HIST_eu");
  EXPECT_EQ(std::string_view((*doc)["subjects"].at(0)), "wsf.eu.hist.>");
  EXPECT_EQ(int64_t((*doc)["num_replicas"]), 3);
  EXPECT_EQ(int64_t((*doc)["max_age"]), 300000LL * 1000000);
  EXPECT_EQ(int64_t((*doc)["duplicate_window"]), 120000LL * 1000000);
  EXPECT_EQ(std::string_view((*doc)["republish"]["dest"]), "wsf.eu.ch.>");
  EXPECT_EQ(std::string_view((*doc)["discard"]), "old");
  spec.republish_dest.clear();
  auto plain = parser.parse(streamConfigJson(spec));
  ASSERT_TRUE(plain.isOk());
  simdjson::dom::element republish;
  EXPECT_NE((*plain)["republish"].get(republish), simdjson::SUCCESS);
}

TEST(JetStreamApi, PurgeBelowASequence) {
  EXPECT_EQ(purgeSubjectBelow("wsf.eu.inbox.demo.bob", 7),
            R"({"filter":"wsf.eu.inbox.demo.bob","seq":7})");
  EXPECT_EQ(streamPurgeSubject("S"), "$JS.API.STREAM.PURGE.S");
}

TEST(JetStreamApi, PubAckAndDuplicate) {
  JsonParser parser;
  auto ack = parsePubAck(parser, R"({"stream":"S","seq":42})");
  ASSERT_TRUE(ack.isOk());
  EXPECT_EQ(ack->seq, 42u);
  EXPECT_FALSE(ack->duplicate);
  auto dup = parsePubAck(parser, R"({"stream":"S","seq":42,"duplicate":true})");
  ASSERT_TRUE(dup.isOk());
  EXPECT_TRUE(dup->duplicate);
}

TEST(JetStreamApi, FullStoresAreTheirOwnReason) {
  JsonParser parser;
  for (
      const char* reply :
      {R"({"error":{"code":400,"err_code":10002,"description":"resource limits exceeded for account"}})",
       R"({"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"}})",
       R"({"error":{"code":500,"err_code":10047,"description":"insufficient storage resources available"}})"}) {
    JsError error;
    auto ack = parsePubAck(parser, reply, &error);
    ASSERT_FALSE(ack.isOk()) << reply;
    EXPECT_EQ(ack.status().code(), Code::kUnavailable);
    EXPECT_STREQ(ack.status().reason(), "jetstream_store_full") << reply;
    EXPECT_NE(error.err_code, 0);
  }
  JsError error;
  auto other = parsePubAck(
      parser, R"({"error":{"code":503,"err_code":10077,"description":"store closed"}})", &error);
  ASSERT_FALSE(other.isOk());
  EXPECT_STREQ(other.status().reason(), "jetstream_error");
}

TEST(JetStreamApi, StreamInfoAndNotFound) {
  JsonParser parser;
  auto info = parseStreamInfo(parser, R"({"type":"io.nats.jetstream.api.v1.stream_info_response",
      "config":{"name":"S","max_msgs_per_subject":100,"max_age":5000000000,"num_replicas":3,
                "republish":{"src":"a.>","dest":"b.>"}},
      "created":"2026-11-28T10:00:00.123456789Z","state":{"messages":3,"first_seq":5,"last_seq":7,
      "subjects":{"wsf.eu.hist.demo.chat:a":2}}})");
  ASSERT_TRUE(info.isOk()) << info.status().toString();
  EXPECT_EQ(info->created, "2026-11-28T10:00:00.123456789Z");
  EXPECT_EQ(info->first_seq, 5u);
  EXPECT_EQ(info->last_seq, 7u);
  EXPECT_EQ(info->max_age_ms, 5000);
  EXPECT_EQ(info->replicas, 3);
  EXPECT_TRUE(info->has_republish);
  EXPECT_EQ(info->subject_messages, 2u);
  EXPECT_EQ(streamInfoForSubject("a.b"), R"({"subjects_filter":"a.b"})");
  JsError error;
  auto missing = parseStreamInfo(
      parser, R"({"error":{"code":404,"err_code":10059,"description":"stream not found"}})",
      &error);
  ASSERT_FALSE(missing.isOk());
  EXPECT_EQ(error.err_code, kJsStreamNotFound);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
}

TEST(JetStreamApi, MsgGetDecodesThePayload) {
  JsonParser parser;
  auto got = parseMsgGet(parser, R"({"message":{"subject":"wsf.eu.hist.demo.chat:a","seq":9,
      "data":"aGVsbG8gd29ybGQ=","time":"2026-11-28T10:00:00Z"}})");
  ASSERT_TRUE(got.isOk()) << got.status().toString();
  EXPECT_EQ(got->seq, 9u);
  EXPECT_EQ(got->subject, "wsf.eu.hist.demo.chat:a");
  EXPECT_EQ(got->data, "hello world");
  JsError error;
  auto none = parseMsgGet(
      parser, R"({"error":{"code":404,"err_code":10037,"description":"no message found"}})",
      &error);
  ASSERT_FALSE(none.isOk());
  EXPECT_EQ(error.err_code, kJsNoMessageFound);
  EXPECT_FALSE(parseMsgGet(parser, "not json").isOk());
  EXPECT_FALSE(parseMsgGet(parser, R"({"message":{"subject":"x","seq":1,"data":"@@"}})").isOk());
}

TEST(JetStreamApi, Base64) {
  EXPECT_EQ(base64Decode("Pz8/Pw=="), "????");
  EXPECT_EQ(base64Decode("+/8="), std::string("\xfb\xff"));
  EXPECT_FALSE(base64Decode("-_8="));
  EXPECT_EQ(base64Decode(""), "");
}

}  // namespace
}  // namespace wsfleet
