// MQTT 3.1.1 over WebSocket (subprotocol "mqtt"), QoS 0 throughout. Keepalive 0 so idle
// connections are held without PINGREQ traffic skewing the idle-memory figure.

#include <unistd.h>

#include <string>

#include "tools/bench/adapter.h"
#include "tools/bench/connection.h"

namespace wsfleet::bench {
namespace {

class MqttAdapter final : public Adapter {
 public:
  const char* name() const override { return "mqtt"; }
  std::string_view subprotocol() const override { return "mqtt"; }

  void onUpgraded(Connection& c, ConnEvents&) const override {
    scratch_.clear();
    appendMqttConnect(scratch_, "wsfb-" + std::to_string(::getpid()) + "-" +
                                    std::to_string(c.globalIndex()),
                      0);
    c.sendBinary(scratch_);
  }

  void onFrame(Connection& c, WsOpcode, std::string_view f, ConnEvents& ev) const override {
    const bool ok = c.mqtt.feed(f, [&](const MqttPacket& p) {
      switch (p.type) {
        case MqttType::kPublish:
          if (auto pub = decodeMqttPublish(p)) ev.onDelivery(c, pub->payload);
          break;
        case MqttType::kConnack: {
          auto rc = decodeMqttConnack(p);
          if (rc && *rc == 0) {
            ev.onSessionReady(c);
          } else {
            ev.onFailure(c, Fail::kSessionRefused);
          }
          break;
        }
        case MqttType::kSuback: {
          auto sa = decodeMqttSuback(p);
          if (sa && sa->first_code != 0x80) {
            ev.onSubscribed(c);
          } else {
            ev.onFailure(c, Fail::kSubscribeRefused);
          }
          break;
        }
        default:
          break;
      }
    });
    if (!ok) ev.onFailure(c, Fail::kProtocolError);
  }

  std::string channelTopic(uint32_t channel) const override {
    return "bench/" + std::to_string(channel);
  }
  std::string inboxTopic(uint32_t user) const override { return "u/" + std::to_string(user); }

  void subscribe(Connection& c, std::string_view topic, uint32_t sub_id) const override {
    scratch_.clear();
    appendMqttSubscribe(scratch_, static_cast<uint16_t>(sub_id % 65535 + 1), topic);
    c.sendBinary(scratch_);
  }

  void publish(Connection& c, std::string_view topic, std::string_view payload,
               uint64_t) const override {
    scratch_.clear();
    appendMqttPublish(scratch_, topic, payload);
    c.sendBinary(scratch_);
  }

  void goodbye(Connection& c) const override {
    scratch_.clear();
    appendMqttDisconnect(scratch_);
    c.sendBinary(scratch_);
  }

 private:
  mutable std::string scratch_;
};

}  // namespace

std::unique_ptr<Adapter> makeMqttAdapter() { return std::make_unique<MqttAdapter>(); }

}  // namespace wsfleet::bench
