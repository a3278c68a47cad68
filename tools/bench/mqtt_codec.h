#pragma once
// The MQTT 3.1.1 subset the bench speaks over WebSocket: CONNECT, SUBSCRIBE (QoS 0),
// PUBLISH (QoS 0), PINGREQ, DISCONNECT out; CONNACK, SUBACK, PUBLISH, PINGRESP in. Packets
// may span WebSocket frames and a frame may hold several packets.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tools/bench/stream_buffer.h"

namespace wsfleet::bench {

enum class MqttType : uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kSubscribe = 8,
  kSuback = 9,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

struct MqttPacket {
  MqttType type = MqttType::kConnack;
  uint8_t flags = 0;       // low nibble of the fixed header
  std::string_view body;   // variable header + payload
};

struct MqttPublish {
  std::string_view topic;
  std::string_view payload;
  uint16_t packet_id = 0;  // only for QoS > 0
};

class MqttParser {
 public:
  // Calls on_packet(const MqttPacket&) for every complete packet. False on a malformed
  // remaining length (over 4 bytes) or a packet over max_packet.
  template <class OnPacket>
  bool feed(std::string_view bytes, OnPacket&& on_packet) {
    return buffer_.feed(bytes, [&](std::string_view in) {
      size_t pos = 0;
      MqttPacket p;
      for (;;) {
        size_t used = parseOne(in.substr(pos), p);
        if (used == StreamBuffer::kError) return used;
        if (used == 0) return pos;
        on_packet(static_cast<const MqttPacket&>(p));
        pos += used;
      }
    });
  }
  size_t carried() const { return buffer_.carried(); }
  static constexpr size_t kMaxPacket = 1 << 20;

 private:
  static size_t parseOne(std::string_view in, MqttPacket& p);
  StreamBuffer buffer_;
};

// Appends the remaining-length varint (MQTT 3.1.1 section 2.2.3). len < 268435456.
void appendMqttLength(std::string& out, size_t len);

void appendMqttConnect(std::string& out, std::string_view client_id, uint16_t keepalive_s);
void appendMqttSubscribe(std::string& out, uint16_t packet_id, std::string_view topic);
void appendMqttPublish(std::string& out, std::string_view topic, std::string_view payload);
void appendMqttPingreq(std::string& out);
void appendMqttDisconnect(std::string& out);

std::optional<MqttPublish> decodeMqttPublish(const MqttPacket& p);
// CONNACK return code (0 = accepted), nullopt when malformed.
std::optional<uint8_t> decodeMqttConnack(const MqttPacket& p);
// SUBACK: packet id and the first granted QoS (0x80 = refused).
struct MqttSuback {
  uint16_t packet_id = 0;
  uint8_t first_code = 0;
};
std::optional<MqttSuback> decodeMqttSuback(const MqttPacket& p);

}  // namespace wsfleet::bench
