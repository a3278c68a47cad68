#include "tools/bench/mqtt_codec.h"

namespace wsfleet::bench {
namespace {

void appendU16(std::string& out, uint16_t v) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xFF);
}

void appendStr(std::string& out, std::string_view s) {
  appendU16(out, static_cast<uint16_t>(s.size()));
  out += s;
}

uint16_t readU16(std::string_view s, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(s[at]) << 8) | static_cast<uint8_t>(s[at + 1]));
}

}  // namespace

size_t MqttParser::parseOne(std::string_view in, MqttPacket& p) {
  if (in.size() < 2) return 0;
  size_t len = 0;
  size_t shift = 0;
  size_t at = 1;
  for (;;) {
    if (at >= in.size()) return 0;
    if (at > 4) return StreamBuffer::kError;
    const auto b = static_cast<uint8_t>(in[at++]);
    len |= static_cast<size_t>(b & 0x7F) << shift;
    if ((b & 0x80) == 0) break;
    shift += 7;
  }
  if (len > kMaxPacket) return StreamBuffer::kError;
  if (in.size() - at < len) return 0;
  const auto b0 = static_cast<uint8_t>(in[0]);
  p.type = static_cast<MqttType>(b0 >> 4);
  p.flags = b0 & 0x0F;
  p.body = in.substr(at, len);
  return at + len;
}

void appendMqttLength(std::string& out, size_t len) {
  do {
    auto b = static_cast<uint8_t>(len & 0x7F);
    len >>= 7;
    if (len > 0) b |= 0x80;
    out += static_cast<char>(b);
  } while (len > 0);
}

void appendMqttConnect(std::string& out, std::string_view client_id, uint16_t keepalive_s) {
  // Variable header: protocol name "MQTT", level 4, flags (clean session), keepalive.
  const size_t body = 2 + 4 + 1 + 1 + 2 + 2 + client_id.size();
  out += static_cast<char>(0x10);
  appendMqttLength(out, body);
  appendStr(out, "MQTT");
  out += static_cast<char>(4);
  out += static_cast<char>(0x02);
  appendU16(out, keepalive_s);
  appendStr(out, client_id);
}

void appendMqttSubscribe(std::string& out, uint16_t packet_id, std::string_view topic) {
  out += static_cast<char>(0x82);  // SUBSCRIBE has mandatory flags 0010
  appendMqttLength(out, 2 + 2 + topic.size() + 1);
  appendU16(out, packet_id);
  appendStr(out, topic);
  out += static_cast<char>(0);  // requested QoS 0
}

void appendMqttPublish(std::string& out, std::string_view topic, std::string_view payload) {
  out += static_cast<char>(0x30);  // QoS 0, no retain, no dup
  appendMqttLength(out, 2 + topic.size() + payload.size());
  appendStr(out, topic);
  out += payload;
}

void appendMqttPingreq(std::string& out) {
  out += static_cast<char>(0xC0);
  out += static_cast<char>(0);
}

void appendMqttDisconnect(std::string& out) {
  out += static_cast<char>(0xE0);
  out += static_cast<char>(0);
}

std::optional<MqttPublish> decodeMqttPublish(const MqttPacket& p) {
  if (p.type != MqttType::kPublish || p.body.size() < 2) return std::nullopt;
  const size_t tlen = readU16(p.body, 0);
  size_t at = 2 + tlen;
  if (p.body.size() < at) return std::nullopt;
  MqttPublish out;
  out.topic = p.body.substr(2, tlen);
  const int qos = (p.flags >> 1) & 3;
  if (qos == 3) return std::nullopt;
  if (qos > 0) {
    if (p.body.size() < at + 2) return std::nullopt;
    out.packet_id = readU16(p.body, at);
    at += 2;
  }
  out.payload = p.body.substr(at);
  return out;
}

std::optional<uint8_t> decodeMqttConnack(const MqttPacket& p) {
  if (p.type != MqttType::kConnack || p.body.size() != 2) return std::nullopt;
  return static_cast<uint8_t>(p.body[1]);
}

std::optional<MqttSuback> decodeMqttSuback(const MqttPacket& p) {
  if (p.type != MqttType::kSuback || p.body.size() < 3) return std::nullopt;
  return MqttSuback{readU16(p.body, 0), static_cast<uint8_t>(p.body[2])};
}

}  // namespace wsfleet::bench
