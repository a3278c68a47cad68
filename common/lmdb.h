#pragma once
// RAII over LMDB. Every MDB_* return code is translated here, once, into Status:
// MDB_MAP_FULL -> Code::kUnavailable "lmdb_map_full"; MDB_NOTFOUND is not an error for
// get() (it returns std::nullopt); anything else -> Code::kInternal "lmdb_error" with
// mdb_strerror text.

#include <lmdb.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace wsfleet {

struct LmdbOptions {
  size_t map_size_bytes = 256ull << 20;
  unsigned max_dbs = 16;
  unsigned max_readers = 256;
  // When true, commits do not fsync (MDB_NOSYNC): a committed write survives a crash of
  // the process but not of the machine until the next sync().
  bool no_sync = true;
};

class LmdbEnv {
 public:
  // Creates `dir` if missing. Opens with MDB_NOTLS so read transactions are not tied to
  // threads. Runs mdb_reader_check() once and reports the stale slots it cleared.
  static Result<LmdbEnv> open(const std::string& dir, const LmdbOptions& options);
  LmdbEnv() = default;
  ~LmdbEnv();
  LmdbEnv(LmdbEnv&& o) noexcept;
  LmdbEnv& operator=(LmdbEnv&& o) noexcept;
  LmdbEnv(const LmdbEnv&) = delete;
  LmdbEnv& operator=(const LmdbEnv&) = delete;

  MDB_env* get() const { return env_; }
  int staleReadersCleared() const { return stale_readers_cleared_; }
  Status sync() const;  // mdb_env_sync(force); safe from any thread
  size_t mapSizeBytes() const;
  size_t usedBytes() const;  // last page number * page size

 private:
  MDB_env* env_ = nullptr;
  int stale_readers_cleared_ = 0;
};

class LmdbTxn {
 public:
  static Result<LmdbTxn> beginRead(const LmdbEnv& env);
  static Result<LmdbTxn> beginWrite(const LmdbEnv& env);
  LmdbTxn() = default;
  ~LmdbTxn();  // aborts unless committed
  LmdbTxn(LmdbTxn&& o) noexcept;
  LmdbTxn& operator=(LmdbTxn&& o) noexcept;
  LmdbTxn(const LmdbTxn&) = delete;
  LmdbTxn& operator=(const LmdbTxn&) = delete;

  Status commit();
  void abort();
  MDB_txn* get() const { return txn_; }

  // Opens (creating in write transactions) a named database. flags: MDB_DUPSORT etc.
  Result<MDB_dbi> openDb(const char* name, unsigned flags);

  std::optional<std::string_view> get(MDB_dbi dbi, std::string_view key) const;  // view valid until txn ends
  Status put(MDB_dbi dbi, std::string_view key, std::string_view value, unsigned flags = 0);
  // Returns true when something was deleted. With value: deletes that duplicate only.
  Result<bool> del(MDB_dbi dbi, std::string_view key);
  Result<bool> delDup(MDB_dbi dbi, std::string_view key, std::string_view value);

 private:
  MDB_txn* txn_ = nullptr;
  bool writable_ = false;  // openDb() creates missing databases only in write transactions
};

class LmdbCursor {
 public:
  static Result<LmdbCursor> open(const LmdbTxn& txn, MDB_dbi dbi);
  LmdbCursor() = default;
  ~LmdbCursor();
  LmdbCursor(LmdbCursor&& o) noexcept;
  LmdbCursor& operator=(LmdbCursor&& o) noexcept;
  LmdbCursor(const LmdbCursor&) = delete;
  LmdbCursor& operator=(const LmdbCursor&) = delete;

  // Each returns false at the end / when nothing matches; key/value views valid until the
  // cursor moves or the txn ends.
  bool seek(std::string_view key_prefix_or_greater);          // MDB_SET_RANGE
  bool first();
  bool last();
  bool next();        // MDB_NEXT
  bool prev();        // MDB_PREV
  bool nextDup();     // MDB_NEXT_DUP
  bool seekKey(std::string_view key);  // MDB_SET_KEY, exact
  // The first duplicate of `key` at or after `value` (MDB_GET_BOTH_RANGE, DUPSORT only).
  bool seekDup(std::string_view key, std::string_view value_prefix_or_greater);
  // Duplicates of the current key (MDB_DUPSORT databases; the cursor must be positioned).
  // Constant time: LMDB keeps the count, so counting does not walk the values.
  Result<uint64_t> dupCount() const;
  Status delCurrent();
  std::string_view key() const { return key_; }
  std::string_view value() const { return value_; }
  MDB_cursor* get() const { return cur_; }

 private:
  bool op(MDB_cursor_op op, MDB_val* k = nullptr);
  MDB_cursor* cur_ = nullptr;
  std::string_view key_, value_;
};

}  // namespace wsfleet
