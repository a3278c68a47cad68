// socket.io 4.x over its WebSocket transport only: engine.io v4 packets as text frames,
// socket.io v5 packets inside them (see PEER_PROTOCOL.md).

#include <string>

#include "tools/bench/adapter.h"
#include "tools/bench/connection.h"

namespace wsfleet::bench {
namespace {

class SocketIoAdapter final : public Adapter {
 public:
  const char* name() const override { return "socketio"; }

  std::string requestTarget(const std::string& url_path) const override {
    std::string path = url_path.substr(0, url_path.find('?'));
    if (path == "/") path = "/socket.io/";
    return path + "?EIO=4&transport=websocket";
  }

  void onUpgraded(Connection&, ConnEvents&) const override {}  // wait for the open packet

  void onFrame(Connection& c, WsOpcode op, std::string_view f, ConnEvents& ev) const override {
    if (op != WsOpcode::kText || f.empty()) return;
    switch (f[0]) {
      case '0':  // engine.io open: connect to the main namespace
        c.sendText("40");
        return;
      case '2':  // engine.io ping
        c.sendText("3");
        return;
      case '4':
        break;
      default:
        return;
    }
    if (f.starts_with(R"(42["msg")")) {
      ev.onDelivery(c, f);
    } else if (f.starts_with(R"(42["suback")")) {
      ev.onSubscribed(c);
    } else if (f.starts_with("40")) {
      ev.onSessionReady(c);
    } else if (f.starts_with("44")) {
      ev.onFailure(c, Fail::kSessionRefused);
    } else if (f.starts_with("41")) {
      ev.onFailure(c, Fail::kClosedByServer);
    }
  }

  std::string channelTopic(uint32_t channel) const override {
    return "bench-" + std::to_string(channel);
  }
  std::string inboxTopic(uint32_t user) const override { return "u-" + std::to_string(user); }

  void subscribe(Connection& c, std::string_view topic, uint32_t) const override {
    scratch_.clear();
    scratch_ += R"(42["sub",")";
    scratch_ += topic;
    scratch_ += "\"]";
    c.sendText(scratch_);
  }

  void publish(Connection& c, std::string_view topic, std::string_view payload,
               uint64_t) const override {
    scratch_.clear();
    scratch_ += R"(42["pub",")";
    scratch_ += topic;
    scratch_ += R"(",")";
    scratch_ += payload;
    scratch_ += "\"]";
    c.sendText(scratch_);
  }

 private:
  mutable std::string scratch_;
};

}  // namespace

std::unique_ptr<Adapter> makeSocketIoAdapter() { return std::make_unique<SocketIoAdapter>(); }

}  // namespace wsfleet::bench
