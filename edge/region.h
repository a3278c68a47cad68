#pragma once
// One worker's side of the region: its NATS link, the subjects it listens on, the
// requests waiting for replies, and the region's history stream (JetStream).
//
// Interest is exact: the worker listens on a channel's subject only while it has a local
// subscriber of the channel, and on a user's subject only while it holds a connection of
// the user, so NATS forwards a message only to the workers that deliver it.
//
// The history stream (one per region, WSF_HIST_<region>) stores durable channel messages
// published on wsf.<region>.hist.<tenant>.<channel> and republishes each stored message on
// the channel's live subject with its stream sequence (the channel offset) and the
// sequence of the channel's previous message, so receivers see gaps (see
// region_delivery.cc). The first worker to connect creates the stream; everyone reads its
// creation time, which becomes the epoch: a recreated stream is a new epoch.
// The inbox stream (WSF_INBOX_<region>, when a tenant keeps inboxes) holds direct messages
// for users offline in the whole region, per user at most the tenant's count and age.
//
// Single-threaded: every method runs on the worker's event loop (NatsLink keeps cnats'
// threads away from it).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "common/jetstream_api.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/nats_link.h"
#include "common/nats_requests.h"
#include "common/status.h"
#include "edge/edge_config.h"

namespace wsfleet {

class Region {
 public:
  // `reply` is null when none came within nats.request_timeout_ms (or the link dropped
  // the request); otherwise it may still be a 503 "no responders" (reply->status).
  using ReplyFn = std::function<void(const NatsInbound* reply)>;
  struct Handlers {
    std::function<void(NatsInbound& message)> delivery;  // on a watched subject
    // The link is up again after losing its server: what was published meanwhile never
    // reached this worker, so durable channels catch up from the stream.
    std::function<void()> reconnected;
    // A history stream was recreated (deleted and created again): a new epoch, the
    // offsets of every channel `owner` owns start over.
    std::function<void(const std::string& owner)> epoch_changed;
  };

  static Result<std::unique_ptr<Region>> start(const EdgeConfig& config, int worker_index,
                                               MetricsRegistry& registry, Handlers handlers);

  int wakeFd() const { return link_->wakeFd(); }
  // Takes what the link received and dispatches it.
  void onWake();
  // Times out requests whose reply is late; retries a failed stream set-up.
  void tick(int64_t now_mono_ms);

  // Connected, and the history stream is known (durable channels can be served).
  bool ready() const;
  bool connected() const { return link_->state() == NatsLinkState::kConnected; }
  const std::string& name() const { return name_; }
  const std::string& epoch() const { return epoch_; }
  const std::string& historyStream() const { return history_.spec.name; }
  const std::string& inboxStream() const { return inbox_.spec.name; }
  // The region's ownership generation markers (WSF_GEN_<region>, only in a fleet: see
  // common/owner_records.h).
  bool hasGenerations() const { return generations_enabled_; }
  bool hasInbox() const { return inbox_enabled_; }
  // STREAM.INFO of the history stream with `subject`'s message count.
  void historyInfoFor(const std::string& subject, ReplyFn done);

  // ---- histories of channels owned by other regions (read through the region's
  // bridges, wsf.<region>.xapi.<owner>.*; see bridge/bridge.h) ----
  // The epoch of `owner`'s history stream; "" until known.
  const std::string& epochOf(const std::string& owner) const;
  // Calls `done(true)` once the epoch of `owner` is known (at once when it is), or
  // done(false) when the owner's stream could not be read.
  void withEpoch(const std::string& owner, std::function<void(bool known)> done);
  // MSG.GET / STREAM.INFO on `owner`'s history stream, this region's or another's.
  void getHistoryMessage(const std::string& owner, std::string body, ReplyFn done);
  void historyInfoFor(const std::string& owner, const std::string& subject, ReplyFn done);
  // A JetStream API request ("STREAM.MSG.GET.<stream>", ...) on a stream of `region`:
  // directly for this region, through the bridges for another (which allow only reads
  // of its history and reads and purges of its inbox).
  void streamApi(const std::string& region, const std::string& api, std::string body, ReplyFn done);

  // Looks at the history stream again (a store found no one listening: the stream may be
  // gone, and is then created again with a new epoch). Readiness does not change meanwhile.
  void recheckHistory();

  void watch(const std::string& subject);
  void unwatch(const std::string& subject);
  bool isWatched(const std::string& subject) const { return watched_.count(subject) != 0; }

  bool publish(std::string subject, std::string data, std::vector<NatsHeader> headers = {});
  void request(std::string subject, std::string data, std::vector<NatsHeader> headers,
               ReplyFn done);
  // JetStream API requests: $JS.API.STREAM.MSG.GET on the history stream (getMessage) or
  // any stream, and $JS.API.STREAM.PURGE.
  void getMessage(std::string body, ReplyFn done);
  void getMessageFrom(const std::string& stream, std::string body, ReplyFn done);
  void purge(const std::string& stream, std::string body, ReplyFn done);

  JsonParser& parser() { return parser_; }
  size_t pendingRequests() const { return requests_.pending(); }

 private:
  Region(const EdgeConfig& config, MetricsRegistry& registry, Handlers handlers);
  struct Stream {
    StreamSpec spec;
    bool known = false;
    bool setup_running = false;
    int64_t retry_at_ms = 0;
    uint64_t first_seq = 0;
    std::string created;
  };
  void setUpStreams(int64_t now_mono_ms);
  void setUp(Stream& stream);
  void onStreamInfo(Stream& stream, const NatsInbound* reply, bool created);
  void onLinkState(NatsLinkState state);

  std::string name_;
  Stream history_;
  Stream inbox_;
  bool inbox_enabled_ = false;
  Stream generations_;
  bool generations_enabled_ = false;
  Handlers handlers_;
  std::unique_ptr<NatsLink> link_;
  JsonParser parser_;
  int64_t request_timeout_ms_ = 5000;

  std::unordered_map<std::string, uint64_t> watched_;  // subject -> subscription id
  std::unordered_set<uint64_t> live_sub_ids_;          // the ids in watched_
  uint64_t next_sub_id_ = 1;

  NatsRequests requests_;

  std::string epoch_;
  // Other regions' history streams, by owner region.
  struct RemoteHistory {
    std::string epoch;
    bool fetching = false;
    int64_t looked_ms = 0;
    std::vector<std::function<void(bool)>> waiting;
  };
  std::unordered_map<std::string, RemoteHistory> remote_histories_;
  void lookAtRemote(const std::string& owner);
  bool was_connected_ = false;
  int64_t last_history_look_ms_ = 0;
  std::vector<NatsInbound> inbound_;  // reused between wake-ups

  Counter& requests_timed_out_;
  Counter& stream_setup_failures_;
};

}  // namespace wsfleet
