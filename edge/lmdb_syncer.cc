#include "edge/lmdb_syncer.h"

#include "common/log.h"

namespace wsfleet {

LmdbSyncer::LmdbSyncer(const LmdbEnv& env, std::chrono::milliseconds interval)
    : env_(env), interval_(interval), thread_([this] { run(); }) {}

LmdbSyncer::~LmdbSyncer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

void LmdbSyncer::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    const bool stopping = wake_.wait_for(lock, interval_, [this] { return stop_; });
    lock.unlock();
    Status s = env_.sync();
    if (!s.isOk()) logWarn("lmdb_sync_failed", {{"error", s.toString()}});
    if (stopping) return;
    lock.lock();
  }
}

}  // namespace wsfleet
