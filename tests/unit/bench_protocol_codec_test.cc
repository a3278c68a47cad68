// NATS and MQTT stream parsers and encoders of the load generator.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/bench/mqtt_codec.h"
#include "tools/bench/nats_codec.h"

namespace wsfleet::bench {
namespace {

struct Seen {
  NatsOp op;
  std::string subject, sid, payload;
};

std::vector<Seen> feedNats(NatsParser& p, std::string_view bytes, bool* ok = nullptr) {
  std::vector<Seen> out;
  const bool r = p.feed(bytes, [&](const NatsEvent& e) {
    out.push_back({e.op, std::string(e.subject), std::string(e.sid), std::string(e.payload)});
  });
  if (ok) *ok = r;
  return out;
}

TEST(BenchNats, ParsesSeveralOperationsInOneFrame) {
  NatsParser p;
  auto ev = feedNats(p, "INFO {\"x\":1}\r\nMSG a.b 7 5\r\nhello\r\nPING\r\nMSG c 1 r.x 0\r\n\r\n+OK\r\n");
  ASSERT_EQ(ev.size(), 5u);
  EXPECT_EQ(ev[0].op, NatsOp::kInfo);
  EXPECT_EQ(ev[1].op, NatsOp::kMsg);
  EXPECT_EQ(ev[1].subject, "a.b");
  EXPECT_EQ(ev[1].sid, "7");
  EXPECT_EQ(ev[1].payload, "hello");
  EXPECT_EQ(ev[2].op, NatsOp::kPing);
  EXPECT_EQ(ev[3].op, NatsOp::kMsg);  // with a reply subject, empty payload
  EXPECT_EQ(ev[3].subject, "c");
  EXPECT_EQ(ev[3].payload, "");
  EXPECT_EQ(ev[4].op, NatsOp::kOk);
  EXPECT_EQ(p.carried(), 0u);
}

TEST(BenchNats, MessageSplitAcrossFramesAtEveryByte) {
  const std::string stream = "MSG bench.0 1 12\r\nwsfb\r\n12345x\r\nPONG\r\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    NatsParser p;
    auto a = feedNats(p, std::string_view(stream).substr(0, cut));
    auto b = feedNats(p, std::string_view(stream).substr(cut));
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_EQ(a.size(), 2u) << cut;
    EXPECT_EQ(a[0].payload, "wsfb\r\n12345x") << cut;  // CRLF inside the payload is data
    EXPECT_EQ(a[1].op, NatsOp::kPong);
    EXPECT_EQ(p.carried(), 0u);
  }
}

TEST(BenchNats, ProtocolErrors) {
  bool ok = true;
  NatsParser a;
  feedNats(a, "BOGUS\r\n", &ok);
  EXPECT_FALSE(ok);
  NatsParser b;
  feedNats(b, "MSG a 1 3\r\nabcX\r\n", &ok);  // payload not followed by CRLF
  EXPECT_FALSE(ok);
  NatsParser c;
  feedNats(c, "MSG a 1 x\r\n", &ok);
  EXPECT_FALSE(ok);
  NatsParser d;
  feedNats(d, "-ERR 'Authorization Violation'\r\n", &ok);
  EXPECT_TRUE(ok);
}

TEST(BenchNats, Encoders) {
  std::string out;
  appendNatsSub(out, "bench.3", 4);
  appendNatsPub(out, "bench.3", "abc");
  EXPECT_EQ(out, "SUB bench.3 4\r\nPUB bench.3 3\r\nabc\r\n");
  std::string c;
  appendNatsConnect(c);
  EXPECT_EQ(c.rfind("CONNECT {", 0), 0u);
  EXPECT_NE(c.find("\"verbose\":false"), std::string::npos);
  EXPECT_EQ(c.substr(c.size() - 2), "\r\n");
}

std::vector<std::string> feedMqtt(MqttParser& p, std::string_view bytes, bool* ok = nullptr,
                                  std::vector<MqttType>* types = nullptr) {
  std::vector<std::string> payloads;
  const bool r = p.feed(bytes, [&](const MqttPacket& pk) {
    if (types) types->push_back(pk.type);
    if (auto pub = decodeMqttPublish(pk)) payloads.emplace_back(pub->payload);
  });
  if (ok) *ok = r;
  return payloads;
}

TEST(BenchMqtt, RemainingLengthVarint) {
  struct Case {
    size_t len;
    std::string bytes;
  } cases[] = {{0, std::string(1, '\0')},
               {127, "\x7f"},
               {128, "\x80\x01"},
               {16383, "\xff\x7f"},
               {16384, std::string("\x80\x80\x01", 3)},
               {2097152, std::string("\x80\x80\x80\x01", 4)}};
  for (const Case& c : cases) {
    std::string out;
    appendMqttLength(out, c.len);
    EXPECT_EQ(out, c.bytes) << c.len;
  }
}

TEST(BenchMqtt, ConnectSubscribeBytes) {
  std::string out;
  appendMqttConnect(out, "id", 0);
  const std::string expect_connect("\x10\x0e\x00\x04MQTT\x04\x02\x00\x00\x00\x02id", 16);
  EXPECT_EQ(out, expect_connect);
  out.clear();
  appendMqttSubscribe(out, 7, "a/b");
  const std::string expect_sub("\x82\x08\x00\x07\x00\x03" "a/b\x00", 10);
  EXPECT_EQ(out, expect_sub);
  out.clear();
  appendMqttPingreq(out);
  EXPECT_EQ(out, std::string("\xc0\x00", 2));
}

TEST(BenchMqtt, PublishRoundTripAndSplitPackets) {
  std::string stream;
  appendMqttPublish(stream, "bench/1", std::string(200, 'p'));  // 2-byte length
  appendMqttPublish(stream, "bench/2", "q");
  stream += std::string("\x20\x02\x00\x00", 4);  // CONNACK accepted
  stream += std::string("\x90\x03\x00\x05\x80", 5);  // SUBACK refused
  for (size_t cut = 0; cut <= stream.size(); cut += 7) {
    MqttParser p;
    std::vector<MqttType> types;
    auto a = feedMqtt(p, std::string_view(stream).substr(0, cut), nullptr, &types);
    auto b = feedMqtt(p, std::string_view(stream).substr(cut), nullptr, &types);
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_EQ(a.size(), 2u) << cut;
    EXPECT_EQ(a[0], std::string(200, 'p'));
    EXPECT_EQ(a[1], "q");
    ASSERT_EQ(types.size(), 4u);
    EXPECT_EQ(types[2], MqttType::kConnack);
    EXPECT_EQ(types[3], MqttType::kSuback);
  }
  MqttParser p;
  p.feed(std::string_view(stream).substr(stream.size() - 9), [&](const MqttPacket& pk) {
    if (pk.type == MqttType::kConnack) {
      EXPECT_EQ(decodeMqttConnack(pk), uint8_t{0});
    }
    if (pk.type == MqttType::kSuback) {
      auto s = decodeMqttSuback(pk);
      ASSERT_TRUE(s.has_value());
      EXPECT_EQ(s->packet_id, 5);
      EXPECT_EQ(s->first_code, 0x80);
    }
  });
}

TEST(BenchMqtt, QosOnePublishCarriesPacketId) {
  const std::string body("\x00\x01t\x12\x34XY", 7);
  MqttPacket pk{MqttType::kPublish, 0x02, body};
  auto pub = decodeMqttPublish(pk);
  ASSERT_TRUE(pub.has_value());
  EXPECT_EQ(pub->topic, "t");
  EXPECT_EQ(pub->packet_id, 0x1234);
  EXPECT_EQ(pub->payload, "XY");
  MqttPacket truncated{MqttType::kPublish, 0, std::string_view("\x00\x09t", 3)};
  EXPECT_FALSE(decodeMqttPublish(truncated).has_value());
}

TEST(BenchMqtt, FiveByteLengthIsAnError) {
  MqttParser p;
  bool ok = true;
  feedMqtt(p, std::string("\x30\xff\xff\xff\xff\x01", 6), &ok);
  EXPECT_FALSE(ok);
}

}  // namespace
}  // namespace wsfleet::bench
