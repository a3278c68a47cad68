#include "common/lmdb.h"

#include <unistd.h>

#include <cassert>

#include <filesystem>
#include <system_error>
#include <utility>

namespace wsfleet {
namespace {

// The single place where an MDB_* code becomes a Status.
Status lmdbStatus(int rc, const char* what) {
  if (rc == MDB_SUCCESS) return Status::ok();
  if (rc == MDB_MAP_FULL) {
    return Status(Code::kUnavailable, "lmdb_map_full", std::string(what) + ": " + mdb_strerror(rc));
  }
  return Status(Code::kInternal, "lmdb_error", std::string(what) + ": " + mdb_strerror(rc));
}

MDB_val toVal(std::string_view s) {
  // LMDB never writes through mv_data for keys and input values.
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}

std::string_view toView(const MDB_val& v) {
  return std::string_view(static_cast<const char*>(v.mv_data), v.mv_size);
}

}  // namespace

// ---------------------------------------------------------------------------------------
// LmdbEnv

Result<LmdbEnv> LmdbEnv::open(const std::string& dir, const LmdbOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status(Code::kInternal, "lmdb_mkdir", "cannot create " + dir + ": " + ec.message());
  }

  LmdbEnv env;
  int rc = mdb_env_create(&env.env_);
  if (rc != MDB_SUCCESS) {
    env.env_ = nullptr;
    return lmdbStatus(rc, "mdb_env_create");
  }
  // The map size must be a whole number of OS pages.
  const long page = sysconf(_SC_PAGESIZE);
  const size_t page_size = page > 0 ? static_cast<size_t>(page) : 4096;
  const size_t map_size = (options.map_size_bytes + page_size - 1) / page_size * page_size;
  rc = mdb_env_set_mapsize(env.env_, map_size);
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_env_set_mapsize");
  rc = mdb_env_set_maxdbs(env.env_, options.max_dbs);
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_env_set_maxdbs");
  rc = mdb_env_set_maxreaders(env.env_, options.max_readers);
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_env_set_maxreaders");

  // MDB_NOTLS: read transactions belong to the object, not to the thread, so an event
  // loop may keep several open and reader slots are released by the destructor.
  unsigned flags = MDB_NOTLS;
  if (options.no_sync) flags |= MDB_NOSYNC;
  rc = mdb_env_open(env.env_, dir.c_str(), flags, 0644);
  // On failure `env` still owns the handle and its destructor closes it, as LMDB requires.
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, ("mdb_env_open " + dir).c_str());

  // A worker killed while holding a read transaction leaves its reader slot behind, which
  // pins old pages and grows the file; clear those slots once at start.
  int dead = 0;
  rc = mdb_reader_check(env.env_, &dead);
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_reader_check");
  env.stale_readers_cleared_ = dead;
  return env;
}

LmdbEnv::~LmdbEnv() {
  if (env_ != nullptr) mdb_env_close(env_);
}

LmdbEnv::LmdbEnv(LmdbEnv&& o) noexcept
    : env_(std::exchange(o.env_, nullptr)), stale_readers_cleared_(o.stale_readers_cleared_) {}

LmdbEnv& LmdbEnv::operator=(LmdbEnv&& o) noexcept {
  if (this != &o) {
    if (env_ != nullptr) mdb_env_close(env_);
    env_ = std::exchange(o.env_, nullptr);
    stale_readers_cleared_ = o.stale_readers_cleared_;
  }
  return *this;
}

Status LmdbEnv::sync() const {
  assert(env_ != nullptr);
  return lmdbStatus(mdb_env_sync(env_, 1), "mdb_env_sync");
}

size_t LmdbEnv::mapSizeBytes() const {
  assert(env_ != nullptr);
  MDB_envinfo info;
  if (mdb_env_info(env_, &info) != MDB_SUCCESS) return 0;
  return info.me_mapsize;
}

size_t LmdbEnv::usedBytes() const {
  assert(env_ != nullptr);
  MDB_envinfo info;
  MDB_stat stat;
  if (mdb_env_info(env_, &info) != MDB_SUCCESS || mdb_env_stat(env_, &stat) != MDB_SUCCESS) {
    return 0;
  }
  // Page numbers start at 0.
  return (info.me_last_pgno + 1) * stat.ms_psize;
}

// ---------------------------------------------------------------------------------------
// LmdbTxn

Result<LmdbTxn> LmdbTxn::beginRead(const LmdbEnv& env) {
  assert(env.get() != nullptr);
  LmdbTxn txn;
  int rc = mdb_txn_begin(env.get(), nullptr, MDB_RDONLY, &txn.txn_);
  if (rc != MDB_SUCCESS) {
    txn.txn_ = nullptr;
    return lmdbStatus(rc, "mdb_txn_begin(read)");
  }
  return txn;
}

Result<LmdbTxn> LmdbTxn::beginWrite(const LmdbEnv& env) {
  assert(env.get() != nullptr);
  LmdbTxn txn;
  int rc = mdb_txn_begin(env.get(), nullptr, 0, &txn.txn_);
  if (rc != MDB_SUCCESS) {
    txn.txn_ = nullptr;
    return lmdbStatus(rc, "mdb_txn_begin(write)");
  }
  txn.writable_ = true;
  return txn;
}

LmdbTxn::~LmdbTxn() {
  abort();
}

LmdbTxn::LmdbTxn(LmdbTxn&& o) noexcept
    : txn_(std::exchange(o.txn_, nullptr)), writable_(o.writable_) {}

LmdbTxn& LmdbTxn::operator=(LmdbTxn&& o) noexcept {
  if (this != &o) {
    abort();
    txn_ = std::exchange(o.txn_, nullptr);
    writable_ = o.writable_;
  }
  return *this;
}

Status LmdbTxn::commit() {
  assert(txn_ != nullptr);
  // LMDB frees the transaction whether or not the commit succeeds, so the handle is
  // dropped before looking at the result; aborting it afterwards would be a double free.
  int rc = mdb_txn_commit(std::exchange(txn_, nullptr));
  return lmdbStatus(rc, "mdb_txn_commit");
}

void LmdbTxn::abort() {
  if (txn_ != nullptr) mdb_txn_abort(std::exchange(txn_, nullptr));
}

Result<MDB_dbi> LmdbTxn::openDb(const char* name, unsigned flags) {
  assert(txn_ != nullptr);
  if (writable_) flags |= MDB_CREATE;
  MDB_dbi dbi = 0;
  int rc = mdb_dbi_open(txn_, name, flags, &dbi);
  if (rc != MDB_SUCCESS) {
    return lmdbStatus(rc, (std::string("mdb_dbi_open ") + (name ? name : "(main)")).c_str());
  }
  return dbi;
}

std::optional<std::string_view> LmdbTxn::get(MDB_dbi dbi, std::string_view key) const {
  assert(txn_ != nullptr);
  MDB_val k = toVal(key);
  MDB_val v{0, nullptr};
  int rc = mdb_get(txn_, dbi, &k, &v);
  // Any failure other than MDB_NOTFOUND (a bad dbi, an oversized key) is a caller bug
  // that the signature cannot report; it reads as absent.
  assert(rc == MDB_SUCCESS || rc == MDB_NOTFOUND || rc == MDB_BAD_VALSIZE);
  if (rc != MDB_SUCCESS) return std::nullopt;
  return toView(v);
}

Status LmdbTxn::put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags) {
  assert(txn_ != nullptr);
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  return lmdbStatus(mdb_put(txn_, dbi, &k, &v, flags), "mdb_put");
}

Result<bool> LmdbTxn::del(MDB_dbi dbi, std::string_view key) {
  assert(txn_ != nullptr);
  MDB_val k = toVal(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_del");
  return true;
}

Result<bool> LmdbTxn::delDup(MDB_dbi dbi, std::string_view key, std::string_view value) {
  assert(txn_ != nullptr);
  MDB_val k = toVal(key);
  MDB_val v = toVal(value);
  int rc = mdb_del(txn_, dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_del(dup)");
  return true;
}

// ---------------------------------------------------------------------------------------
// LmdbCursor

Result<LmdbCursor> LmdbCursor::open(const LmdbTxn& txn, MDB_dbi dbi) {
  assert(txn.get() != nullptr);
  LmdbCursor cursor;
  int rc = mdb_cursor_open(txn.get(), dbi, &cursor.cur_);
  if (rc != MDB_SUCCESS) {
    cursor.cur_ = nullptr;
    return lmdbStatus(rc, "mdb_cursor_open");
  }
  return cursor;
}

LmdbCursor::~LmdbCursor() {
  if (cur_ != nullptr) mdb_cursor_close(cur_);
}

LmdbCursor::LmdbCursor(LmdbCursor&& o) noexcept
    : cur_(std::exchange(o.cur_, nullptr)), key_(o.key_), value_(o.value_) {}

LmdbCursor& LmdbCursor::operator=(LmdbCursor&& o) noexcept {
  if (this != &o) {
    if (cur_ != nullptr) mdb_cursor_close(cur_);
    cur_ = std::exchange(o.cur_, nullptr);
    key_ = o.key_;
    value_ = o.value_;
  }
  return *this;
}

bool LmdbCursor::op(MDB_cursor_op cursor_op, MDB_val* k) {
  assert(cur_ != nullptr);
  MDB_val key_val{0, nullptr};
  if (k != nullptr) key_val = *k;
  MDB_val data_val{0, nullptr};
  int rc = mdb_cursor_get(cur_, &key_val, &data_val, cursor_op);
  if (rc != MDB_SUCCESS) {
    key_ = {};
    value_ = {};
    return false;
  }
  key_ = toView(key_val);
  value_ = toView(data_val);
  return true;
}

bool LmdbCursor::seek(std::string_view key_prefix_or_greater) {
  MDB_val k = toVal(key_prefix_or_greater);
  return op(MDB_SET_RANGE, &k);
}

bool LmdbCursor::first() {
  return op(MDB_FIRST);
}
bool LmdbCursor::last() {
  return op(MDB_LAST);
}
bool LmdbCursor::next() {
  return op(MDB_NEXT);
}
bool LmdbCursor::prev() {
  return op(MDB_PREV);
}
bool LmdbCursor::nextDup() {
  return op(MDB_NEXT_DUP);
}

bool LmdbCursor::seekKey(std::string_view key) {
  MDB_val k = toVal(key);
  return op(MDB_SET_KEY, &k);
}

bool LmdbCursor::seekDup(std::string_view key, std::string_view value_prefix_or_greater) {
  assert(cur_ != nullptr);
  MDB_val k = toVal(key);
  MDB_val v = toVal(value_prefix_or_greater);
  int rc = mdb_cursor_get(cur_, &k, &v, MDB_GET_BOTH_RANGE);
  if (rc != MDB_SUCCESS) {
    key_ = {};
    value_ = {};
    return false;
  }
  key_ = toView(k);
  value_ = toView(v);
  return true;
}

Result<uint64_t> LmdbCursor::dupCount() const {
  assert(cur_ != nullptr);
  size_t count = 0;
  int rc = mdb_cursor_count(cur_, &count);
  if (rc != MDB_SUCCESS) return lmdbStatus(rc, "mdb_cursor_count");
  return static_cast<uint64_t>(count);
}

Status LmdbCursor::delCurrent() {
  assert(cur_ != nullptr);
  // The views point into the page being changed.
  key_ = {};
  value_ = {};
  return lmdbStatus(mdb_cursor_del(cur_, 0), "mdb_cursor_del");
}

}  // namespace wsfleet
