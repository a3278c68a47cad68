#include "edge/history_store.h"

#include <cassert>
#include <limits>
#include <optional>
#include <string_view>
#include <utility>

#include "common/random.h"

namespace wsfleet {
namespace {

// Layout ("\0" separates names, which never contain NUL; integers are big-endian so keys
// sort numerically):
//   hmeta   tenant\0channel                    -> Meta
//   hmsg    tenant\0channel\0 offset(8)        -> ts_ms(8) frame
//   hidem   tenant\0channel\0 key              -> offset(8) ts_ms(8)
//   hidemt  tenant\0channel\0 ts_ms(8) key     -> (empty)   expiry order for hidem
// Offsets inside a channel are dense: first..last are all stored unless trimmed.

constexpr uint8_t kMetaVersion = 1;
constexpr size_t kEpochBytes = 16;
// Deletions per trimExpired() call and per append(); keeps any single write transaction
// (and so the time other workers wait for the write lock) short.
constexpr size_t kTrimBudgetPerCall = 4096;
constexpr size_t kIdemTrimPerAppend = 64;

void putBe64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t getBe64(std::string_view in) {
  assert(in.size() >= 8);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// Signed times sort correctly as unsigned once the sign bit is flipped.
uint64_t orderedTime(int64_t ts) {
  return static_cast<uint64_t>(ts) ^ (uint64_t{1} << 63);
}
int64_t fromOrderedTime(uint64_t v) {
  return static_cast<int64_t>(v ^ (uint64_t{1} << 63));
}

struct Meta {
  std::string epoch;
  uint64_t last = 0;
  uint64_t first = 1;  // first offset still stored; first > last when none is
};

std::string encodeMeta(const Meta& m) {
  std::string out;
  out.push_back(static_cast<char>(kMetaVersion));
  putBe64(&out, m.last);
  putBe64(&out, m.first);
  out.append(m.epoch);
  return out;
}

std::optional<Meta> decodeMeta(std::string_view in) {
  if (in.size() < 17 || static_cast<uint8_t>(in[0]) != kMetaVersion) return std::nullopt;
  Meta m;
  m.last = getBe64(in.substr(1));
  m.first = getBe64(in.substr(9));
  m.epoch = std::string(in.substr(17));
  if (m.epoch.empty()) return std::nullopt;
  return m;
}

bool validName(std::string_view s) {
  return s.find('\0') == std::string_view::npos;
}

// Keys of one channel.
struct ChannelKeys {
  std::string meta;    // tenant\0channel
  std::string prefix;  // tenant\0channel\0

  ChannelKeys(std::string_view tenant, std::string_view channel) {
    meta.append(tenant).push_back('\0');
    meta.append(channel);
    prefix = meta + '\0';
  }
  std::string msg(uint64_t offset) const {
    std::string k = prefix;
    putBe64(&k, offset);
    return k;
  }
  std::string idem(std::string_view key) const { return prefix + std::string(key); }
  std::string idemTime(int64_t ts, std::string_view key) const {
    std::string k = prefix;
    putBe64(&k, orderedTime(ts));
    k.append(key);
    return k;
  }
};

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

}  // namespace

struct HistoryStore::Impl {
  LmdbEnv* env = nullptr;
  size_t max_key = 511;
  MDB_dbi meta_db = 0, msg_db = 0, idem_db = 0, idem_time_db = 0;
  // The epoch of every channel that has no meta yet: made once per store, so answering
  // a subscribe to a never-published channel writes nothing (clients cannot fill the map
  // by subscribing to made-up names), and a wiped store still shows a new epoch.
  std::string store_epoch;
  std::string trim_resume_key;  // hmeta key where the next trimExpired() starts

  Status checkNames(const std::string& tenant, const std::string& channel,
                    const std::string& idem_key) const {
    const bool ok = validName(tenant) && validName(channel) && validName(idem_key) &&
                    // The longest key is hidemt: prefix, 8 bytes, idempotency key.
                    tenant.size() + channel.size() + 2 + 8 + idem_key.size() <= max_key;
    // Upstream validation makes this unreachable; refuse rather than corrupt keys.
    assert(ok);
    if (!ok) return Status(Code::kBadRequest, "history_key_invalid", "channel key unusable");
    return Status::ok();
  }

  std::optional<Meta> loadMeta(const LmdbTxn& txn, const ChannelKeys& keys) const {
    auto raw = txn.get(meta_db, keys.meta);
    if (!raw) return std::nullopt;
    return decodeMeta(*raw);
  }

  // Loads the channel's meta, creating it when absent: with the store epoch (what
  // subscribers of the empty channel were told), or a fresh epoch when records without a
  // readable meta show that this channel's history was lost.
  Result<Meta> loadOrCreateMeta(LmdbTxn& txn, const ChannelKeys& keys) const {
    if (auto meta = loadMeta(txn, keys)) return *meta;
    Meta meta;
    meta.epoch = store_epoch;
    const bool unreadable = txn.get(meta_db, keys.meta).has_value();
    WSF_ASSIGN_OR_RETURN(bool leftovers, hasRecords(txn, msg_db, keys));
    if (unreadable || leftovers) {
      WSF_ASSIGN_OR_RETURN(meta.epoch, tryRandomHex(kEpochBytes));
    }
    // Lost history's leftovers must not be replayed, nor deduplicated against, under the
    // new epoch.
    for (MDB_dbi dbi : {msg_db, idem_db, idem_time_db}) {
      WSF_RETURN_IF_ERROR(dropChannel(txn, dbi, keys));
    }
    WSF_RETURN_IF_ERROR(txn.put(meta_db, keys.meta, encodeMeta(meta)));
    return meta;
  }

  static Result<bool> hasRecords(const LmdbTxn& txn, MDB_dbi dbi, const ChannelKeys& keys) {
    WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, dbi));
    return cur.seek(keys.prefix) && startsWith(cur.key(), keys.prefix);
  }

  // Deletes every record of the channel in `dbi` (keyed by keys.prefix).
  static Status dropChannel(LmdbTxn& txn, MDB_dbi dbi, const ChannelKeys& keys) {
    WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, dbi));
    for (bool ok = cur.seek(keys.prefix); ok && startsWith(cur.key(), keys.prefix);
         ok = cur.next()) {
      WSF_RETURN_IF_ERROR(cur.delCurrent());
    }
    return Status::ok();
  }

  // Deletes from the front of the channel until it fits `limits` at `now_ms`.
  Status trimMessages(LmdbTxn& txn, const ChannelKeys& keys, Meta* meta, int64_t now_ms,
                      const HistoryLimits& limits, size_t* budget) const {
    while (meta->first <= meta->last && *budget > 0) {
      const std::string key = keys.msg(meta->first);
      const bool over_size = meta->last - meta->first + 1 > limits.max_messages;
      if (!over_size) {
        if (limits.max_age_ms <= 0) break;
        auto raw = txn.get(msg_db, key);
        if (raw && raw->size() >= 8 &&
            static_cast<int64_t>(getBe64(*raw)) >= now_ms - limits.max_age_ms) {
          break;
        }
      }
      WSF_RETURN_IF_ERROR(toStatus(txn.del(msg_db, key)));
      ++meta->first;
      --*budget;
    }
    return Status::ok();
  }

  // Forgets idempotency keys remembered before `cutoff_ms`.
  Status trimIdem(LmdbTxn& txn, const ChannelKeys& keys, int64_t cutoff_ms, size_t* budget) const {
    std::vector<std::string> expired;  // hidemt keys
    {
      WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, idem_time_db));
      for (bool ok = cur.seek(keys.prefix);
           ok && expired.size() < *budget && startsWith(cur.key(), keys.prefix) &&
           cur.key().size() >= keys.prefix.size() + 8;
           ok = cur.next()) {
        const int64_t ts = fromOrderedTime(getBe64(cur.key().substr(keys.prefix.size())));
        if (ts >= cutoff_ms) break;
        expired.emplace_back(cur.key());
      }
    }
    for (const std::string& time_key : expired) {
      const std::string idem_key = keys.idem(time_key.substr(keys.prefix.size() + 8));
      WSF_RETURN_IF_ERROR(toStatus(txn.del(idem_time_db, time_key)));
      WSF_RETURN_IF_ERROR(toStatus(txn.del(idem_db, idem_key)));
      --*budget;
    }
    return Status::ok();
  }
};

Result<std::unique_ptr<HistoryStore>> HistoryStore::open(LmdbEnv& env) {
  assert(env.get() != nullptr);
  auto impl = std::make_unique<Impl>();
  impl->env = &env;
  impl->max_key = static_cast<size_t>(mdb_env_get_maxkeysize(env.get()));
  // Database handles are opened once, in a committed transaction, before any other
  // transaction of this process uses them.
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(env));
  WSF_ASSIGN_OR_RETURN(impl->meta_db, txn.openDb("hmeta", 0));
  WSF_ASSIGN_OR_RETURN(impl->msg_db, txn.openDb("hmsg", 0));
  WSF_ASSIGN_OR_RETURN(impl->idem_db, txn.openDb("hidem", 0));
  WSF_ASSIGN_OR_RETURN(impl->idem_time_db, txn.openDb("hidemt", 0));
  WSF_ASSIGN_OR_RETURN(MDB_dbi store_db, txn.openDb("hstore", 0));
  if (auto epoch = txn.get(store_db, "epoch")) {
    impl->store_epoch = std::string(*epoch);
  } else {
    WSF_ASSIGN_OR_RETURN(impl->store_epoch, tryRandomHex(kEpochBytes));
    WSF_RETURN_IF_ERROR(txn.put(store_db, "epoch", impl->store_epoch));
  }
  WSF_RETURN_IF_ERROR(txn.commit());
  return std::unique_ptr<HistoryStore>(new HistoryStore(std::move(impl)));
}

HistoryStore::HistoryStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HistoryStore::~HistoryStore() = default;

Result<StreamPosition> HistoryStore::position(const std::string& tenant,
                                              const std::string& channel) {
  WSF_RETURN_IF_ERROR(impl_->checkNames(tenant, channel, ""));
  const ChannelKeys keys(tenant, channel);
  // Read-only: a channel nothing was published to yet is at the store epoch, offset 0.
  WSF_ASSIGN_OR_RETURN(LmdbTxn read, LmdbTxn::beginRead(*impl_->env));
  if (auto meta = impl_->loadMeta(read, keys)) return StreamPosition{meta->epoch, meta->last};
  return StreamPosition{impl_->store_epoch, 0};
}

Result<AppendResult> HistoryStore::append(const std::string& tenant, const std::string& channel,
                                          const std::string& idempotency_key, int64_t now_ms,
                                          const HistoryLimits& limits,
                                          const FrameBuilder& make_frame) {
  WSF_RETURN_IF_ERROR(impl_->checkNames(tenant, channel, idempotency_key));
  const ChannelKeys keys(tenant, channel);
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
  WSF_ASSIGN_OR_RETURN(Meta meta, impl_->loadOrCreateMeta(txn, keys));

  const std::string idem_key = idempotency_key.empty() ? "" : keys.idem(idempotency_key);
  if (!idem_key.empty()) {
    if (auto raw = txn.get(impl_->idem_db, idem_key); raw && raw->size() >= 16) {
      const uint64_t offset = getBe64(*raw);
      const int64_t seen_at = static_cast<int64_t>(getBe64(raw->substr(8)));
      if (now_ms - seen_at < limits.dedup_window_ms) {
        AppendResult dup;
        dup.position = {meta.epoch, offset};
        dup.duplicate = true;
        // Empty when the original was already trimmed: it was delivered then, and the
        // caller needs only the offset for its reply.
        if (auto stored = txn.get(impl_->msg_db, keys.msg(offset)); stored && stored->size() >= 8) {
          dup.frame = std::string(stored->substr(8));
        }
        WSF_RETURN_IF_ERROR(txn.commit());
        return dup;
      }
      // Remembered but expired and not yet trimmed: it is a new publish.
      WSF_RETURN_IF_ERROR(
          toStatus(txn.del(impl_->idem_time_db, keys.idemTime(seen_at, idempotency_key))));
    }
  }

  AppendResult result;
  const uint64_t offset = meta.last + 1;
  result.position = {meta.epoch, offset};
  result.frame = make_frame(meta.epoch, offset);
  std::string value;
  value.reserve(8 + result.frame.size());
  putBe64(&value, static_cast<uint64_t>(now_ms));
  value.append(result.frame);
  // MDB_APPEND is not used: another channel may sort after this one.
  WSF_RETURN_IF_ERROR(txn.put(impl_->msg_db, keys.msg(offset), value));
  meta.last = offset;
  if (!idem_key.empty()) {
    std::string idem_value;
    putBe64(&idem_value, offset);
    putBe64(&idem_value, static_cast<uint64_t>(now_ms));
    WSF_RETURN_IF_ERROR(txn.put(impl_->idem_db, idem_key, idem_value));
    WSF_RETURN_IF_ERROR(txn.put(impl_->idem_time_db, keys.idemTime(now_ms, idempotency_key), ""));
  }

  size_t budget = kTrimBudgetPerCall;
  WSF_RETURN_IF_ERROR(impl_->trimMessages(txn, keys, &meta, now_ms, limits, &budget));
  size_t idem_budget = kIdemTrimPerAppend;
  WSF_RETURN_IF_ERROR(impl_->trimIdem(txn, keys, now_ms - limits.dedup_window_ms, &idem_budget));
  WSF_RETURN_IF_ERROR(txn.put(impl_->meta_db, keys.meta, encodeMeta(meta)));
  WSF_RETURN_IF_ERROR(txn.commit());
  return result;
}

Result<ReplayResult> HistoryStore::replay(const std::string& tenant, const std::string& channel,
                                          const StreamPosition& since, int64_t now_ms,
                                          const HistoryLimits& limits) {
  ReplayResult result;
  WSF_RETURN_IF_ERROR(impl_->checkNames(tenant, channel, ""));
  const ChannelKeys keys(tenant, channel);
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginRead(*impl_->env));
  std::optional<Meta> meta = impl_->loadMeta(txn, keys);
  if (!meta) {
    // Nothing was published here yet: only the empty position is recovered.
    result.top = {impl_->store_epoch, 0};
    result.recovered = since.epoch == impl_->store_epoch && since.offset == 0;
    return result;
  }
  result.top = {meta->epoch, meta->last};
  if (since.epoch != meta->epoch || since.offset > meta->last) return result;
  if (since.offset == meta->last) {
    result.recovered = true;
    return result;
  }
  // Size trimming may lag (a lowered limit is applied in bounded steps), so retention is
  // judged against the limits, not only against what is still stored.
  uint64_t first = meta->first;
  if (meta->last >= first && meta->last - first + 1 > limits.max_messages) {
    first = meta->last - limits.max_messages + 1;
  }
  if (since.offset + 1 < first) return result;

  const bool age_limited = limits.max_age_ms > 0;
  const int64_t cutoff = now_ms - limits.max_age_ms;
  uint64_t expected = since.offset + 1;
  WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, impl_->msg_db));
  for (bool ok = cur.seek(keys.msg(expected)); ok && expected <= meta->last; ok = cur.next()) {
    std::string_view key = cur.key();
    std::string_view value = cur.value();
    if (!startsWith(key, keys.prefix) || key.size() != keys.prefix.size() + 8 || value.size() < 8) {
      break;
    }
    StoredMessage msg;
    msg.offset = getBe64(key.substr(keys.prefix.size()));
    msg.ts_ms = static_cast<int64_t>(getBe64(value));
    // A hole, or a message past its age: the client would miss something.
    if (msg.offset != expected || (age_limited && msg.ts_ms < cutoff)) break;
    msg.frame = std::string(value.substr(8));
    result.messages.push_back(std::move(msg));
    ++expected;
  }
  if (expected != meta->last + 1) {
    result.messages.clear();
    return result;
  }
  result.recovered = true;
  return result;
}

Status HistoryStore::trimExpired(int64_t now_ms, const LimitsLookup& limits, size_t max_channels) {
  if (max_channels == 0) return Status::ok();
  WSF_ASSIGN_OR_RETURN(LmdbTxn txn, LmdbTxn::beginWrite(*impl_->env));
  std::vector<std::string> channels;  // hmeta keys
  bool reached_end = false;
  {
    WSF_ASSIGN_OR_RETURN(LmdbCursor cur, LmdbCursor::open(txn, impl_->meta_db));
    bool ok = impl_->trim_resume_key.empty() ? cur.first() : cur.seek(impl_->trim_resume_key);
    for (; ok && channels.size() < max_channels; ok = cur.next()) {
      channels.emplace_back(cur.key());
    }
    reached_end = !ok;
  }
  // Round robin over all channels across calls: resume just after the last one visited.
  impl_->trim_resume_key = reached_end || channels.empty() ? "" : channels.back() + '\0';

  size_t budget = kTrimBudgetPerCall;
  for (const std::string& meta_key : channels) {
    const size_t sep = meta_key.find('\0');
    if (sep == std::string::npos) continue;
    const std::string tenant = meta_key.substr(0, sep);
    const std::string channel = meta_key.substr(sep + 1);
    const ChannelKeys keys(tenant, channel);
    std::optional<Meta> meta = impl_->loadMeta(txn, keys);
    if (!meta) continue;
    const HistoryLimits channel_limits = limits(tenant, channel);
    const uint64_t first_before = meta->first;
    WSF_RETURN_IF_ERROR(impl_->trimMessages(txn, keys, &*meta, now_ms, channel_limits, &budget));
    if (meta->first != first_before) {
      WSF_RETURN_IF_ERROR(txn.put(impl_->meta_db, keys.meta, encodeMeta(*meta)));
    }
    WSF_RETURN_IF_ERROR(
        impl_->trimIdem(txn, keys, now_ms - channel_limits.dedup_window_ms, &budget));
    if (budget == 0) {
      // Out of budget inside this channel: continue with it next time.
      impl_->trim_resume_key = meta_key;
      break;
    }
  }
  return txn.commit();
}

}  // namespace wsfleet
