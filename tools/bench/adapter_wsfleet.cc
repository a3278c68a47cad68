// wsfleet protocol v1: JSON text frames, subprotocol wsfleet.v1, token in the
// Authorization header. Publishes go over the WebSocket (see README.md for why).

#include <charconv>
#include <string>

#include "common/json.h"
#include "tools/bench/adapter.h"
#include "tools/bench/connection.h"
#include "tools/bench/options.h"

namespace wsfleet::bench {
namespace {

// Command ids below this answer subscribes; publishes and sends use ids above it.
constexpr uint64_t kPublishIdBase = 1u << 30;

// Value of "type" in a server frame; the server writes it first.
std::string_view frameType(std::string_view f) {
  constexpr std::string_view kKey = "\"type\":\"";
  size_t at = f.find(kKey);
  if (at == std::string_view::npos) return {};
  at += kKey.size();
  const size_t end = f.find('"', at);
  if (end == std::string_view::npos) return {};
  return f.substr(at, end - at);
}

uint64_t replyId(std::string_view f) {
  constexpr std::string_view kKey = "\"id\":";
  size_t at = f.find(kKey);
  if (at == std::string_view::npos) return 0;
  at += kKey.size();
  uint64_t id = 0;
  std::from_chars(f.data() + at, f.data() + f.size(), id);
  return id;
}

class WsfleetAdapter final : public Adapter {
 public:
  explicit WsfleetAdapter(std::string ns) : ns_(std::move(ns)) {}
  const char* name() const override { return "wsfleet"; }
  std::string_view subprotocol() const override { return "wsfleet.v1"; }

  void appendHeaders(const Connection& c, std::string& out) const override {
    if (c.token.empty()) return;
    out += "Authorization: Bearer ";
    out += c.token;
    out += "\r\n";
  }

  void onUpgraded(Connection&, ConnEvents&) const override {}  // wait for welcome

  void onFrame(Connection& c, WsOpcode op, std::string_view f, ConnEvents& ev) const override {
    if (op != WsOpcode::kText) return;
    const std::string_view type = frameType(f);
    if (type == "message" || type == "direct") {
      ev.onDelivery(c, f);
    } else if (type == "reply") {
      const bool ok = f.find("\"ok\":true") != std::string_view::npos;
      if (replyId(f) >= kPublishIdBase) {
        ev.onPublishAck(c, ok);
      } else if (ok) {
        ev.onSubscribed(c);
      } else {
        ev.onFailure(c, Fail::kSubscribeRefused);
      }
    } else if (type == "welcome") {
      ev.onSessionReady(c);
    }
  }

  std::string channelTopic(uint32_t channel) const override {
    return ns_ + ":bench-" + std::to_string(channel);
  }
  std::string inboxTopic(uint32_t user) const override {
    return "bench-u" + std::to_string(user);
  }
  bool directNeedsSubscription() const override { return false; }
  bool publishAcked() const override { return true; }

  void subscribe(Connection& c, std::string_view topic, uint32_t sub_id) const override {
    scratch_.clear();
    JsonWriter(scratch_).beginObject().field("type", "subscribe").fieldUint("id", sub_id + 1)
        .field("channel", topic).endObject();
    c.sendText(scratch_);
  }

  void publish(Connection& c, std::string_view topic, std::string_view payload,
               uint64_t seq) const override {
    build("publish", "channel", topic, payload, seq);
    c.sendText(scratch_);
  }

  void direct(Connection& c, std::string_view inbox, std::string_view payload,
              uint64_t seq) const override {
    build("send", "user", inbox, payload, seq);
    c.sendText(scratch_);
  }

 private:
  // The payload is plain ASCII from the bench, so it is copied between quotes as is.
  void build(std::string_view type, std::string_view dest_key, std::string_view dest,
             std::string_view payload, uint64_t seq) const {
    scratch_.clear();
    scratch_ += R"({"type":")";
    scratch_ += type;
    scratch_ += R"(","id":)";
    char num[24];
    auto [end, ec] = std::to_chars(num, num + sizeof num, kPublishIdBase + seq);
    (void)ec;
    scratch_.append(num, end);
    scratch_ += ",\"";
    scratch_ += dest_key;
    scratch_ += "\":\"";
    scratch_ += dest;
    scratch_ += R"(","data":")";
    scratch_ += payload;
    scratch_ += "\"}";
  }

  std::string ns_;
  mutable std::string scratch_;
};

}  // namespace

std::unique_ptr<Adapter> makeWsfleetAdapter(const BenchOptions& opts) {
  return std::make_unique<WsfleetAdapter>(opts.ns);
}

}  // namespace wsfleet::bench
