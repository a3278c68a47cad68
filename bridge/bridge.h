#pragma once
// wsfleet-bridge: the one process of a region that speaks to other regions.
//
// What it does (docs/ARCHITECTURE.md, "Across regions"):
//  - interest: the region's edge workers announce the channels they have subscribers for
//    whose owner is another region; the bridge aggregates them and announces them to each
//    owner region (deltas at once, full snapshots periodically, withdrawals after a
//    linger);
//  - owner side: for every channel of this region that another region wants, it listens
//    on the channel's live subject (the history stream's republish, in offset order) and
//    sends each message once to every interested region, to one bridge there;
//  - receiving side: a message forwarded to this bridge is republished on the channel's
//    live subject of this region, headers (offsets, traceparent) unchanged;
//  - publishes: a durable publish for a channel owned elsewhere goes from the edge to a
//    bridge (queue group), which stores it in the owner's stream and relays the owner's
//    acknowledgement, retrying with the same message id (the owner drops repeats);
//  - history: reads of the owner's stream (catch-up, resume) are proxied the same way;
//  - links: each other region is up while one of its bridges is heard; while it is down,
//    publishes for its channels are refused at once (circuit breaker) and nothing is
//    forwarded to it; when it comes back, the last message of each channel it wants is
//    sent again, so its edges see what they missed and fetch it from the history.
// Several bridges per region share the work by rendezvous over the live bridges
// (bridge/peer_set.h): one forwards each channel, one receives it.
//
// Single-threaded: every method runs on the bridge's loop (NatsLink keeps cnats away).

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "bridge/bridge_config.h"
#include "bridge/interest_table.h"
#include "bridge/peer_set.h"
#include "common/json.h"
#include "common/metrics.h"
#include "common/nats_link.h"
#include "common/nats_requests.h"
#include "common/status.h"

namespace wsfleet {

class Bridge {
 public:
  static Result<std::unique_ptr<Bridge>> start(const BridgeConfig& config,
                                               MetricsRegistry& registry);
  ~Bridge();

  int wakeFd() const { return link_->wakeFd(); }
  void onWake();
  void tick(int64_t now_mono_ms);
  // Tells the region's bridges and the other regions that this one leaves, and stops
  // heartbeats and snapshots (which would undo it).
  void sayGoodbye();
  // SIGTERM: no new requests (the other bridges of the region take them), goodbye.
  void beginStop();

  bool ready() const { return link_->state() == NatsLinkState::kConnected; }
  size_t pendingPublishes() const { return publishes_in_flight_; }
  std::string statusJson() const;

 private:
  Bridge(const BridgeConfig& config, MetricsRegistry& registry);
  struct RemoteRegion;
  struct Metrics;

  void subscribeFixed();
  void onMessage(NatsInbound& message);
  void onEdgeInterest(const NatsInbound& message);
  void onPeerHeartbeat(const NatsInbound& message);
  void onRemoteHeartbeat(const NatsInbound& message);
  void onRemoteInterest(const NatsInbound& message);
  void onOwnedChannelMessage(const std::string& tail, NatsInbound& message);
  void onForwardedIn(const std::string& tail, NatsInbound& message);
  // Sends a message of an owned channel to every interested region but `skip_region`.
  void forwardToInterested(const std::string& tail, const NatsInbound& message,
                           const std::string& skip_region);
  // Unsequenced channels: publishes made in this region for another region's channel
  // (onLiveRelay), and those of other regions for this region's channels (onLiveIn),
  // which this region's subscribers get and the other interested regions too.
  void onLiveRelay(NatsInbound& message);
  void onLiveIn(const std::string& tail, NatsInbound& message);
  // Listens for relayed publishes of `tail` while any region, this one included, wants it.
  void updateLiveSubscription(const std::string& tail);
  void onForwardPublish(NatsInbound& message);
  void onForwardApi(NatsInbound& message);

  struct PendingPublish;
  void tryForwardPublish(const std::shared_ptr<PendingPublish>& publish);
  void replyError(const std::string& reply, int code, const std::string& description);

  void sendHeartbeats(int64_t now_ms);
  void announceInterest(int64_t now_ms, bool snapshot);
  void sendInterest(const std::string& owner, const char* kind, bool snapshot,
                    const std::vector<std::string>& add, const std::vector<std::string>& del);
  // Direct messages: from an edge of this region (wsf.<r>.xuser.<home>.<tail>), and, in
  // the user's home region, to every region the user is online in but `origin`.
  void onDirect(NatsInbound& message);
  void deliverFromHome(const std::string& tail, const std::string& origin, NatsInbound& message);
  // A direct message the home region sent to this one: published on the user's subject,
  // and when the home asks, whether an edge here took it.
  void deliverHere(const std::string& tail, NatsInbound& message);
  void applyRemoteInterestChanges();
  // Sends the last stored message of `tail` to `region` (whose edges then see whether
  // they missed anything).
  void resendTail(const std::string& tail, const std::string& region);
  void sendQueuedTails();
  void sendTail(const std::string& tail, const std::string& region);
  void resendAllTails(const std::string* only_region);
  void updateLinks(int64_t now_ms);
  // After this bridge's own NATS outage (see the .cc).
  void relearn(int64_t now_ms);
  RemoteRegion* remote(const std::string& name);
  bool linkUp(const std::string& region) const;

  // ---- the control plane (bridge_control.cc; common/control_subjects.h) ----
  void subscribeControl();
  void onControl(NatsInbound& message);
  std::string controlBridgeJson() const;
  // `region` another region: the link to it; this region: every link (it is cut off).
  std::string controlPause(const NatsInbound& request, bool pause);
  void setPaused(RemoteRegion& r, bool paused);
  void sampleRates(int64_t now_ms);
  struct RateSample {
    int64_t at_ms;
    uint64_t messages_out;
    uint64_t messages_in;
  };
  std::deque<RateSample> rate_samples_;
  int64_t next_rate_sample_ms_ = 0;

  const BridgeConfig& config_;
  std::string region_;
  std::string instance_;
  std::unique_ptr<NatsLink> link_;
  NatsRequests requests_;
  JsonParser parser_;
  std::unique_ptr<Metrics> metrics_;

  PeerSet peers_;  // this region's bridges
  std::map<std::string, std::unique_ptr<RemoteRegion>> remotes_;
  LocalInterest local_interest_;
  RemoteInterest remote_interest_;
  RemoteInterest users_;  // users whose home is this region: where they are online
  int64_t warm_until_ms_ = 0;
  std::set<std::string> announced_owners_;  // owners told about a non-empty set lately

  // Live subjects of owned channels other regions want: tail <-> subscription id.
  std::unordered_map<std::string, uint64_t> owned_subs_;
  std::unordered_map<uint64_t, std::string> owned_sub_tails_;
  // Relayed unsequenced publishes of this region's channels: tail <-> subscription id.
  std::unordered_map<std::string, uint64_t> live_subs_;
  std::unordered_map<uint64_t, std::string> live_sub_tails_;
  uint64_t next_sub_id_ = 1000;

  std::deque<std::pair<std::string, std::string>> tail_queue_;  // (tail, region) to resend
  std::set<std::pair<std::string, std::string>> tail_queued_;
  size_t publishes_in_flight_ = 0;
  std::multimap<int64_t, std::shared_ptr<PendingPublish>> publish_retries_;

  int64_t next_heartbeat_ms_ = 0;
  int64_t next_snapshot_ms_ = 0;
  bool was_connected_ = false;
  bool stopping_ = false;  // said goodbye: no heartbeats or announcements any more
  int64_t next_expiry_scan_ms_ = 0;
};

}  // namespace wsfleet
