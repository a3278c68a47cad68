#pragma once
// The edge's engine for one worker: handshake decisions, connection lifecycle, protocol v1
// commands, local fan-out, presence, history, timers and the backend API. It knows
// nothing of libwebsockets: the glue (ws_glue.cc, admin_http.cc) turns lws callbacks into
// calls here and implements Transport, so the engine is testable without sockets.
// Single-threaded: every method runs on the worker's event-loop thread.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/json.h"
#include "common/lmdb.h"
#include "common/metrics.h"
#include "common/protocol.h"
#include "common/timer_wheel.h"
#include "common/token.h"
#include "edge/connect_rate.h"
#include "edge/connection.h"
#include "edge/edge_config.h"
#include "edge/edge_metrics.h"
#include "edge/history_store.h"
#include "edge/hub.h"
#include "edge/inbound_limits.h"
#include "edge/interest_announcer.h"
#include "edge/owner_directory.h"
#include "edge/ip_guard.h"
#include "edge/lmdb_syncer.h"
#include "edge/peer_message.h"
#include "edge/presence_replication.h"
#include "edge/presence_store.h"
#include "edge/region.h"
#include "regions/ownership.h"

namespace wsfleet {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Non-zero: no answer yet. It comes later through Transport::answerHttp with this
  // ticket (a region publish waits for the region's acknowledgement).
  uint64_t deferred_ticket = 0;
};

// What the engine needs from the network layer.
class Transport {
 public:
  virtual ~Transport() = default;
  // Ask for a WRITEABLE callback on this connection (frames, pings or a close are queued).
  virtual void wantWrite(Connection& conn) = 0;
  // Drop the connection without a close handshake (its close frame could not be sent in
  // time); the transport reports it closed later, as for any other close.
  virtual void kill(Connection& conn) = 0;
  // Makes the eventual close of this connection a reset that discards unsent data (slow
  // consumers: what they have not read is not worth holding kernel memory for).
  virtual void resetOnClose(Connection& /*conn*/) {}
  // Bytes of headroom every outgoing frame must have before its payload (LWS_PRE).
  virtual size_t frameHeadroom() const = 0;
  // Sends a delivery to the other workers of the host (never blocks; may drop, counted).
  // A single worker has no peers.
  virtual void toPeers(const PeerMessage& /*message*/) {}
  virtual bool hasPeers() const { return false; }
  // An operator asked this worker to drain (POST /admin/drain): the host's other workers
  // drain too.
  virtual void drainHost() {}
  // The answer to a request handleHttp deferred (HttpResponse::deferred_ticket). The
  // transport drops it when that request's connection is gone.
  virtual void answerHttp(uint64_t /*ticket*/, HttpResponse /*response*/) {}
};

struct HandshakeRequest {
  bool is_get = true;
  std::string_view connection;     // Connection header: must list "upgrade"
  std::string_view websocket_key;  // Sec-WebSocket-Key: base64 of 16 bytes
  std::string_view version;        // Sec-WebSocket-Version: must be 13
  std::string_view path;           // request path without the query
  std::string_view authorization;  // Authorization header value, may be empty
  std::string_view query_token;    // access_token query argument, may be empty
  bool has_origin = false;
  std::string_view origin;
  std::string_view protocols;  // Sec-WebSocket-Protocol header value
  size_t header_bytes = 0;     // size of the request head as far as it is known
  std::string_view peer;
};

struct HandshakeDecision {
  int http_status = 0;  // 0: accept; otherwise refuse with this status
  const char* reason = "";
  std::string message;
  TokenClaims claims;  // when accepted
  int retry_after_s = 0;
  bool upgrade_version_hint = false;  // answer with Sec-WebSocket-Version: 13 (426)
};

// {"error":{"code","reason","message"}} with `status`: the one shape of every HTTP refusal
// (handshakes, admin API). An empty reason is left out.
HttpResponse errorResponse(int status, std::string_view code, std::string_view reason,
                           std::string_view message);

class EdgeService {
 public:
  static Result<std::unique_ptr<EdgeService>> create(const EdgeConfig& config,
                                                     MetricsRegistry& registry,
                                                     Transport& transport);
  ~EdgeService();

  const EdgeConfig& config() const { return config_; }
  EdgeMetrics& metrics() { return metrics_; }

  // ---- WebSocket lifecycle (called by the glue) ----
  HandshakeDecision checkHandshake(const HandshakeRequest& request);
  // Creates the connection for an accepted handshake and queues the welcome frame.
  Connection* open(void* transport, TokenClaims claims, std::string peer);
  void onText(Connection& conn, std::string_view text);
  void onPong(Connection& conn);
  // The transport closed (either side). Cleans up and deletes `conn`.
  void closed(Connection* conn, int close_code);
  // Queues a close with `code` (sent by the glue on the next WRITEABLE).
  void requestClose(Connection& conn, int code, std::string_view reason);

  // Runs due timers, presence flushes, heartbeats, sweeps and history trimming.
  void tick();
  // Milliseconds until tick() has work again (bounded), for scheduling the next call.
  uint64_t tickIntervalMs() const { return tick_ms_; }

  // ---- shutdown ----
  bool shuttingDown() const { return shutting_down_; }
  // Closes every connection with 1001 and removes this worker's presence records.
  void shutdown();
  // Applies buffered presence writes and syncs LMDB now (the last step of a stop).
  void flushNow();
  size_t connectionCount() const { return connections_.size(); }

  // ---- other workers of the host (peer_delivery.cc) ----
  // A delivery published on another worker: fanned out to this worker's connections, in
  // offset order for durable channels (gaps are filled from the shared history).
  void onPeerMessage(const PeerMessage& message);

  // ---- the region (region_delivery.cc); nothing happens without [nats] servers ----
  // Connects this worker to the region's NATS cluster (in the background).
  Status startRegion(int worker_index);
  // Readable when the region has something for this worker (then call onRegionWake); -1
  // in standalone mode.
  int regionWakeFd() const { return region_ ? region_->wakeFd() : -1; }
  void onRegionWake();

  // ---- drain (edge_drain.cc) ----
  // Refuses new upgrades (503 draining), turns /readyz 503, and sends every client one
  // `reconnect` hint, spread over `window_ms` (drain.window_ms when absent). False when a
  // drain is already running (its window stays).
  // `hold`: the drain an operator starts over the control plane (wsfleetctl edge drain):
  // the edge stays up once its clients are gone, until undrain() or a stop. A drain
  // without `hold` (SIGTERM, POST /admin/drain) during a held one turns it into a
  // stopping one (same window) and returns true.
  bool beginDrain(std::optional<uint64_t> window_ms, std::string_view trigger,
                  bool hold = false);
  bool draining() const { return draining_; }
  // Ends a held drain: upgrades are accepted and /readyz says 200 again; hints not sent
  // yet are cancelled. kUnavailable "stopping" when the drain ends in a stop.
  Status undrain();
  // Nothing is left for the drain to do: every client has left, or the window and the
  // grace after it are over (the stop then closes the rest with 1001).
  bool drainComplete() const;

  // ---- reload (edge_reload.cc) ----
  // Re-reads the file the config came from (SIGHUP) and applies it without dropping
  // connections. On error logs every FILE:LINE problem, keeps the running config and
  // returns the error.
  Status reload();
  // The second half of reload(): applies an already loaded config.
  Status applyConfig(EdgeConfig next);

  // ---- admin listener ----
  // `peer`: the client's address (operator routes trust loopback peers when no operator
  // token is configured).
  HttpResponse handleHttp(std::string_view method, std::string_view path,
                          const std::unordered_map<std::string, std::string>& query,
                          std::string_view authorization, std::string_view body,
                          std::string_view peer = {});

  // Frame helpers (shared with tests).
  FramePtr makeFrame(std::string_view payload) const;
  // A low-priority frame: coalesced by `key` or dropped while its recipient is behind.
  FramePtr makeLowFrame(std::string_view payload, std::string key) const;
  // Queues a frame; enforces the per-connection caps and priorities (edge/outbound_queue.h):
  // closes 4009 when a normal frame does not fit, arms the slow-consumer grace period
  // when the queue crosses its high-water mark. False when the frame was not queued.
  bool enqueue(Connection& conn, FramePtr frame);

 private:
  EdgeService(const EdgeConfig& config, MetricsRegistry& registry, Transport& transport);
  Status init();

  // Commands.
  void handleCommand(Connection& conn, ClientCommand& cmd);
  void cmdSubscribe(Connection& conn, const ClientCommand& cmd);
  void cmdUnsubscribe(Connection& conn, const ClientCommand& cmd);
  void cmdPublish(Connection& conn, const ClientCommand& cmd);
  void cmdSend(Connection& conn, const ClientCommand& cmd);
  void cmdPresence(Connection& conn, const ClientCommand& cmd);
  void cmdRefresh(Connection& conn, const ClientCommand& cmd);
  void replyError(Connection& conn, std::optional<uint64_t> id, const Status& status);
  void reply(Connection& conn, std::string payload);

  // Shared by clients and the backend API.
  struct PublishOutcome {
    StreamPosition position;
  };
  using PublishDone = std::function<void(Result<PublishOutcome>)>;
  using SendDone = std::function<void(Result<std::string>)>;
  // publish() and sendDirect(), or their region versions, which answer later: `done` runs
  // exactly once, before returning or when the region answered.
  void publishAsync(const TenantConfig& tenant, const std::string& channel, std::string_view from,
                    std::string_view data_json, const std::string& idempotency_key,
                    PublishDone done);
  void sendDirectAsync(const TenantConfig& tenant, const std::string& user, std::string_view from,
                       std::string_view data_json, SendDone done);
  // A connection that may close before an answer arrives: serial tells a reused address
  // from the original.
  struct ConnRef {
    Connection* conn = nullptr;
    uint64_t serial = 0;
  };
  ConnRef refOf(Connection& conn) const { return {&conn, conn.serial}; }
  Connection* live(const ConnRef& ref) const;
  // Sends to the host's other workers (host bus), or in region mode to every other worker
  // of the region with interest (NATS), which includes this host's.
  void toOthers(const PeerMessage& message);
  bool othersExist() const { return region_ != nullptr || transport_.hasPeers(); }
  Result<PublishOutcome> publish(const TenantConfig& tenant, const std::string& channel,
                                 std::string_view from, std::string_view data_json,
                                 const std::string& idempotency_key);
  Result<std::string> sendDirect(const TenantConfig& tenant, const std::string& user,
                                 std::string_view from, std::string_view data_json);
  void fanOut(const std::string& tenant, const std::string& channel, const FramePtr& frame,
              int64_t origin_ts_ms);
  // join/leave of `user` to the channel's subscribers here (but `skip`) and on the other
  // workers.
  // `host_only`: not to the region's other edges (a sweep: each host sends the leaves of
  // what its own view lost).
  void broadcastPresenceEvent(const std::string& tenant, const std::string& channel,
                              const std::string& user, bool join, const Connection* skip,
                              bool host_only = false);
  // Delivers a durable channel's message at (epoch, offset) to local subscribers after
  // every earlier offset: a message that overtook another (they come from different
  // workers) first pulls the missing ones from history. Duplicates are skipped.
  void deliverSequenced(const TenantConfig& tenant, const std::string& channel,
                        const std::string& epoch, uint64_t offset, const FramePtr& frame,
                        int64_t origin_ts_ms);
  // Called by subscribe before the new subscriber joins, with the position its reply
  // (and replay) ends at: a first local subscriber starts there; older ones are caught up
  // to it from history. Forgotten when the last local subscriber leaves.
  void noteChannelPosition(const TenantConfig& tenant, const NamespaceConfig& ns,
                           const std::string& channel, const StreamPosition& top);
  void forgetChannelPosition(const std::string& tenant, const std::string& channel);
  // Leave events for the channel memberships of a dead worker's connections, sent to
  // every worker's subscribers once the user has no other connection in the channel.
  void emitSweptLeaves();
  void unsubscribeAll(Connection& conn);
  // Unsubscribes with everything that goes with it: presence, leave event, gauges.
  void leaveChannel(Connection& conn, const std::string& channel);
  bool replayFits(const Connection& conn, const std::vector<StoredMessage>& missed) const;
  Result<const NamespaceConfig*> channelNamespace(const TenantConfig& tenant,
                                                  const std::string& channel);
  HistoryLimits historyLimits(const NamespaceConfig& ns) const;
  void applyClaims(Connection& conn, const TokenClaims& claims);

  // Region mode (region_delivery.cc). One per durable channel with local subscribers (or
  // subscribes waiting): the delivery cursor and what waits for it.
  struct RegionChannel {
    std::string key;  // scopedKey(tenant, channel)
    std::string tenant;
    std::string channel;
    std::string owner;  // the region whose history orders the channel
    std::string history_subject;
    // The ownership generation delivered (common/owner_records.h); offsets of generation
    // gen > 0 in the owner's history are above `base`.
    uint64_t gen = 0;
    uint64_t base = 0;
    // A move to apply: delivered first is the old generation up to the move's fence, then
    // the channel follows the new owner from its base (regionSwitchOwner).
    std::optional<OwnerRecord> move;
    // A move away from this generation runs and its fence is not known yet: nothing more
    // of the generation is delivered (live messages are held) until it is.
    bool frozen = false;
    bool move_ready = false;  // the old generation is delivered up to the move's fence
    bool positioned = false;      // cursor is known
    bool busy = false;            // a fetch from the stream is running: live messages wait
    bool reposition = false;      // the epoch changed while busy: read the position again
    bool stalled = false;         // busy, a catch-up failed and waits in region_retry_
    bool catch_up_after = false;  // the link came back while busy: catch up once idle
    bool cursor_checked = false;  // this catch-up found the cursor's message still stored
    uint64_t cursor = 0;          // the offset last delivered to the local subscribers
    struct Live {
      uint64_t seq;
      uint64_t prev;  // the channel's previous offset (Nats-Last-Sequence)
      FramePtr frame;
      int64_t ts;
    };
    std::deque<Live> held;  // arrived while busy or before positioned
    size_t held_bytes = 0;
    struct Waiter {
      ConnRef ref;
      std::optional<uint64_t> id;
      std::optional<StreamPosition> since;
    };
    std::deque<Waiter> waiters;  // subscribes waiting for the channel to be idle
  };
  // Where stores go: the owner and the generation they carry; `moving` while a move runs
  // (they still go to the old owner; the move's fence decides which count).
  struct StoreTarget {
    std::string owner;
    uint64_t gen = 0;
    bool moving = false;
  };
  StoreTarget storeTargetOf(const std::string& tenant, const std::string& channel) const;
  void onRegionDelivery(NatsInbound& message);
  void onRegionReconnected();
  void onRegionEpochChanged(const std::string& owner);
  void forEachRegionChannel(const std::function<void(RegionChannel&)>& fn);
  void regionStore(const TenantConfig& tenant, const std::string& channel, std::string_view from,
                   std::string_view data_json, const std::string& scoped_key, PublishDone done);
  // Stores into `owner`'s history over `subject` (the stream's own subject, or the
  // bridges' for another region) and answers with the acknowledged position.
  void regionStoreAt(const StoreTarget& target, const std::string& tenant,
                     const std::string& channel, const std::string& subject, std::string bytes,
                     std::vector<NatsHeader> headers, PublishDone done);
  // The region that orders the channel (node.topology and the moves in the ownership
  // bucket), this one without a topology. While a move runs: the old owner.
  std::string ownerOf(const std::string& tenant, const std::string& channel) const;
  // ---- ownership moves (edge/region_ownership.cc) ----
  void onOwnerRecord(const OwnerRecord& record);
  // Applies rc.move: from now on the channel follows the new owner from its base.
  void regionSwitchOwner(RegionChannel& rc);
  // Applies rc.move without reading more of the old generation (a forced move, skipped
  // generations, an old owner that failed): the subscribers here are closed with 4009.
  void regionDropOldGeneration(RegionChannel& rc);
  // The epoch of the channel as its subscribers see it.
  std::string channelEpochOf(const RegionChannel& rc) const;
  std::string channelEpochOf(const std::string& owner, uint64_t gen) const;
  // After the owner acknowledged a store: this worker's copy of the ownership bucket must
  // be proven within the lease and, unless it alone confirms the store, the owner's
  // generation marker must still name the store's generation and owner; or the client is
  // told to retry (common/owner_records.h, judgeByView and judgeStore).
  void regionConfirmStore(const std::string& owner, uint64_t gen, const std::string& tenant,
                          const std::string& channel, PublishOutcome outcome, PublishDone done,
                          int attempt = 0, int stale_waits = 0);
  // The owner's marker read for regionConfirmStore (`attempt`: marker reads so far,
  // `stale_waits`: waits for a fresh copy of the bucket so far).
  void regionConfirmByMarker(const std::string& owner, uint64_t gen, const std::string& tenant,
                             const std::string& channel, PublishOutcome outcome,
                             PublishDone done, int attempt, int stale_waits);
  // The refusal of a store whose owner region is failing or failed (counted).
  Status ownerRegionFailed();
  // What this worker's copy of the bucket says of such a store now.
  ViewVerdict viewVerdict(const std::string& owner, uint64_t gen, const std::string& tenant,
                          const std::string& channel) const;
  void runLater(int64_t now_mono_ms);
  // A region was drained, failed or restored: when its channels are to move, the ones
  // with subscribers here move at once.
  void onRegionRecord(const RegionRecord& record);
  // When the channel's owner is a drained (or failed) region, moves it to the owner the
  // topology gives without those regions (common/ownership_mover.h); once per worker at a
  // time, and any number of workers may race (one wins).
  void moveFromDrained(const std::string& tenant, const std::string& channel);
  // Whether a stored message belongs to the generation the channel delivers (and, while
  // a move waits, to the old generation's part below the fence).
  bool deliverable(const RegionChannel& rc, const PeerMessage& stored, uint64_t seq) const;
  // An unsequenced (ordering = "none") channel in a fleet: its publishes made outside the
  // owner region go to the owner's bridges too.
  bool relaysUnsequenced(const std::string& tenant, const std::string& channel) const;
  // The owner region to announce the channel's interest to, if any (see the .cc).
  std::optional<std::string> interestOwner(const std::string& tenant,
                                           const std::string& channel) const;
  // Interest in a channel's live subject, announced to the bridges when owned elsewhere.
  void watchChannel(const std::string& tenant, const std::string& channel);
  void unwatchChannel(const std::string& tenant, const std::string& channel);
  void regionSendDirect(const TenantConfig& tenant, const std::string& user, std::string encoded,
                        int64_t ts, bool delivered_here, SendDone done);
  // The user is online nowhere: into the inbox of its home region when the tenant keeps
  // inboxes (`keep`), else dropped (counted).
  void regionOffline(bool keep, const std::string& home, const std::string& tenant,
                     const std::string& user, std::string bytes, SendDone done);
  // The user's home region (node.topology), this one without a topology.
  std::string homeOf(const std::string& tenant, const std::string& user) const;
  // Subscribes to a durable channel once its position in the region's history is known
  // (and, with `since`, the missed messages are fetched).
  void regionSubscribe(Connection& conn, const ClientCommand& cmd);
  // Interest in the channel's and the user's region subjects follows local membership.
  void regionChannelJoined(const std::string& tenant, const std::string& channel);
  void regionChannelLeft(const std::string& tenant, const std::string& channel);
  void regionUserJoined(const Connection& conn);
  void regionUserLeft(const Connection& conn);
  void recheckInboxes(int64_t now_mono_ms);
  // Delivers the user's queued direct messages from offset `from` on, then removes them.
  void regionFetchInbox(const std::string& tenant, const std::string& user, uint64_t from);
  RegionChannel& regionChannel(const std::string& tenant, const std::string& channel);
  void regionLive(RegionChannel& rc, uint64_t seq, uint64_t prev, FramePtr frame, int64_t ts);
  void regionPosition(RegionChannel& rc);
  void regionPositionFailed(RegionChannel& rc);
  void regionCatchUp(RegionChannel& rc);
  // Delivers held live messages that follow the cursor, in offset order; true when it
  // took any.
  bool takeHeldInOrder(RegionChannel& rc);
  // Messages between the cursor and `resume_at` are gone: subscribers are told (4009).
  void regionGap(RegionChannel& rc, uint64_t resume_at);
  // Closes the channel's subscribers here with 4009: they resume, and are told
  // recovered:false (messages they may have missed can no longer be delivered).
  void closeSubscribersMissing(RegionChannel& rc, const char* reason, const char* why);
  // Catch-ups that failed (the stream was unreachable) and wait to be tried again.
  void retryRegionCatchUps(int64_t now_mono_ms);
  void regionServeWaiters(RegionChannel& rc);
  struct RegionReplay;
  void regionReplayStep(const std::shared_ptr<RegionReplay>& replay);
  void regionReplayVerify(const std::shared_ptr<RegionReplay>& replay);
  void regionReplayDone(const std::shared_ptr<RegionReplay>& replay, bool recovered);
  void regionIdle(RegionChannel& rc);  // not busy any more: next waiter, then held messages
  void regionFinishSubscribe(RegionChannel& rc, Connection& conn, std::optional<uint64_t> id,
                             bool recovered, std::vector<StoredMessage> missed);
  void regionForgetIfUnused(const std::string& key);
  // A waiting subscribe's turn: true when it still stands; otherwise (unsubscribed
  // meanwhile) it is answered with an error here.
  bool takeSubscribing(Connection& conn, const std::string& channel, std::optional<uint64_t> id);
  FramePtr storedFrame(const RegionChannel& rc, const PeerMessage& stored, uint64_t seq) const;

  // ---- the control plane (edge_control.cc; common/control_subjects.h) ----
  void startControl();
  // A message on one of this worker's control subjects (true: it was one, answered).
  bool onControlMessage(const NatsInbound& message);
  void controlReply(const NatsInbound& request, std::string body);
  std::string controlEdgeJson() const;
  std::string controlDrain(const NatsInbound& request, bool drain);
  std::string controlPresence(const NatsInbound& request);
  std::string controlKick(const NatsInbound& request);
  // Counters sampled every second for the rates the control plane reports.
  void sampleRates(int64_t now_mono_ms);
  struct RateSample {
    int64_t at_ms;
    uint64_t connects;
    uint64_t messages_in;
    uint64_t messages_out;
    uint64_t dropped;
  };
  std::deque<RateSample> rate_samples_;
  int64_t next_rate_sample_ms_ = 0;
  int control_worker_ = 0;
  bool drain_holds_ = false;  // a held drain (control plane): no stop at its end

  // Drain and reload (edge_drain.cc, edge_reload.cc).
  HttpResponse adminDrain(std::string_view authorization, std::string_view peer,
                          const std::unordered_map<std::string, std::string>& query,
                          std::string_view body);
  void scheduleDrainHint(Connection& conn, uint64_t offset_ms);
  void sendDrainHint(Connection& conn);
  double drainUnit();  // uniform in [0, 1)
  std::string reconnectUrl() const;
  // A control drain's `url` (region drains name the failover region): printable, ws(s)://.
  static constexpr size_t kMaxReconnectUrlBytes = 2048;
  static bool isReconnectUrl(std::string_view url);
  // A control request's body as a JSON object (valid until the next parse).
  bool controlObject(const NatsInbound& request, simdjson::dom::object& object);
  std::string drain_url_;  // set by a control drain, cleared by undrain
  void derivePublicUrl();
  // Ends subscriptions the reloaded config no longer allows, with a notice each.
  void dropStaleSubscriptions(Connection& conn, const TenantConfig& next);

  // Whether a subscribe or a leave of `user` changes the user's membership of the channel
  // as a whole: its connections on every worker of the host and, in region mode, of the
  // region, as the presence view knows them (the change just made included). Namespaces
  // without presence know only this worker: `local` (the hub's answer) decides there.
  bool userCountInChannelIs(const std::string& tenant, const std::string& channel,
                            const std::string& user, uint64_t count, bool local,
                            const NamespaceConfig& ns);

  void recheckLeaves(int64_t now_mono_ms);

  // This worker's presence changes: into the host's LMDB, and in region mode to the
  // region's other hosts.
  void presenceAdd(const Connection& conn);
  void presenceRemove(const Connection& conn);
  void presenceJoin(const Connection& conn, const std::string& channel);
  void presenceLeave(const Connection& conn, const std::string& channel);
  // A page of this worker's presence for another host's replica (PresenceReplication).
  PresenceMessage presenceSnapshot(uint64_t cursor, size_t max_bytes) const;

  // Rewrites this worker's presence records from its live connections.
  void resyncPresence(const char* why, int64_t now_mono_ms);
  // Presence record of a live connection (its address keyed as the caps count it).
  static PresenceConnection presenceRecord(const Connection& conn);

  // Host-wide connection caps (connection_caps.cc): true when one more connection would
  // pass limits.max_connections_per_ip (from `peer`) / max_connections_per_user.
  bool overIpCap(std::string_view peer);
  bool overUserCap(const std::string& tenant, const std::string& user);

  // Timers.
  void onTimer(TimerNode* node);
  void scheduleTokenTimer(Connection& conn);

  // Inbound limits: true when the command may run; otherwise it was answered (and the
  // connection possibly closed with 4008).
  bool admitCommand(Connection& conn, std::optional<uint64_t> id);
  bool admitPublish(Connection& conn, const ClientCommand& cmd);
  void refuseCommand(Connection& conn, std::optional<uint64_t> id, const LimitVerdict& verdict);

  // Backend API routes.
  HttpResponse apiPublish(std::string_view authorization, std::string_view body);
  HttpResponse apiSend(std::string_view authorization, std::string_view body);
  HttpResponse apiPresence(std::string_view authorization,
                           const std::unordered_map<std::string, std::string>& query);
  // Runs `start` with a completion: its response is returned when the completion ran
  // before start() returned (standalone), otherwise a deferred response whose answer goes
  // out later through Transport::answerHttp.
  using HttpDone = std::function<void(HttpResponse)>;
  HttpResponse answerWhenDone(const std::function<void(HttpDone)>& start);
  // The tenant owning the API key in `Authorization: Bearer …` (401 when none does).
  Result<const TenantConfig*> apiKeyOwner(std::string_view authorization);

  // Owned, so that a reload can update it in place: connections point at its tenants
  // (Connection::tenant_config, and Permissions at their default patterns), and a reload
  // keeps every tenant object where it is (edge_reload.cc).
  EdgeConfig config_;
  // Tenants removed by a reload, kept alive until their last connection has closed.
  std::vector<std::map<std::string, TenantConfig>::node_type> retired_tenants_;
  EdgeMetrics metrics_;
  Transport& transport_;
  TokenVerifier verifier_;
  JsonParser parser_;
  LmdbEnv env_;
  std::unique_ptr<LmdbSyncer> syncer_;  // after env_: stopped before the env closes
  std::unique_ptr<PresenceStore> presence_;
  std::unique_ptr<HistoryStore> history_;
  Hub hub_;
  // Last offset delivered per durable channel with local subscribers (scopedKey).
  std::unordered_map<std::string, StreamPosition> delivered_;
  // From sweeps of dead workers; sent by the next tick (the host bus is up by then).
  std::vector<SweptMembership> swept_memberships_;
  TimerWheel timers_;
  InboundLimits inbound_;
  IpGuard ip_guard_;
  std::unordered_map<Connection*, std::unique_ptr<Connection>> connections_;
  uint64_t connection_serial_ = 0;
  uint64_t http_ticket_ = 0;
  std::unique_ptr<Region> region_;                    // region mode only
  std::unique_ptr<PresenceReplication> replication_;  // region mode only
  std::unique_ptr<InterestAnnouncer> interest_;       // with a topology only
  std::unique_ptr<OwnerDirectory> owners_;            // with a topology only
  // The owner each watched channel's interest was announced to (by scopedKey): a move
  // withdraws it there and announces it to the new owner.
  std::unordered_map<std::string, std::string> announced_owner_;
  HealthySet healthy_regions_;                        // every region of the topology
  std::unordered_map<std::string, std::unique_ptr<RegionChannel>> region_channels_;  // scopedKey
  std::multimap<int64_t, std::string> region_retry_;  // when -> channel key (retries, checks)
  // What runs later, by when: store confirmations asked again (regionConfirmStore), the
  // grace of ownership moves this worker makes (moveFromDrained).
  std::multimap<int64_t, std::function<void()>> later_;
  // Channels of drained regions this worker is moving (scopedKey).
  std::unordered_set<std::string> moving_away_;
  // Leaves held back because the presence view still showed the user elsewhere.
  struct LeaveRecheck {
    int64_t due_ms;
    std::string tenant;
    std::string channel;
    std::string user;
  };
  std::deque<LeaveRecheck> leave_rechecks_;
  // Inboxes read once more shortly after a user's first connection here (a message
  // queued while this worker's interest was still on its way to the servers).
  struct InboxRecheck {
    int64_t due_ms;
    std::string tenant;
    std::string user;
  };
  std::deque<InboxRecheck> inbox_rechecks_;
  std::unordered_set<std::string> inbox_chains_;  // users whose inbox is being fetched
  static constexpr int64_t kLeaveRecheckMs = 500;
  std::string instance_id_;
  std::string public_url_;  // announced in welcome.regions
  uint64_t session_counter_ = 0;
  uint64_t tick_ms_ = 20;
  int64_t last_flush_ms_ = 0;
  int64_t last_heartbeat_ms_ = 0;
  int64_t last_sweep_ms_ = 0;
  int64_t last_trim_ms_ = 0;
  int64_t last_limits_sweep_ms_ = 0;
  bool shutting_down_ = false;
  OutboundLimits outbound_limits_;
  ConnectRateTracker connect_rate_;
  bool draining_ = false;
  int64_t drain_started_ms_ = 0;  // monotonic
  uint64_t drain_window_ms_ = 0;
  int64_t drain_deadline_ms_ = 0;  // monotonic: end of window + grace
  std::mt19937_64 drain_rng_;      // seeded from the kernel when a drain starts
};

// The per-connection queue limits the config asks for (high-water marks of 0 resolved).
OutboundLimits outboundLimits(const EdgeConfig& config);

// HTTP status for a Status code (400, 401, 403, 404, 413, 429, 503, 500).
int httpStatusFor(Code code);

// The credential of an `Authorization: Bearer …` header (scheme matched without regard to
// case, RFC 7235); empty when the header is anything else.
std::string_view bearerToken(std::string_view header);

// What a client or backend is told about a failure: the message, except for internal and
// storage failures, whose details (library messages, paths) stay in the logs.
std::string clientMessage(const Status& status);

}  // namespace wsfleet
