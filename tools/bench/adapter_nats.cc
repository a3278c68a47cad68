// nats-server's WebSocket listener: the NATS text protocol in binary frames. Operations do
// not respect frame boundaries (the server packs many MSGs into one frame and may split
// one), hence the per-connection stream parser.

#include <string>

#include "tools/bench/adapter.h"
#include "tools/bench/connection.h"

namespace wsfleet::bench {
namespace {

class NatsAdapter final : public Adapter {
 public:
  const char* name() const override { return "nats"; }

  // CONNECT then PING: the first PONG means the server accepted the connection. Every
  // SUB is followed by a PING, so each later PONG acknowledges one subscription (the
  // server answers in order).
  void onUpgraded(Connection& c, ConnEvents&) const override {
    scratch_.clear();
    appendNatsConnect(scratch_);
    scratch_ += "PING\r\n";
    c.sendBinary(scratch_);
  }

  void onFrame(Connection& c, WsOpcode, std::string_view f, ConnEvents& ev) const override {
    bool pong_due = false;
    const bool ok = c.nats.feed(f, [&](const NatsEvent& e) {
      switch (e.op) {
        case NatsOp::kMsg:
          ev.onDelivery(c, e.payload);
          break;
        case NatsOp::kPing:
          pong_due = true;
          break;
        case NatsOp::kPong:
          if (!c.nats_connected) {
            c.nats_connected = true;
            ev.onSessionReady(c);
          } else {
            ev.onSubscribed(c);
          }
          break;
        case NatsOp::kErr:
          ev.onFailure(c, c.nats_connected ? Fail::kProtocolError : Fail::kSessionRefused);
          break;
        case NatsOp::kInfo:
        case NatsOp::kOk:
          break;
      }
    });
    if (!ok) {
      ev.onFailure(c, Fail::kProtocolError);
      return;
    }
    if (pong_due) c.sendBinary("PONG\r\n");
  }

  std::string channelTopic(uint32_t channel) const override {
    return "bench." + std::to_string(channel);
  }
  std::string inboxTopic(uint32_t user) const override { return "u." + std::to_string(user); }

  void subscribe(Connection& c, std::string_view topic, uint32_t sub_id) const override {
    scratch_.clear();
    appendNatsSub(scratch_, topic, sub_id + 1);
    scratch_ += "PING\r\n";
    c.sendBinary(scratch_);
  }

  void publish(Connection& c, std::string_view topic, std::string_view payload,
               uint64_t) const override {
    scratch_.clear();
    appendNatsPub(scratch_, topic, payload);
    c.sendBinary(scratch_);
  }

 private:
  mutable std::string scratch_;
};

}  // namespace

std::unique_ptr<Adapter> makeNatsAdapter() { return std::make_unique<NatsAdapter>(); }

}  // namespace wsfleet::bench
