#pragma once
// Host presence in LMDB, shared by every worker process on the host.
//
// Records: one per connection (tenant, user, device, conn id, instance, connected_at,
// client address key), indexes user -> connections, address -> connections and
// channel -> (user, connection), and one heartbeat record
// per instance (a worker process: its host boot id, pid and last heartbeat). Connection
// liveness inside a live worker is enforced by WebSocket pings there; a record outlives
// its connection only when its worker died, so the sweeper expires records by their
// *instance's* heartbeat: all records of an instance whose heartbeat is older than the TTL,
// whose boot id is not the current one, or whose pid is gone, are removed.
//
// Writes are buffered and applied in one write transaction by flush() (the worker calls
// it on a short timer, never once per event). Queries flush first so a worker reads its
// own writes. Time is CLOCK_MONOTONIC milliseconds (the same for all processes of one
// boot; immune to wall-clock steps).
//
// Region mode adds the region view: the records of other edges' workers ("remote
// instances", ids starting with "r:"), written only by the host's presence replica
// (presence_replication.cc) through applyRemote(). They answer presence queries
// (channelMembers, userConnections) region-wide, but never count for the host's
// connection caps (their users are indexed apart and they carry no address). A remote
// instance is stale when the replica has not heard from it within the TTL.
//
// Connection counts (per address, per tenant + user) for the host-wide connection caps are
// derived from the connection records themselves, through their indexes: whatever removes
// a record (a close, a sweep of a dead worker, a resync) removes it from the counts, so a
// crashed worker cannot leak a count. Counting takes a read transaction only.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/lmdb.h"
#include "common/protocol.h"
#include "common/status.h"

namespace wsfleet {

struct PresenceConnection {
  std::string conn_id;  // unique per host and time (the session id)
  std::string tenant;
  std::string user;
  std::string device;
  int64_t connected_at_ms = 0;  // wall clock, informational
  // Opaque key of the client's address (ipLimitKey: the IPv4 address or IPv6 /64) that
  // the per-address cap counts; empty: not counted per address. Any bytes.
  std::string address;
};

// A channel membership a sweep removed (its connection's worker died).
struct SweptMembership {
  std::string tenant;
  std::string channel;
  std::string user;
};

// One change of another edge's presence, as replicated (presence_replication.h).
struct PresenceOp {
  enum class Kind : uint8_t { kAdd = 1, kRemove = 2, kJoin = 3, kLeave = 4 };
  Kind kind = Kind::kAdd;
  PresenceConnection conn;  // kRemove: conn_id only; kJoin/kLeave: conn_id, tenant, user
  std::string channel;      // kJoin/kLeave
};

// Remote instance ids: "r:" + the other edge's own instance id.
bool isRemoteInstance(std::string_view instance_id);

struct SweepStats {
  uint64_t instances_removed = 0;
  std::vector<std::string> local_instances;  // the removed instances of this host
  uint64_t connections_removed = 0;
  std::vector<SweptMembership> memberships;  // for leave events
};

class PresenceStore {
 public:
  // `instance_id`: unique per worker process start. Registers the instance (boot id, pid)
  // and writes its first heartbeat.
  static Result<std::unique_ptr<PresenceStore>> open(LmdbEnv& env, std::string instance_id,
                                                     int64_t now_mono_ms);
  ~PresenceStore();

  // Buffered (applied by the next flush()).
  void addConnection(const PresenceConnection& conn);
  void removeConnection(const std::string& conn_id);  // and all its channel memberships
  // The same, for a connection this worker added: its tenant, user and address also take
  // it out of the buffered counts at once (with only the id, the counts below keep it
  // until the next flush).
  void removeConnection(const PresenceConnection& conn);
  void joinChannel(const std::string& conn_id, const std::string& tenant,
                   const std::string& channel, const std::string& user);
  void leaveChannel(const std::string& conn_id, const std::string& tenant,
                    const std::string& channel, const std::string& user);
  size_t pendingOps() const;

  // Applies every buffered op in one write transaction. On MDB_MAP_FULL the batch is
  // discarded and Code::kUnavailable "lmdb_map_full" is returned (the caller counts it
  // and keeps serving; presence is eventually consistent, not truth).
  Status flush();

  // Queries (flush() first).
  Result<std::vector<PresenceMember>> channelMembers(const std::string& tenant,
                                                     const std::string& channel);
  Result<std::vector<PresenceConnection>> userConnections(const std::string& tenant,
                                                          const std::string& user);
  // The user's connections in one channel (a seek, not a walk of the channel's members).
  Result<uint64_t> userConnectionsInChannel(const std::string& tenant, const std::string& channel,
                                            const std::string& user);

  // Live connections of the whole host from one address key / of one tenant + user:
  // what every worker has flushed plus this worker's buffered adds and removals. Other
  // workers' buffered changes are not seen (they are at most presence.flush_ms old). No
  // flush, no write transaction: one read transaction and a constant-time count, so it
  // can run for every handshake.
  Result<uint64_t> connectionsFromAddress(const std::string& address);
  Result<uint64_t> connectionsOfUser(const std::string& tenant, const std::string& user);

  // Writes this instance's heartbeat (its own small transaction). Returns true when the
  // instance record had been removed meanwhile: a sibling swept this worker (it was paused
  // longer than the TTL), so its live connections are missing and need resync().
  Result<bool> heartbeat(int64_t now_mono_ms);

  // True after a flush failed: its batch was lost (removals included), so the stored view
  // of this instance no longer matches its connections until resync() succeeds.
  bool needsResync() const;

  // One live connection and its presence-enabled channels, for resync().
  struct LiveConnection {
    PresenceConnection conn;
    std::vector<std::string> channels;
  };
  // Replaces every record of this instance with `live` in one write transaction (pending
  // ops are dropped: `live` is the truth they were heading to).
  Status resync(const std::vector<LiveConnection>& live, int64_t now_mono_ms);
  // Removes every record of instances that are stale (see the file comment).
  // The own instance is never swept.
  Result<SweepStats> sweep(int64_t now_mono_ms, int64_t ttl_ms);

  const std::string& instanceId() const;

  // ---- the region view (region mode) ----
  // Applies a remote instance's changes in one write transaction and records that it was
  // heard from now (creating its instance record). `instance` must be remote. A kAdd
  // replaces the connection's record; removing something unknown is not an error.
  // Returns true when the instance record had to be created: it is new here, or a sweep
  // removed it (with its connections) while it was out of touch.
  Result<bool> applyRemote(const std::string& instance, const std::vector<PresenceOp>& ops,
                           int64_t now_mono_ms);
  // Connection ids stored for an instance (the replica reconciles a full snapshot).
  Result<std::vector<std::string>> instanceConnections(const std::string& instance);
  // Removes a remote instance and all its records now (its edge said it is gone);
  // memberships removed are reported for leave events.
  Result<SweepStats> removeInstance(const std::string& instance);

 private:
  struct Impl;
  explicit PresenceStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace wsfleet
