#pragma once
// One Adapter per server protocol. An adapter turns the scenario's abstract operations
// (subscribe to topic N, publish, send to user U) into frames, and the server's frames
// into events. Adapters are stateless; per-connection protocol state lives in Connection.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "tools/bench/failure.h"
#include "tools/bench/ws_codec.h"

namespace wsfleet::bench {

class Connection;
struct BenchOptions;

// What an adapter reports back to the scenario.
class ConnEvents {
 public:
  virtual ~ConnEvents() = default;
  virtual void onSessionReady(Connection& c) = 0;
  virtual void onSubscribed(Connection& c) = 0;
  // `frame` contains the payload the publisher sent (maybe wrapped in protocol text).
  virtual void onDelivery(Connection& c, std::string_view frame) = 0;
  virtual void onPublishAck(Connection& c, bool ok) = 0;
  virtual void onFailure(Connection& c, Fail why) = 0;
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual const char* name() const = 0;
  // Sec-WebSocket-Protocol to offer, or empty.
  virtual std::string_view subprotocol() const { return {}; }
  // Request target for the upgrade, given the URL's path and query.
  virtual std::string requestTarget(const std::string& url_path) const { return url_path; }
  // Extra handshake header lines ("Name: value\r\n") for this connection.
  virtual void appendHeaders(const Connection&, std::string&) const {}

  virtual void onUpgraded(Connection& c, ConnEvents& ev) const = 0;
  virtual void onFrame(Connection& c, WsOpcode op, std::string_view payload,
                       ConnEvents& ev) const = 0;

  // Topic names in this server's syntax (channel index, per-user inbox).
  virtual std::string channelTopic(uint32_t channel) const = 0;
  virtual std::string inboxTopic(uint32_t user) const = 0;
  // False when the server routes direct messages by user without a subscription.
  virtual bool directNeedsSubscription() const { return true; }

  virtual void subscribe(Connection& c, std::string_view topic, uint32_t sub_id) const = 0;
  virtual void publish(Connection& c, std::string_view topic, std::string_view payload,
                       uint64_t seq) const = 0;
  // Default: publish to the user's inbox topic.
  virtual void direct(Connection& c, std::string_view inbox, std::string_view payload,
                      uint64_t seq) const {
    publish(c, inbox, payload, seq);
  }
  // Whether publish() gets a reply (onPublishAck).
  virtual bool publishAcked() const { return false; }
  // Frames to send before closing (MQTT DISCONNECT).
  virtual void goodbye(Connection&) const {}
};

Result<std::unique_ptr<Adapter>> makeAdapter(const BenchOptions& opts);

std::unique_ptr<Adapter> makeWsfleetAdapter(const BenchOptions& opts);
std::unique_ptr<Adapter> makeNatsAdapter();
std::unique_ptr<Adapter> makeMqttAdapter();
std::unique_ptr<Adapter> makeWsPeerAdapter();
std::unique_ptr<Adapter> makeSocketIoAdapter();

}  // namespace wsfleet::bench
