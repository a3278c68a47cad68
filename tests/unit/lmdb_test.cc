#include "common/lmdb.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

LmdbEnv openEnv(const std::string& dir, size_t map_size = 1u << 20) {
  LmdbOptions options;
  options.map_size_bytes = map_size;
  auto env = LmdbEnv::open(dir, options);
  EXPECT_TRUE(env.isOk()) << env.status().toString();
  return std::move(env).value();
}

MDB_dbi openDb(const LmdbEnv& env, const char* name, unsigned flags = 0) {
  auto txn = LmdbTxn::beginWrite(env);
  EXPECT_TRUE(txn.isOk());
  auto dbi = txn->openDb(name, flags);
  EXPECT_TRUE(dbi.isOk()) << dbi.status().toString();
  EXPECT_TRUE(txn->commit().isOk());
  return *dbi;
}

TEST(LmdbTest, OpenCreatesMissingDirectories) {
  TempDir tmp;
  const std::string dir = tmp.path() + "/a/b/c";
  LmdbEnv env = openEnv(dir);
  ASSERT_NE(env.get(), nullptr);
  EXPECT_TRUE(std::filesystem::exists(dir + "/data.mdb"));
  EXPECT_GE(env.mapSizeBytes(), 1u << 20);
  EXPECT_GT(env.usedBytes(), 0u);
  EXPECT_TRUE(env.sync().isOk());
}

TEST(LmdbTest, OpenFailsCleanlyOnAFile) {
  TempDir tmp;
  const std::string file = tmp.path() + "/not-a-dir";
  FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  auto env = LmdbEnv::open(file, LmdbOptions{});
  ASSERT_FALSE(env.isOk());
  EXPECT_EQ(env.status().code(), Code::kInternal);
}

TEST(LmdbTest, PutGetDel) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path());
  MDB_dbi dbi = openDb(env, "kv");
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    ASSERT_TRUE(txn->put(dbi, "alpha", std::string("one\0two", 7)).isOk());
    ASSERT_TRUE(txn->put(dbi, "beta", "2").isOk());
    ASSERT_TRUE(txn->commit().isOk());
    EXPECT_EQ(txn->get(), nullptr);
  }
  {
    auto txn = LmdbTxn::beginRead(env);
    ASSERT_TRUE(txn.isOk());
    auto v = txn->get(dbi, "alpha");
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, std::string_view("one\0two", 7));
    EXPECT_FALSE(txn->get(dbi, "gamma").has_value());
  }
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    auto deleted = txn->del(dbi, "alpha");
    ASSERT_TRUE(deleted.isOk());
    EXPECT_TRUE(*deleted);
    auto again = txn->del(dbi, "alpha");
    ASSERT_TRUE(again.isOk());
    EXPECT_FALSE(*again);
    ASSERT_TRUE(txn->commit().isOk());
  }
  auto txn = LmdbTxn::beginRead(env);
  ASSERT_TRUE(txn.isOk());
  EXPECT_FALSE(txn->get(dbi, "alpha").has_value());
  EXPECT_EQ(txn->get(dbi, "beta").value_or(""), "2");
}

TEST(LmdbTest, UncommittedTxnIsAbortedAtScopeEnd) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path());
  MDB_dbi dbi = openDb(env, "kv");
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    ASSERT_TRUE(txn->put(dbi, "k", "v").isOk());
    EXPECT_EQ(txn->get(dbi, "k").value_or(""), "v");  // visible inside its own txn
  }
  {
    auto txn = LmdbTxn::beginRead(env);
    ASSERT_TRUE(txn.isOk());
    EXPECT_FALSE(txn->get(dbi, "k").has_value());
  }
  // The write lock was released by the destructor: another write goes through.
  auto txn = LmdbTxn::beginWrite(env);
  ASSERT_TRUE(txn.isOk());
  ASSERT_TRUE(txn->put(dbi, "k", "w").isOk());
  txn->abort();
  EXPECT_EQ(txn->get(), nullptr);
  auto read = LmdbTxn::beginRead(env);
  ASSERT_TRUE(read.isOk());
  EXPECT_FALSE(read->get(dbi, "k").has_value());
}

TEST(LmdbTest, MovedTxnKeepsOneOwner) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path());
  MDB_dbi dbi = openDb(env, "kv");
  auto first = LmdbTxn::beginWrite(env);
  ASSERT_TRUE(first.isOk());
  LmdbTxn moved = std::move(first).value();
  ASSERT_TRUE(moved.put(dbi, "k", "v").isOk());
  LmdbTxn target;
  target = std::move(moved);
  EXPECT_EQ(moved.get(), nullptr);  // NOLINT(bugprone-use-after-move): checking the contract
  ASSERT_TRUE(target.commit().isOk());
  auto read = LmdbTxn::beginRead(env);
  ASSERT_TRUE(read.isOk());
  EXPECT_EQ(read->get(dbi, "k").value_or(""), "v");
}

TEST(LmdbTest, MapFullIsUnavailableAndEnvStaysUsable) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path(), 64u << 10);
  MDB_dbi dbi = openDb(env, "kv");
  const std::string big(2000, 'x');
  Status failure;
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    for (int i = 0; i < 1000 && failure.isOk(); ++i) {
      failure = txn->put(dbi, "key" + std::to_string(i), big);
    }
  }
  ASSERT_FALSE(failure.isOk());
  EXPECT_EQ(failure.code(), Code::kUnavailable);
  EXPECT_STREQ(failure.reason(), "lmdb_map_full");

  auto txn = LmdbTxn::beginWrite(env);
  ASSERT_TRUE(txn.isOk());
  ASSERT_TRUE(txn->put(dbi, "small", "ok").isOk());
  ASSERT_TRUE(txn->commit().isOk());
  auto read = LmdbTxn::beginRead(env);
  ASSERT_TRUE(read.isOk());
  EXPECT_EQ(read->get(dbi, "small").value_or(""), "ok");
  EXPECT_FALSE(read->get(dbi, "key0").has_value());
}

TEST(LmdbTest, FailedCommitIsReportedOnce) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path(), 64u << 10);
  MDB_dbi dbi = openDb(env, "kv");
  auto txn = LmdbTxn::beginWrite(env);
  ASSERT_TRUE(txn.isOk());
  Status put_status;
  for (int i = 0; i < 1000 && put_status.isOk(); ++i) {
    put_status = txn->put(dbi, "key" + std::to_string(i), std::string(2000, 'y'));
  }
  ASSERT_FALSE(put_status.isOk());
  // The txn is now in an error state; committing it fails and frees it (no double free
  // when the object is destroyed afterwards).
  Status commit_status = txn->commit();
  EXPECT_FALSE(commit_status.isOk());
  EXPECT_EQ(commit_status.code(), Code::kInternal);
  EXPECT_EQ(txn->get(), nullptr);
}

TEST(LmdbTest, OpenDbInReadTxnDoesNotCreate) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path());
  auto txn = LmdbTxn::beginRead(env);
  ASSERT_TRUE(txn.isOk());
  auto dbi = txn->openDb("missing", 0);
  ASSERT_FALSE(dbi.isOk());
  EXPECT_EQ(dbi.status().code(), Code::kInternal);
  EXPECT_STREQ(dbi.status().reason(), "lmdb_error");
}

// Runs `body` in a forked child that opens its own environment on `dir`; returns the
// child's exit status (the LMDB handles of the parent are never used in the child).
template <class Body>
int runInChild(const std::string& dir, Body body) {
  pid_t child = fork();
  if (child < 0) return -1;
  if (child == 0) {
    LmdbOptions options;
    options.map_size_bytes = 1u << 20;
    auto env = LmdbEnv::open(dir, options);
    if (!env.isOk()) _exit(100);
    _exit(body(*env));  // no destructors: whatever the child holds stays held
  }
  int wstatus = 0;
  if (waitpid(child, &wstatus, 0) != child || !WIFEXITED(wstatus)) return -1;
  return WEXITSTATUS(wstatus);
}

TEST(LmdbTest, ReaderCheckClearsSlotsOfDeadProcesses) {
  TempDir tmp;
  // Kept open throughout: the first process to open an environment resets the reader
  // table, so stale slots only exist while some other process holds it open.
  LmdbEnv env = openEnv(tmp.path());
  openDb(env, "kv");

  // A worker dies while holding a read transaction.
  ASSERT_EQ(runInChild(tmp.path(),
                       [](LmdbEnv& child_env) {
                         MDB_txn* txn = nullptr;
                         return mdb_txn_begin(child_env.get(), nullptr, MDB_RDONLY, &txn) ==
                                        MDB_SUCCESS
                                    ? 0
                                    : 1;
                       }),
            0);
  // Its replacement clears the slot when it opens, and the next one finds nothing.
  EXPECT_EQ(runInChild(tmp.path(), [](LmdbEnv& e) { return e.staleReadersCleared(); }), 1);
  EXPECT_EQ(runInChild(tmp.path(), [](LmdbEnv& e) { return e.staleReadersCleared(); }), 0);
}

TEST(LmdbTest, CursorIteration) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path());
  MDB_dbi dbi = openDb(env, "kv");
  MDB_dbi dups = openDb(env, "dups", MDB_DUPSORT);
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    for (const char* k : {"b1", "a1", "b2", "c1", "b3"}) {
      ASSERT_TRUE(txn->put(dbi, k, std::string("v") + k).isOk());
    }
    for (const char* v : {"z", "x", "y", "x"}) {
      ASSERT_TRUE(txn->put(dups, "k", v).isOk());
    }
    ASSERT_TRUE(txn->put(dups, "l", "w").isOk());
    ASSERT_TRUE(txn->commit().isOk());
  }
  auto txn = LmdbTxn::beginRead(env);
  ASSERT_TRUE(txn.isOk());
  {
    auto cur = LmdbCursor::open(*txn, dbi);
    ASSERT_TRUE(cur.isOk());
    std::vector<std::string> keys;
    for (bool ok = cur->first(); ok; ok = cur->next()) keys.emplace_back(cur->key());
    EXPECT_EQ(keys, (std::vector<std::string>{"a1", "b1", "b2", "b3", "c1"}));

    ASSERT_TRUE(cur->seek("b"));
    EXPECT_EQ(cur->key(), "b1");
    EXPECT_EQ(cur->value(), "vb1");
    ASSERT_TRUE(cur->seek("b25"));
    EXPECT_EQ(cur->key(), "b3");
    ASSERT_TRUE(cur->prev());
    EXPECT_EQ(cur->key(), "b2");
    EXPECT_FALSE(cur->seek("d"));
    EXPECT_TRUE(cur->key().empty());
    EXPECT_FALSE(cur->seekKey("b"));
    ASSERT_TRUE(cur->seekKey("c1"));
    EXPECT_EQ(cur->value(), "vc1");
    EXPECT_FALSE(cur->next());
    ASSERT_TRUE(cur->last());
    EXPECT_EQ(cur->key(), "c1");
  }
  {
    auto cur = LmdbCursor::open(*txn, dups);
    ASSERT_TRUE(cur.isOk());
    std::vector<std::string> values;
    for (bool ok = cur->seekKey("k"); ok; ok = cur->nextDup()) values.emplace_back(cur->value());
    // Sorted, and a repeated duplicate is stored once.
    EXPECT_EQ(values, (std::vector<std::string>{"x", "y", "z"}));
  }
}

TEST(LmdbTest, CursorDeleteWhileIteratingAndDelDup) {
  TempDir tmp;
  LmdbEnv env = openEnv(tmp.path());
  MDB_dbi dbi = openDb(env, "kv");
  MDB_dbi dups = openDb(env, "dups", MDB_DUPSORT);
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    for (int i = 0; i < 500; ++i) {
      char key[16];
      std::snprintf(key, sizeof key, "k%04d", i);
      ASSERT_TRUE(txn->put(dbi, key, std::string(100, 'v')).isOk());
    }
    for (const char* v : {"a", "b", "c"}) ASSERT_TRUE(txn->put(dups, "k", v).isOk());
    ASSERT_TRUE(txn->commit().isOk());
  }
  {
    auto txn = LmdbTxn::beginWrite(env);
    ASSERT_TRUE(txn.isOk());
    {
      // Delete every even key; after a delete the next step lands on the following key.
      auto cur = LmdbCursor::open(*txn, dbi);
      ASSERT_TRUE(cur.isOk());
      int index = 0;
      for (bool ok = cur->first(); ok; ok = cur->next(), ++index) {
        if (index % 2 == 0) {
          ASSERT_TRUE(cur->delCurrent().isOk());
        }
      }
      EXPECT_EQ(index, 500);
    }
    auto removed = txn->delDup(dups, "k", "b");
    ASSERT_TRUE(removed.isOk());
    EXPECT_TRUE(*removed);
    auto missing = txn->delDup(dups, "k", "q");
    ASSERT_TRUE(missing.isOk());
    EXPECT_FALSE(*missing);
    ASSERT_TRUE(txn->commit().isOk());
  }
  auto txn = LmdbTxn::beginRead(env);
  ASSERT_TRUE(txn.isOk());
  EXPECT_FALSE(txn->get(dbi, "k0000").has_value());
  EXPECT_TRUE(txn->get(dbi, "k0001").has_value());
  EXPECT_FALSE(txn->get(dbi, "k0498").has_value());
  EXPECT_TRUE(txn->get(dbi, "k0499").has_value());
  auto cur = LmdbCursor::open(*txn, dbi);
  ASSERT_TRUE(cur.isOk());
  int count = 0;
  for (bool ok = cur->first(); ok; ok = cur->next()) ++count;
  EXPECT_EQ(count, 250);
  auto dcur = LmdbCursor::open(*txn, dups);
  ASSERT_TRUE(dcur.isOk());
  std::vector<std::string> values;
  for (bool ok = dcur->seekKey("k"); ok; ok = dcur->nextDup()) values.emplace_back(dcur->value());
  EXPECT_EQ(values, (std::vector<std::string>{"a", "c"}));
}

}  // namespace
}  // namespace wsfleet
