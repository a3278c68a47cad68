#include "edge/presence_replication.h"

#include <algorithm>
#include <utility>

#include "common/byte_codec.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/region_subjects.h"

namespace wsfleet {

namespace {

constexpr uint8_t kMagic = 0xF3;
constexpr uint8_t kVersion = 1;
constexpr size_t kPageBytes = 256 * 1024;  // well under NATS' default 1 MB payload cap
constexpr size_t kMaxBatchOps = 2000;      // a batch is published early when this big

}  // namespace

std::string encodePresenceMessage(const PresenceMessage& m) {
  std::string out;
  out.push_back(static_cast<char>(kMagic));
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(m.type));
  putBytes(out, m.instance);
  putU64(out, m.seq);
  putU64(out, m.cursor);
  out.push_back(m.last ? 1 : 0);
  putU64(out, m.ops.size());
  for (const PresenceOp& op : m.ops) {
    out.push_back(static_cast<char>(op.kind));
    putBytes(out, op.conn.conn_id);
    putBytes(out, op.conn.tenant);
    putBytes(out, op.conn.user);
    putBytes(out, op.conn.device);
    putU64(out, static_cast<uint64_t>(op.conn.connected_at_ms));
    putBytes(out, op.channel);
  }
  return out;
}

std::optional<PresenceMessage> decodePresenceMessage(std::string_view bytes) {
  ByteReader r(bytes);
  uint8_t magic = 0, version = 0, type = 0, last = 0;
  if (!r.u8(magic) || magic != kMagic || !r.u8(version) || version != kVersion || !r.u8(type) ||
      type < 1 || type > 5) {
    return std::nullopt;
  }
  PresenceMessage m;
  m.type = static_cast<PresenceMessage::Type>(type);
  uint64_t count = 0;
  if (!r.bytes(m.instance) || !r.u64(m.seq) || !r.u64(m.cursor) || !r.u8(last) || !r.u64(count)) {
    return std::nullopt;
  }
  m.last = last != 0;
  // Each op takes at least 29 bytes: a count beyond what is left is a lie.
  if (count > r.left() / 29) return std::nullopt;
  m.ops.resize(count);
  for (PresenceOp& op : m.ops) {
    uint8_t kind = 0;
    uint64_t at = 0;
    if (!r.u8(kind) || kind < 1 || kind > 4 || !r.bytes(op.conn.conn_id) ||
        !r.bytes(op.conn.tenant) || !r.bytes(op.conn.user) || !r.bytes(op.conn.device) ||
        !r.u64(at) || !r.bytes(op.channel)) {
      return std::nullopt;
    }
    op.kind = static_cast<PresenceOp::Kind>(kind);
    op.conn.connected_at_ms = static_cast<int64_t>(at);
  }
  if (!r.done()) return std::nullopt;
  return m;
}

PresenceReplication::PresenceReplication(Region& region, PresenceStore& store, std::string node,
                                         std::string instance, bool replica, SnapshotFn snapshot,
                                         SweptFn swept)
    : region_(region),
      store_(store),
      node_(std::move(node)),
      instance_(std::move(instance)),
      replica_(replica),
      snapshot_(std::move(snapshot)),
      swept_(std::move(swept)) {
  // Five tokens like every wsf subject: wsf.<region>.<kind>.<node>.<worker instance>.
  const std::string base = "wsf." + region_.name() + ".";
  const std::string own = subjectToken(node_) + "." + subjectToken(instance_);
  publish_subject_ = base + "presence." + own;
  own_node_prefix_ = base + "presence." + subjectToken(node_) + ".";
  sync_subject_ = base + "psync." + own;
  all_subject_ = base + "presence.*.*";
  region_.watch(sync_subject_);
  if (replica_) region_.watch(all_subject_);
}

PresenceReplication::~PresenceReplication() {
  region_.unwatch(sync_subject_);
  if (replica_) region_.unwatch(all_subject_);
}

void PresenceReplication::record(PresenceOp op) {
  op.conn.address.clear();  // addresses stay on the host
  batch_.push_back(std::move(op));
  if (batch_.size() >= kMaxBatchOps) {
    PresenceMessage m{PresenceMessage::Type::kOps, instance_, ++seq_, std::move(batch_), 0, false};
    batch_.clear();
    region_.publish(publish_subject_, encodePresenceMessage(m));
  }
}

void PresenceReplication::rewritten() {
  // Skipping a number makes every replica see a gap and take a snapshot.
  batch_.clear();
  seq_ += 2;
}

void PresenceReplication::tick(int64_t now_mono_ms, int64_t heartbeat_ms) {
  if (replica_) forgetSilentPeers(now_mono_ms, heartbeat_ms);
  if (!batch_.empty()) {
    PresenceMessage m{PresenceMessage::Type::kOps, instance_, ++seq_, std::move(batch_), 0, false};
    batch_.clear();
    region_.publish(publish_subject_, encodePresenceMessage(m));
  }
  if (now_mono_ms - last_heartbeat_ms_ >= heartbeat_ms) {
    last_heartbeat_ms_ = now_mono_ms;
    PresenceMessage m{PresenceMessage::Type::kHeartbeat, instance_, seq_, {}, 0, false};
    region_.publish(publish_subject_, encodePresenceMessage(m));
  }
}

void PresenceReplication::goodbye() {
  announceGone(instance_);
}

void PresenceReplication::announceGone(const std::string& instance) {
  PresenceMessage m{PresenceMessage::Type::kGone, instance, 0, {}, 0, false};
  region_.publish(publish_subject_, encodePresenceMessage(m));
}

bool PresenceReplication::onMessage(NatsInbound& message, int64_t now_mono_ms) {
  if (message.subject == sync_subject_) {
    auto request = decodePresenceMessage(message.data);
    if (!request || request->type != PresenceMessage::Type::kPageRequest || message.reply.empty()) {
      return true;
    }
    PresenceMessage page = snapshot_(request->cursor, kPageBytes);
    page.type = PresenceMessage::Type::kPage;
    page.instance = instance_;
    page.seq = seq_;
    region_.publish(message.reply, encodePresenceMessage(page));
    return true;
  }
  const std::string prefix = "wsf." + region_.name() + ".presence.";
  if (message.subject.compare(0, prefix.size(), prefix) != 0) return false;
  if (!replica_) return true;
  // This host's own workers write the host's LMDB themselves.
  if (message.subject.compare(0, own_node_prefix_.size(), own_node_prefix_) == 0) return true;
  auto decoded = decodePresenceMessage(message.data);
  if (!decoded || decoded->instance.empty()) return true;
  // wsf.<region>.presence.<node>.<instance>: the node's token, for its psync subject.
  const size_t node_start = prefix.size();
  const size_t node_end = message.subject.find('.', node_start);
  if (node_end == std::string::npos) return true;
  node_token_ = message.subject.substr(node_start, node_end - node_start);
  onPresence(std::move(*decoded), now_mono_ms);
  return true;
}

void PresenceReplication::onPresence(PresenceMessage m, int64_t now) {
  if (m.type == PresenceMessage::Type::kGone) return remove(m.instance);
  if (m.type != PresenceMessage::Type::kOps && m.type != PresenceMessage::Type::kHeartbeat) {
    return;  // pages and page requests only travel as requests and replies
  }
  Peer& peer = peers_[m.instance];
  peer.node = node_token_;
  peer.last_contact_ms = now;
  // A record the store had to create means this host knew nothing of the worker, or
  // swept it while out of touch (an outage longer than the TTL): only a snapshot knows
  // what it holds.
  const bool created = apply(m.instance, m.ops, now);
  if (m.type == PresenceMessage::Type::kOps) {
    for (const PresenceOp& op : m.ops) {
      if (!peer.syncing) break;
      if (op.kind == PresenceOp::Kind::kAdd) peer.seen.insert(op.conn.conn_id);
      if (op.kind == PresenceOp::Kind::kRemove) peer.seen.erase(op.conn.conn_id);
    }
    const bool in_order = peer.applied + 1 == m.seq;
    peer.applied = m.seq;
    if (peer.syncing) {
      if (!in_order) peer.dirty = true;  // lost during the sync: another one after it
      return;
    }
    if (!in_order || created) startSync(m.instance, now);
    return;
  }
  // Heartbeat: it names the last batch sent.
  if (!peer.syncing && (created || peer.applied != m.seq)) startSync(m.instance, now);
}

bool PresenceReplication::apply(const std::string& instance, const std::vector<PresenceOp>& ops,
                                int64_t now) {
  auto created = store_.applyRemote(remoteId(instance), ops, now);
  if (!created.isOk()) {
    logWarn("presence_replica_failed",
            {{"instance", instance}, {"error", created.status().toString()}});
    return false;
  }
  return *created;
}

void PresenceReplication::forgetSilentPeers(int64_t now_mono_ms, int64_t heartbeat_ms) {
  // Workers that stopped talking (their records are swept by the TTL): their bookkeeping
  // goes too, so peers_ holds only workers alive lately.
  if (now_mono_ms - last_prune_ms_ < 60000) return;
  last_prune_ms_ = now_mono_ms;
  for (auto it = peers_.begin(); it != peers_.end();) {
    const bool silent = now_mono_ms - it->second.last_contact_ms > 20 * heartbeat_ms + 60000;
    it = silent && !it->second.syncing ? peers_.erase(it) : std::next(it);
  }
}

void PresenceReplication::remove(const std::string& instance) {
  peers_.erase(instance);
  auto removed = store_.removeInstance(remoteId(instance));
  if (!removed.isOk()) return;
  if (!removed->memberships.empty()) swept_(std::move(removed->memberships));
}

void PresenceReplication::startSync(const std::string& instance, int64_t now) {
  Peer& peer = peers_[instance];
  if (peer.node.empty()) peer.node = node_token_;
  if (peer.syncing) return;
  peer.syncing = true;
  peer.dirty = false;
  peer.seen.clear();
  ++peer.generation;
  ++syncs_;
  apply(instance, {}, now);
  requestPage(instance, 0, peer.generation);
}

void PresenceReplication::requestPage(const std::string& instance, uint64_t cursor,
                                      uint64_t generation) {
  auto peer = peers_.find(instance);
  if (peer == peers_.end()) return;
  PresenceMessage request{PresenceMessage::Type::kPageRequest, instance_, 0, {}, cursor, false};
  // peer.node is already a subject token (taken from the subject it published on).
  region_.request(
      "wsf." + region_.name() + ".psync." + peer->second.node + "." + subjectToken(instance),
      encodePresenceMessage(request), {}, [this, instance, generation](const NatsInbound* reply) {
        onPage(instance, generation, reply);
      });
}

void PresenceReplication::onPage(const std::string& instance, uint64_t generation,
                                 const NatsInbound* reply) {
  auto it = peers_.find(instance);
  if (it == peers_.end()) return;  // gone meanwhile
  Peer& peer = it->second;
  if (!peer.syncing || peer.generation != generation) return;  // an older sync's page
  std::optional<PresenceMessage> page;
  if (reply != nullptr && reply->status.empty()) page = decodePresenceMessage(reply->data);
  if (!page || page->type != PresenceMessage::Type::kPage) {
    // No answer (it may be dying: its heartbeats stop and the sweep removes it) or a
    // broken one: try again at its next heartbeat.
    peer.syncing = false;
    peer.applied = 0;
    return;
  }
  // A page is a fresh truth about the connections it names: each is replaced whole.
  std::vector<PresenceOp> ops;
  ops.reserve(page->ops.size() * 2);
  for (const PresenceOp& op : page->ops) {
    if (op.kind == PresenceOp::Kind::kAdd) {
      PresenceOp drop;
      drop.kind = PresenceOp::Kind::kRemove;
      drop.conn.conn_id = op.conn.conn_id;
      ops.push_back(std::move(drop));
      peer.seen.insert(op.conn.conn_id);
    }
    ops.push_back(op);
  }
  apply(instance, ops, nowMonoMs());
  if (!page->last) return requestPage(instance, page->cursor, generation);
  // Complete: what the store still has beyond the snapshot (and the batches since) is
  // gone from that worker.
  auto stored = store_.instanceConnections(remoteId(instance));
  if (stored.isOk()) {
    std::vector<PresenceOp> stale;
    for (const std::string& id : *stored) {
      if (peer.seen.count(id) != 0) continue;
      PresenceOp drop;
      drop.kind = PresenceOp::Kind::kRemove;
      drop.conn.conn_id = id;
      stale.push_back(std::move(drop));
    }
    if (!stale.empty()) apply(instance, stale, nowMonoMs());
  }
  peer.syncing = false;
  peer.seen.clear();
  peer.applied = std::max(peer.applied, page->seq);
  if (peer.dirty) startSync(instance, nowMonoMs());
}

}  // namespace wsfleet
