// The node `ws` peer: the small JSON protocol defined in PEER_PROTOCOL.md.

#include <string>

#include "tools/bench/adapter.h"
#include "tools/bench/connection.h"

namespace wsfleet::bench {
namespace {

class WsPeerAdapter final : public Adapter {
 public:
  const char* name() const override { return "ws"; }

  void onUpgraded(Connection& c, ConnEvents& ev) const override { ev.onSessionReady(c); }

  void onFrame(Connection& c, WsOpcode op, std::string_view f, ConnEvents& ev) const override {
    if (op != WsOpcode::kText) return;
    if (f.starts_with(R"({"op":"msg")")) {
      ev.onDelivery(c, f);
    } else if (f.starts_with(R"({"op":"suback")")) {
      ev.onSubscribed(c);
    }
  }

  std::string channelTopic(uint32_t channel) const override {
    return "bench-" + std::to_string(channel);
  }
  std::string inboxTopic(uint32_t user) const override { return "u-" + std::to_string(user); }

  void subscribe(Connection& c, std::string_view topic, uint32_t) const override {
    scratch_.clear();
    scratch_ += R"({"op":"sub","topic":")";
    scratch_ += topic;
    scratch_ += "\"}";
    c.sendText(scratch_);
  }

  void publish(Connection& c, std::string_view topic, std::string_view payload,
               uint64_t) const override {
    scratch_.clear();
    scratch_ += R"({"op":"pub","topic":")";
    scratch_ += topic;
    scratch_ += R"(","data":")";
    scratch_ += payload;
    scratch_ += "\"}";
    c.sendText(scratch_);
  }

 private:
  mutable std::string scratch_;
};

}  // namespace

std::unique_ptr<Adapter> makeWsPeerAdapter() { return std::make_unique<WsPeerAdapter>(); }

}  // namespace wsfleet::bench
