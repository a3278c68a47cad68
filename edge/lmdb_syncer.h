#pragma once
// Flushes an LMDB environment opened with MDB_NOSYNC every interval, on its own thread:
// an fsync can take tens of milliseconds on a busy disk, which the event loop must not
// wait for. mdb_env_sync needs no lock against concurrent transactions.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/lmdb.h"

namespace wsfleet {

class LmdbSyncer {
 public:
  // `env` must outlive the syncer.
  LmdbSyncer(const LmdbEnv& env, std::chrono::milliseconds interval);
  ~LmdbSyncer();  // stops the thread after a last sync
  LmdbSyncer(const LmdbSyncer&) = delete;
  LmdbSyncer& operator=(const LmdbSyncer&) = delete;

 private:
  void run();

  const LmdbEnv& env_;
  const std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace wsfleet
