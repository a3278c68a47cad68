#pragma once
// The supervising process of a multi-worker edge. It forks the workers (each runs its own
// EdgeServer), forwards SIGTERM/SIGINT/SIGHUP to them, restarts a worker that dies with
// exponential backoff, and exits when every worker has exited after a stop. It never opens
// LMDB, libwebsockets or a socket itself: everything a worker uses is created after fork.

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "edge/edge_server.h"

namespace wsfleet {

// A worker that could not start (bad TLS files, port taken, LMDB unusable) exits with
// this code: restarting cannot fix it, so the supervisor stops the host instead.
constexpr int kWorkerExitStartFailed = 3;

struct RestartPolicy {
  int64_t initial_backoff_ms = 100;
  int64_t max_backoff_ms = 10000;
  // A worker that ran this long before dying starts again from the initial backoff.
  int64_t stable_after_ms = 30000;
};

// The queued signal a worker sends its supervisor once it serves (a real-time signal:
// several workers becoming ready at once are each counted).
int workerReadySignal();

// Called by a worker once its listener is open. Supervised: tells the supervisor, which
// tells the service manager (READY=1) once every worker has. Alone (workers = 1): tells
// the service manager itself, with `status`.
void reportWorkerReady(const WorkerSlot& slot, std::string_view status);

// Delay before restarting a worker that has died `consecutive_failures` times in a row
// (1 for the first): initial * 2^(n-1), capped.
int64_t restartDelayMs(const RestartPolicy& policy, int consecutive_failures);

class Supervisor {
 public:
  // run_worker runs in the forked child and returns its exit code.
  using WorkerMain = std::function<int(WorkerSlot slot)>;
  Supervisor(int workers, RestartPolicy policy, WorkerMain worker_main);

  // Forks the workers and supervises them until they have all exited after a stop
  // signal. Returns the process exit code.
  int run();

 private:
  struct Worker {
    pid_t pid = 0;  // 0: not running
    int consecutive_failures = 0;
    int restarts = 0;
    int64_t started_ms = 0;
    int64_t restart_at_ms = 0;  // when pid == 0 and not stopping: next start
    bool ready = false;         // reported serving since it was last started
  };
  bool spawn(int index);
  void reap(int64_t now_ms);
  void forward(int signum, pid_t except = 0);
  void onWorkerReady(pid_t pid);
  int64_t nextWakeMs(int64_t now_ms) const;

  const int count_;
  const RestartPolicy policy_;
  WorkerMain worker_main_;
  std::vector<Worker> workers_;
  bool stopping_ = false;
  bool start_failed_ = false;
  bool ready_notified_ = false;
};

}  // namespace wsfleet
