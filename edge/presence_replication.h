#pragma once
// Region presence: every edge host's LMDB holds the presence of the whole region.
//
// Each worker publishes what changes in its own presence (connections added and removed,
// channels joined and left) in small batches on wsf.<region>.presence.<node>.<instance>,
// numbered per worker (seq), and a heartbeat with its latest seq every
// presence.heartbeat_ms.
// On each host one worker, the replica (worker 0), listens to every other node and writes
// what it hears into the host's LMDB as "remote instances" (PresenceStore::applyRemote).
//
// Anti-entropy: a replica that misses a batch (a seq gap, a heartbeat ahead of what it
// applied, or a worker it has never heard of) asks that worker for a full snapshot, in
// pages, on wsf.<region>.psync.<node>.<instance>; connections the snapshot no longer has are
// removed. Batches and pages come from the same NATS connection to the same one, so they
// arrive in the order they were sent. A worker that stops heartbeating is swept with all
// its records after presence.ttl_ms by the host's ordinary sweep; a worker that stops
// cleanly, or that its own host swept, is announced gone and removed at once.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "edge/presence_store.h"
#include "edge/region.h"

namespace wsfleet {

struct PresenceMessage {
  enum class Type : uint8_t { kOps = 1, kHeartbeat = 2, kGone = 3, kPage = 4, kPageRequest = 5 };
  Type type = Type::kOps;
  std::string instance;  // the worker the message is about (its own instance id)
  uint64_t seq = 0;      // kOps: this batch; kHeartbeat, kPage: the latest batch sent
  std::vector<PresenceOp> ops;
  uint64_t cursor = 0;  // kPageRequest: after this; kPage: the next request's cursor
  bool last = false;    // kPage: the snapshot is complete
};

std::string encodePresenceMessage(const PresenceMessage& message);
std::optional<PresenceMessage> decodePresenceMessage(std::string_view bytes);

class PresenceReplication {
 public:
  // One page of this worker's snapshot: connections after `cursor` (adds followed by
  // their joins) and the cursor after them; last=true when nothing is left.
  using SnapshotFn = std::function<PresenceMessage(uint64_t cursor, size_t max_bytes)>;
  // Memberships a removal took away (for leave events to this host's subscribers).
  using SweptFn = std::function<void(std::vector<SweptMembership>)>;

  PresenceReplication(Region& region, PresenceStore& store, std::string node, std::string instance,
                      bool replica, SnapshotFn snapshot, SweptFn swept);
  ~PresenceReplication();

  // ---- this worker's changes ----
  void record(PresenceOp op);
  // This worker's presence was rewritten (resync): the others take a fresh snapshot.
  void rewritten();
  // Publishes the pending batch; heartbeats when due.
  void tick(int64_t now_mono_ms, int64_t heartbeat_ms);
  // A clean stop: the others remove this worker now.
  void goodbye();
  // This host swept a dead worker of its own: the others remove it now.
  void announceGone(const std::string& instance);

  // ---- arriving (EdgeService routes messages on presence subjects here) ----
  // True when `subject` belongs to presence replication (consumed).
  bool onMessage(NatsInbound& message, int64_t now_mono_ms);

  uint64_t syncs() const { return syncs_; }

 private:
  struct Peer {
    std::string node;      // its node's subject token (for its psync subject)
    uint64_t applied = 0;  // the last batch applied
    bool syncing = false;
    bool dirty = false;       // a batch went missing during the sync: sync again after
    uint64_t generation = 0;  // of the current sync: pages of an older one are ignored
    int64_t last_contact_ms = 0;
    std::unordered_set<std::string> seen;  // connection ids confirmed during a sync
  };
  void onPresence(PresenceMessage message, int64_t now_mono_ms);
  void startSync(const std::string& instance, int64_t now_mono_ms);
  void requestPage(const std::string& instance, uint64_t cursor, uint64_t generation);
  void onPage(const std::string& instance, uint64_t generation, const NatsInbound* reply);
  // True when the store had to create the instance (new, or swept while out of touch).
  bool apply(const std::string& instance, const std::vector<PresenceOp>& ops, int64_t now);
  void forgetSilentPeers(int64_t now_mono_ms, int64_t heartbeat_ms);
  void remove(const std::string& instance);
  static std::string remoteId(const std::string& instance) { return "r:" + instance; }

  Region& region_;
  PresenceStore& store_;
  std::string node_;
  std::string instance_;
  bool replica_;
  SnapshotFn snapshot_;
  SweptFn swept_;
  std::string publish_subject_;
  std::string sync_subject_;
  std::string all_subject_;
  std::string own_node_prefix_;
  std::string node_token_;  // of the message being handled
  std::vector<PresenceOp> batch_;
  uint64_t seq_ = 0;
  int64_t last_heartbeat_ms_ = 0;
  std::unordered_map<std::string, Peer> peers_;  // by instance (theirs, not "r:")
  uint64_t syncs_ = 0;
  int64_t last_prune_ms_ = 0;
};

}  // namespace wsfleet
