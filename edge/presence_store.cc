#include "edge/presence_store.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace wsfleet {
namespace {

// Layout (keys and values; "\0" is a separator byte, never part of a name):
//   pconn      conn_id            -> ConnRecord
//   puser      tenant\0user       -> conn_id                   (dup; also the user's count)
//   paddr      address            -> conn_id                   (dup; the address's count)
//   pchan      tenant\0channel    -> user\0conn_id             (dup; sorted by user)
//   pconnchan  conn_id            -> tenant\0channel\0user     (dup; to drop memberships)
//   pinst      instance_id        -> InstanceRecord
//   pinstconn  instance_id        -> conn_id                   (dup; to sweep an instance)
//   pruser     tenant\0user       -> conn_id                   (dup; remote connections:
//                                                               apart from puser, which
//                                                               the host's caps count)
// Records are length-prefixed fields, so names may hold any byte but NUL. Address keys
// are binary (they may hold NUL) and are only ever whole keys, never part of one.

constexpr unsigned kFormatVersion = 1;

void putU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void putField(std::string* out, std::string_view s) {
  putU64(out, s.size());
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  std::optional<uint64_t> u64() {
    if (in_.size() < 8) return std::nullopt;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(in_[i])} << (8 * i);
    in_.remove_prefix(8);
    return v;
  }
  bool empty() const { return in_.empty(); }
  std::optional<std::string> field() {
    auto len = u64();
    if (!len || *len > in_.size()) return std::nullopt;
    std::string s(in_.substr(0, *len));
    in_.remove_prefix(*len);
    return s;
  }

 private:
  std::string_view in_;
};

struct ConnRecord {
  std::string instance;
  PresenceConnection conn;
};

std::string encodeConn(const std::string& instance, const PresenceConnection& c) {
  std::string out;
  putU64(&out, kFormatVersion);
  putField(&out, instance);
  putField(&out, c.tenant);
  putField(&out, c.user);
  putField(&out, c.device);
  putU64(&out, static_cast<uint64_t>(c.connected_at_ms));
  // Last and optional: records written before addresses were kept still decode, and a
  // reader that does not know the field ignores it (both may share an environment while
  // the workers of a host are restarted one by one).
  putField(&out, c.address);
  return out;
}

std::optional<ConnRecord> decodeConn(std::string_view conn_id, std::string_view in) {
  Reader r(in);
  auto version = r.u64();
  if (!version || *version != kFormatVersion) return std::nullopt;
  ConnRecord rec;
  auto instance = r.field();
  auto tenant = r.field();
  auto user = r.field();
  auto device = r.field();
  auto connected_at = r.u64();
  if (!instance || !tenant || !user || !device || !connected_at) return std::nullopt;
  rec.instance = std::move(*instance);
  rec.conn.conn_id = std::string(conn_id);
  rec.conn.tenant = std::move(*tenant);
  rec.conn.user = std::move(*user);
  rec.conn.device = std::move(*device);
  rec.conn.connected_at_ms = static_cast<int64_t>(*connected_at);
  if (!r.empty()) {
    auto address = r.field();
    if (!address) return std::nullopt;
    rec.conn.address = std::move(*address);
  }
  return rec;
}

struct InstanceRecord {
  std::string boot_id;
  uint64_t pid = 0;
  int64_t heartbeat_mono_ms = 0;
};

std::string encodeInstance(const InstanceRecord& rec) {
  std::string out;
  putU64(&out, kFormatVersion);
  putField(&out, rec.boot_id);
  putU64(&out, rec.pid);
  putU64(&out, static_cast<uint64_t>(rec.heartbeat_mono_ms));
  return out;
}

std::optional<InstanceRecord> decodeInstance(std::string_view in) {
  Reader r(in);
  auto version = r.u64();
  if (!version || *version != kFormatVersion) return std::nullopt;
  auto boot_id = r.field();
  auto pid = r.u64();
  auto heartbeat = r.u64();
  if (!boot_id || !pid || !heartbeat) return std::nullopt;
  return InstanceRecord{std::move(*boot_id), *pid, static_cast<int64_t>(*heartbeat)};
}

std::string join2(std::string_view a, std::string_view b) {
  std::string out;
  out.reserve(a.size() + b.size() + 1);
  out.append(a).push_back('\0');
  out.append(b);
  return out;
}

std::string join3(std::string_view a, std::string_view b, std::string_view c) {
  std::string out = join2(a, b);
  out.push_back('\0');
  out.append(c);
  return out;
}

// Names are validated upstream; a NUL would make the composite keys ambiguous.
bool validName(std::string_view s) {
  return s.find('\0') == std::string_view::npos;
}

std::string readBootId() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  return id;
}

// Remote instance records carry "remote:" + this host's boot id: their liveness is the
// replica's last contact on this host's monotonic clock, which a reboot restarts.
constexpr std::string_view kRemoteBoot = "remote:";

bool pidIsGone(uint64_t pid) {
  if (pid == 0 || pid > static_cast<uint64_t>(INT32_MAX)) return true;
  return kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH;
}

}  // namespace

struct PresenceStore::Impl {
  enum class Kind { kAdd, kRemove, kJoin, kLeave };
  struct Op {
    Kind kind;
    PresenceConnection conn;  // kRemove: conn_id only; kJoin/kLeave: conn_id, tenant, user
    std::string channel;
  };
  static Kind kindOf(PresenceOp::Kind k) {
    switch (k) {
      case PresenceOp::Kind::kAdd: return Kind::kAdd;
      case PresenceOp::Kind::kRemove: return Kind::kRemove;
      case PresenceOp::Kind::kJoin: return Kind::kJoin;
      case PresenceOp::Kind::kLeave: return Kind::kLeave;
    }
    return Kind::kRemove;
  }

  LmdbEnv* env = nullptr;
  std::string instance_id;
  std::string boot_id;
  uint64_t pid = 0;
  size_t max_key = 511;
  MDB_dbi conn_db = 0, user_db = 0, chan_db = 0, conn_chan_db = 0, inst_db = 0, inst_conn_db = 0;
  MDB_dbi addr_db = 0, remote_user_db = 0;
  std::vector<Op> pending;
  // What the pending adds and removals change in the counts, by address key and by
  // tenant\0user; cleared with `pending`. Only keys with pending changes are here.
  std::unordered_map<std::string, int64_t> address_delta;
  std::unordered_map<std::string, int64_t> user_delta;
  bool needs_resync = false;

  void clearPending() {
    pending.clear();
    address_delta.clear();
    user_delta.clear();
  }

  void adjustCounts(const PresenceConnection& c, int64_t by) {
    if (!c.address.empty()) address_delta[c.address] += by;
    user_delta[join2(c.tenant, c.user)] += by;
  }

  // Flushed duplicates of `key` in `db` plus the pending change, never below zero (a
  // removal whose add was flushed and then swept must not count negative).
  Result<uint64_t> count(MDB_dbi db, const std::string& key,
                         const std::unordered_map<std::string, int64_t>& delta) const {
    int64_t n = 0;
    if (fits(key)) {
      WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginRead(*env));
      WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, db));
      if (cur.seekKey(key)) {
        WSF_ASSIGN_OR_RETURN(uint64_t stored, cur.dupCount());
        n = static_cast<int64_t>(stored);
      }
    }
    if (auto it = delta.find(key); it != delta.end()) n += it->second;
    return static_cast<uint64_t>(std::max<int64_t>(n, 0));
  }

  bool fits(std::string_view key) const { return !key.empty() && key.size() <= max_key; }

  // Names are validated upstream (no NUL, bounded lengths); an op that would still break
  // a key is dropped here rather than failing the whole batch at flush time.
  void push(Op op) {
    // An address too long for a key (not an IP address: ipLimitKey keys those in a few
    // bytes) is not counted rather than failing the batch.
    if (!op.conn.address.empty() && !fits(op.conn.address)) op.conn.address.clear();
    const PresenceConnection& c = op.conn;
    bool ok = validName(c.conn_id) && validName(c.tenant) && validName(c.user) &&
              validName(op.channel) && fits(c.conn_id);
    if (op.kind == Kind::kAdd) ok = ok && fits(join2(c.tenant, c.user));
    if (op.kind == Kind::kJoin || op.kind == Kind::kLeave) {
      ok = ok && fits(join2(c.tenant, op.channel)) && fits(join2(c.user, c.conn_id)) &&
           fits(join3(c.tenant, op.channel, c.user));
    }
    assert(ok);
    if (ok) pending.push_back(std::move(op));
  }

  Status putInstance(int64_t now_mono_ms) {
    WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*env));
    WSF_RETURN_IF_ERROR(txn.put(inst_db, instance_id, encodeInstance({boot_id, pid, now_mono_ms})));
    return txn.commit();
  }

  MDB_dbi userIndex(std::string_view instance) const {
    return isRemoteInstance(instance) ? remote_user_db : user_db;
  }

  Status applyAdd(LmdbTxn& txn, const PresenceConnection& c) { return applyAdd(txn, c, instance_id); }

  Status applyAdd(LmdbTxn& txn, const PresenceConnection& c, const std::string& owner) {
    const std::string user_key = join2(c.tenant, c.user);
    // A re-add replaces the record; its old indexes must not keep pointing at it.
    if (auto old = txn.get(conn_db, c.conn_id)) {
      if (auto rec = decodeConn(c.conn_id, *old)) {
        WSF_RETURN_IF_ERROR(toStatus(txn.delDup(userIndex(rec->instance),
                                                join2(rec->conn.tenant, rec->conn.user),
                                                c.conn_id)));
        WSF_RETURN_IF_ERROR(toStatus(txn.delDup(inst_conn_db, rec->instance, c.conn_id)));
        if (!rec->conn.address.empty()) {
          WSF_RETURN_IF_ERROR(toStatus(txn.delDup(addr_db, rec->conn.address, c.conn_id)));
        }
      }
    }
    WSF_RETURN_IF_ERROR(txn.put(conn_db, c.conn_id, encodeConn(owner, c)));
    WSF_RETURN_IF_ERROR(txn.put(userIndex(owner), user_key, c.conn_id));
    if (!c.address.empty()) WSF_RETURN_IF_ERROR(txn.put(addr_db, c.address, c.conn_id));
    return txn.put(inst_conn_db, owner, c.conn_id);
  }

  // Removes the connection record, its indexes and every channel membership. Returns
  // whether a connection record existed.
  Result<bool> removeConn(LmdbTxn& txn, const std::string& conn_id,
                          std::vector<SweptMembership>* removed = nullptr) {
    bool existed = false;
    if (auto raw = txn.get(conn_db, conn_id)) {
      existed = true;
      // Copied before any write: the view points into a page the writes may move.
      std::optional<ConnRecord> rec = decodeConn(conn_id, *raw);
      if (rec) {
        WSF_RETURN_IF_ERROR(toStatus(txn.delDup(userIndex(rec->instance),
                                                join2(rec->conn.tenant, rec->conn.user),
                                                conn_id)));
        WSF_RETURN_IF_ERROR(toStatus(txn.delDup(inst_conn_db, rec->instance, conn_id)));
        if (!rec->conn.address.empty()) {
          WSF_RETURN_IF_ERROR(toStatus(txn.delDup(addr_db, rec->conn.address, conn_id)));
        }
      }
      WSF_RETURN_IF_ERROR(toStatus(txn.del(conn_db, conn_id)));
    }
    std::vector<std::string> memberships;
    {
      WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, conn_chan_db));
      for (bool ok = cur.seekKey(conn_id); ok; ok = cur.nextDup()) {
        memberships.emplace_back(cur.value());
      }
    }
    for (const std::string& m : memberships) {
      // tenant\0channel\0user
      const size_t second = m.find('\0', m.find('\0') + 1);
      if (second == std::string::npos) continue;
      WSF_RETURN_IF_ERROR(
          toStatus(txn.delDup(chan_db, m.substr(0, second), join2(m.substr(second + 1), conn_id))));
      if (removed != nullptr) {
        const size_t first = m.find('\0');
        removed->push_back({m.substr(0, first), m.substr(first + 1, second - first - 1),
                            m.substr(second + 1)});
      }
    }
    if (!memberships.empty()) WSF_RETURN_IF_ERROR(toStatus(txn.del(conn_chan_db, conn_id)));
    return existed;
  }

  Status applyJoin(LmdbTxn& txn, const Op& op) {
    const std::string chan_key = join2(op.conn.tenant, op.channel);
    const std::string member = join2(op.conn.user, op.conn.conn_id);
    const std::string back = join3(op.conn.tenant, op.channel, op.conn.user);
    if (op.kind == Kind::kJoin) {
      WSF_RETURN_IF_ERROR(txn.put(chan_db, chan_key, member));
      return txn.put(conn_chan_db, op.conn.conn_id, back);
    }
    WSF_RETURN_IF_ERROR(toStatus(txn.delDup(chan_db, chan_key, member)));
    return toStatus(txn.delDup(conn_chan_db, op.conn.conn_id, back));
  }

  Status apply(LmdbTxn& txn, const Op& op) {
    switch (op.kind) {
      case Kind::kAdd:
        return applyAdd(txn, op.conn);
      case Kind::kRemove:
        return toStatus(removeConn(txn, op.conn.conn_id));
      case Kind::kJoin:
      case Kind::kLeave:
        return applyJoin(txn, op);
    }
    return Status::ok();
  }

  bool isStale(const std::string& id, std::string_view raw, int64_t now_mono_ms,
               int64_t ttl_ms) const {
    if (id == instance_id) return false;
    std::optional<InstanceRecord> rec = decodeInstance(raw);
    if (!rec) return true;  // unreadable: nobody can ever refresh it
    if (rec->boot_id.compare(0, kRemoteBoot.size(), kRemoteBoot) == 0) {
      if (rec->boot_id.substr(kRemoteBoot.size()) != boot_id) return true;  // before a reboot
      return now_mono_ms - rec->heartbeat_mono_ms > ttl_ms;
    }
    // Monotonic time and pids mean nothing across a reboot.
    if (rec->boot_id != boot_id) return true;
    if (now_mono_ms - rec->heartbeat_mono_ms > ttl_ms) return true;
    return pidIsGone(rec->pid);
  }

  // Instance ids that look stale, read without taking the write lock.
  Result<std::vector<std::string>> staleCandidates(const LmdbTxn& txn, int64_t now_mono_ms,
                                                   int64_t ttl_ms) const {
    std::vector<std::string> out;
    WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, inst_db));
    for (bool ok = cur.first(); ok; ok = cur.next()) {
      std::string id(cur.key());
      if (isStale(id, cur.value(), now_mono_ms, ttl_ms)) out.push_back(std::move(id));
    }
    return out;
  }

  Result<uint64_t> sweepInstance(LmdbTxn& txn, const std::string& id,
                                 std::vector<SweptMembership>* memberships = nullptr) {
    std::vector<std::string> conns;
    {
      WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, inst_conn_db));
      for (bool ok = cur.seekKey(id); ok; ok = cur.nextDup()) conns.emplace_back(cur.value());
    }
    uint64_t count = 0;
    for (const std::string& conn_id : conns) {
      WSF_ASSIGN_OR_RETURN(bool existed, removeConn(txn, conn_id, memberships));
      if (existed) ++count;
    }
    WSF_RETURN_IF_ERROR(toStatus(txn.del(inst_conn_db, id)));
    WSF_RETURN_IF_ERROR(toStatus(txn.del(inst_db, id)));
    return count;
  }
};

Result<std::unique_ptr<PresenceStore>> PresenceStore::open(LmdbEnv& env, std::string instance_id,
                                                           int64_t now_mono_ms) {
  assert(env.get() != nullptr);
  assert(!instance_id.empty() && validName(instance_id));
  auto impl = std::make_unique<Impl>();
  impl->env = &env;
  impl->instance_id = std::move(instance_id);
  impl->boot_id = readBootId();
  impl->pid = static_cast<uint64_t>(getpid());
  impl->max_key = static_cast<size_t>(mdb_env_get_maxkeysize(env.get()));
  {
    // Database handles are opened once, in a committed transaction, before any other
    // transaction of this process uses them.
    WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(env));
    WSF_ASSIGN_OR_RETURN(impl->conn_db, txn.openDb("pconn", 0));
    WSF_ASSIGN_OR_RETURN(impl->user_db, txn.openDb("puser", MDB_DUPSORT));
    WSF_ASSIGN_OR_RETURN(impl->chan_db, txn.openDb("pchan", MDB_DUPSORT));
    WSF_ASSIGN_OR_RETURN(impl->conn_chan_db, txn.openDb("pconnchan", MDB_DUPSORT));
    WSF_ASSIGN_OR_RETURN(impl->inst_db, txn.openDb("pinst", 0));
    WSF_ASSIGN_OR_RETURN(impl->inst_conn_db, txn.openDb("pinstconn", MDB_DUPSORT));
    WSF_ASSIGN_OR_RETURN(impl->addr_db, txn.openDb("paddr", MDB_DUPSORT));
    WSF_ASSIGN_OR_RETURN(impl->remote_user_db, txn.openDb("pruser", MDB_DUPSORT));
    WSF_RETURN_IF_ERROR(txn.commit());
  }
  WSF_RETURN_IF_ERROR(impl->putInstance(now_mono_ms));
  return std::unique_ptr<PresenceStore>(new PresenceStore(std::move(impl)));
}

PresenceStore::PresenceStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PresenceStore::~PresenceStore() = default;

const std::string& PresenceStore::instanceId() const {
  return impl_->instance_id;
}
size_t PresenceStore::pendingOps() const {
  return impl_->pending.size();
}

void PresenceStore::addConnection(const PresenceConnection& conn) {
  const size_t before = impl_->pending.size();
  impl_->push({Impl::Kind::kAdd, conn, {}});
  if (impl_->pending.size() > before) impl_->adjustCounts(impl_->pending.back().conn, 1);
}

void PresenceStore::removeConnection(const std::string& conn_id) {
  PresenceConnection c;
  c.conn_id = conn_id;
  impl_->push({Impl::Kind::kRemove, std::move(c), {}});
}

void PresenceStore::removeConnection(const PresenceConnection& conn) {
  removeConnection(conn.conn_id);
  PresenceConnection counted = conn;
  if (!counted.address.empty() && !impl_->fits(counted.address)) counted.address.clear();
  impl_->adjustCounts(counted, -1);
}

void PresenceStore::joinChannel(const std::string& conn_id, const std::string& tenant,
                                const std::string& channel, const std::string& user) {
  PresenceConnection c;
  c.conn_id = conn_id;
  c.tenant = tenant;
  c.user = user;
  impl_->push({Impl::Kind::kJoin, std::move(c), channel});
}

void PresenceStore::leaveChannel(const std::string& conn_id, const std::string& tenant,
                                 const std::string& channel, const std::string& user) {
  PresenceConnection c;
  c.conn_id = conn_id;
  c.tenant = tenant;
  c.user = user;
  impl_->push({Impl::Kind::kLeave, std::move(c), channel});
}

Status PresenceStore::flush() {
  if (impl_->pending.empty()) return Status::ok();
  // Whatever happens the batch is consumed: retrying a batch that failed (map full, or a
  // bug) would fail the same way on every timer tick. What it lost is repaired by a
  // resync() from the worker's live state, which the caller is told to run.
  std::vector<Impl::Op> batch = std::exchange(impl_->pending, {});
  // Committed or lost, the batch is no longer pending: the counts read it from the
  // store now (or, when lost, miss it until the resync).
  impl_->clearPending();
  Status s = [&]() -> Status {
    WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
    for (const Impl::Op& op : batch) WSF_RETURN_IF_ERROR(impl_->apply(txn, op));
    return txn.commit();
  }();
  if (!s.isOk()) impl_->needs_resync = true;
  return s;
}

bool PresenceStore::needsResync() const {
  return impl_->needs_resync;
}

Status PresenceStore::resync(const std::vector<LiveConnection>& live, int64_t now_mono_ms) {
  impl_->clearPending();
  Status s = [&]() -> Status {
    WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
    WSF_RETURN_IF_ERROR(toStatus(impl_->sweepInstance(txn, impl_->instance_id)));
    WSF_RETURN_IF_ERROR(txn.put(impl_->inst_db, impl_->instance_id,
                                encodeInstance({impl_->boot_id, impl_->pid, now_mono_ms})));
    for (const LiveConnection& l : live) {
      WSF_RETURN_IF_ERROR(impl_->applyAdd(txn, l.conn));
      for (const std::string& channel : l.channels) {
        WSF_RETURN_IF_ERROR(impl_->applyJoin(txn, {Impl::Kind::kJoin, l.conn, channel}));
      }
    }
    return txn.commit();
  }();
  impl_->needs_resync = !s.isOk();
  return s;
}

Result<std::vector<PresenceMember>> PresenceStore::channelMembers(const std::string& tenant,
                                                                  const std::string& channel) {
  WSF_RETURN_IF_ERROR(flush());
  std::vector<PresenceMember> members;
  const std::string key = join2(tenant, channel);
  if (!impl_->fits(key)) return members;
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginRead(*impl_->env));
  WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, impl_->chan_db));
  // Duplicates are sorted, and "user\0" sorts before any longer user with that prefix,
  // so each user's connections are adjacent.
  for (bool ok = cur.seekKey(key); ok; ok = cur.nextDup()) {
    std::string_view v = cur.value();
    std::string_view user = v.substr(0, v.find('\0'));
    if (members.empty() || members.back().user != user) {
      members.push_back({std::string(user), 0});
    }
    ++members.back().connections;
  }
  return members;
}

Result<uint64_t> PresenceStore::userConnectionsInChannel(const std::string& tenant,
                                                        const std::string& channel,
                                                        const std::string& user) {
  WSF_RETURN_IF_ERROR(flush());
  const std::string key = join2(tenant, channel);
  if (!impl_->fits(key)) return uint64_t{0};
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginRead(*impl_->env));
  WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, impl_->chan_db));
  // Members are "user\0conn_id", sorted: the user's are adjacent, from "user\0" on.
  std::string prefix = user;
  prefix.push_back('\0');
  uint64_t n = 0;
  for (bool ok = cur.seekDup(key, prefix); ok && cur.value().substr(0, prefix.size()) == prefix;
       ok = cur.nextDup()) {
    ++n;
  }
  return n;
}

Result<std::vector<PresenceConnection>> PresenceStore::userConnections(const std::string& tenant,
                                                                       const std::string& user) {
  WSF_RETURN_IF_ERROR(flush());
  std::vector<PresenceConnection> out;
  const std::string key = join2(tenant, user);
  if (!impl_->fits(key)) return out;
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginRead(*impl_->env));
  std::vector<std::string> conn_ids;
  for (MDB_dbi db : {impl_->user_db, impl_->remote_user_db}) {
    WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, db));
    for (bool ok = cur.seekKey(key); ok; ok = cur.nextDup()) conn_ids.emplace_back(cur.value());
  }
  for (const std::string& id : conn_ids) {
    auto raw = txn.get(impl_->conn_db, id);
    if (!raw) continue;
    if (auto rec = decodeConn(id, *raw)) out.push_back(std::move(rec->conn));
  }
  return out;
}

Result<uint64_t> PresenceStore::connectionsFromAddress(const std::string& address) {
  if (address.empty()) return uint64_t{0};
  return impl_->count(impl_->addr_db, address, impl_->address_delta);
}

Result<uint64_t> PresenceStore::connectionsOfUser(const std::string& tenant,
                                                  const std::string& user) {
  return impl_->count(impl_->user_db, join2(tenant, user), impl_->user_delta);
}

Result<bool> PresenceStore::heartbeat(int64_t now_mono_ms) {
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
  const bool was_swept = !txn.get(impl_->inst_db, impl_->instance_id).has_value();
  WSF_RETURN_IF_ERROR(txn.put(impl_->inst_db, impl_->instance_id,
                              encodeInstance({impl_->boot_id, impl_->pid, now_mono_ms})));
  WSF_RETURN_IF_ERROR(txn.commit());
  return was_swept;
}

Result<SweepStats> PresenceStore::sweep(int64_t now_mono_ms, int64_t ttl_ms) {
  SweepStats stats;
  std::vector<std::string> candidates;
  {
    // Every worker sweeps on a timer; most sweeps find nothing and should not queue
    // behind the write lock.
    WSF_ASSIGN_OR_RETURN(LmdbTxn read, LmdbTxn::beginRead(*impl_->env));
    WSF_ASSIGN_OR_RETURN(candidates, impl_->staleCandidates(read, now_mono_ms, ttl_ms));
  }
  if (candidates.empty()) return stats;

  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
  for (const std::string& id : candidates) {
    // Re-checked under the write lock: another worker may have swept it already, or the
    // instance may have heartbeated since the read.
    auto raw = txn.get(impl_->inst_db, id);
    if (!raw || !impl_->isStale(id, *raw, now_mono_ms, ttl_ms)) continue;
    WSF_ASSIGN_OR_RETURN(uint64_t removed, impl_->sweepInstance(txn, id, &stats.memberships));
    ++stats.instances_removed;
    if (!isRemoteInstance(id)) stats.local_instances.push_back(id);
    stats.connections_removed += removed;
  }
  WSF_RETURN_IF_ERROR(txn.commit());
  return stats;
}

bool isRemoteInstance(std::string_view instance_id) {
  return instance_id.substr(0, 2) == "r:";
}

Result<bool> PresenceStore::applyRemote(const std::string& instance,
                                        const std::vector<PresenceOp>& ops, int64_t now_mono_ms) {
  if (!isRemoteInstance(instance) || !validName(instance) || !impl_->fits(instance)) {
    return Status(Code::kBadRequest, "presence_bad_instance", "not a remote instance id");
  }
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
  const bool created = !txn.get(impl_->inst_db, instance).has_value();
  WSF_RETURN_IF_ERROR(txn.put(
      impl_->inst_db, instance,
      encodeInstance({std::string(kRemoteBoot) + impl_->boot_id, 0, now_mono_ms})));
  for (const PresenceOp& remote : ops) {
    Impl::Op op{Impl::kindOf(remote.kind), remote.conn, remote.channel};
    op.conn.address.clear();  // never counted by this host's caps
    const PresenceConnection& c = op.conn;
    // What another edge sends is checked like any input: a record that would break a key
    // is skipped, never written.
    bool ok = validName(c.conn_id) && validName(c.tenant) && validName(c.user) &&
              validName(op.channel) && impl_->fits(c.conn_id);
    if (op.kind == Impl::Kind::kAdd) ok = ok && impl_->fits(join2(c.tenant, c.user));
    if (op.kind == Impl::Kind::kJoin || op.kind == Impl::Kind::kLeave) {
      ok = ok && impl_->fits(join2(c.tenant, op.channel)) &&
           impl_->fits(join2(c.user, c.conn_id)) && impl_->fits(join3(c.tenant, op.channel, c.user));
    }
    if (!ok) continue;
    // An instance may change only its own connections: never this host's, nor another
    // edge's (connection ids are unique per edge, so a clash is a bug or an attack).
    if (auto existing = txn.get(impl_->conn_db, c.conn_id)) {
      auto rec = decodeConn(c.conn_id, *existing);
      if (!rec || rec->instance != instance) continue;
    } else if (op.kind != Impl::Kind::kAdd) {
      continue;
    }
    if (op.kind == Impl::Kind::kAdd) {
      WSF_RETURN_IF_ERROR(impl_->applyAdd(txn, op.conn, instance));
    } else {
      WSF_RETURN_IF_ERROR(impl_->apply(txn, op));
    }
  }
  WSF_RETURN_IF_ERROR(txn.commit());
  return created;
}

Result<std::vector<std::string>> PresenceStore::instanceConnections(const std::string& instance) {
  std::vector<std::string> out;
  if (!impl_->fits(instance)) return out;
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginRead(*impl_->env));
  WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, impl_->inst_conn_db));
  for (bool ok = cur.seekKey(instance); ok; ok = cur.nextDup()) out.emplace_back(cur.value());
  return out;
}

Result<SweepStats> PresenceStore::removeInstance(const std::string& instance) {
  SweepStats stats;
  if (!isRemoteInstance(instance) || !impl_->fits(instance)) return stats;
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
  if (!txn.get(impl_->inst_db, instance)) return stats;
  WSF_ASSIGN_OR_RETURN(uint64_t removed,
                       impl_->sweepInstance(txn, instance, &stats.memberships));
  WSF_RETURN_IF_ERROR(txn.commit());
  stats.instances_removed = 1;
  stats.connections_removed = removed;
  return stats;
}

}  // namespace wsfleet
