#include "edge/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/clock.h"
#include "common/log.h"
#include "common/service_notify.h"

namespace wsfleet {

namespace {

const char* signalName(int signum) {
  switch (signum) {
    case SIGTERM: return "SIGTERM";
    case SIGINT: return "SIGINT";
    case SIGHUP: return "SIGHUP";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    default: return "other";
  }
}

sigset_t supervisedSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int signum : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR1}) sigaddset(&set, signum);
  sigaddset(&set, workerReadySignal());
  return set;
}

}  // namespace

int workerReadySignal() { return SIGRTMIN + 1; }

void reportWorkerReady(const WorkerSlot& slot, std::string_view status) {
  if (!slot.supervised) {
    notifyReady(status);
    return;
  }
  sigval value{};
  value.sival_int = slot.index;
  if (sigqueue(getppid(), workerReadySignal(), value) != 0) {
    logWarn("worker_ready_report_failed", {{"error", std::strerror(errno)}});
  }
}

void Supervisor::onWorkerReady(pid_t pid) {
  auto it = std::find_if(workers_.begin(), workers_.end(),
                         [pid](const Worker& w) { return w.pid == pid; });
  if (it == workers_.end() || stopping_) return;
  it->ready = true;
  const auto ready = std::count_if(workers_.begin(), workers_.end(),
                                   [](const Worker& w) { return w.ready; });
  const std::string status = std::to_string(ready) + " of " + std::to_string(count_) +
                             " workers serving";
  if (!ready_notified_ && ready == count_) {
    ready_notified_ = true;
    notifyReady(status);
  } else {
    notifyStatus(status);
  }
}

int64_t restartDelayMs(const RestartPolicy& policy, int consecutive_failures) {
  int64_t delay = policy.initial_backoff_ms;
  for (int i = 1; i < consecutive_failures && delay < policy.max_backoff_ms; ++i) delay *= 2;
  return std::min(delay, policy.max_backoff_ms);
}

Supervisor::Supervisor(int workers, RestartPolicy policy, WorkerMain worker_main)
    : count_(workers), policy_(policy), worker_main_(std::move(worker_main)), workers_(workers) {}

bool Supervisor::spawn(int index) {
  Worker& worker = workers_[index];
  const pid_t parent = getpid();
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t pid = fork();
  if (pid < 0) {
    logError("worker_fork_failed", {{"worker", index}, {"error", std::strerror(errno)}});
    return false;
  }
  if (pid == 0) {
    // The child: signals back to normal, and it goes when the supervisor goes (a worker
    // left behind would keep serving with nobody restarting or stopping it).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    // Only the supervisor speaks to the service manager (NotifyAccess=main).
    unsetenv("NOTIFY_SOCKET");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);
    setLogProcessTag("worker-" + std::to_string(index));
    WorkerSlot slot;
    slot.index = index;
    slot.count = count_;
    slot.restarts = worker.restarts;
    slot.supervised = true;
    const int code = worker_main_(slot);
    std::fflush(nullptr);
    _exit(code);
  }
  worker.pid = pid;
  worker.started_ms = nowMonoMs();
  logInfo("worker_started", {{"worker", index}, {"pid", static_cast<int64_t>(pid)},
                             {"restarts", worker.restarts}});
  return true;
}

void Supervisor::forward(int signum, pid_t except) {
  for (const Worker& worker : workers_) {
    if (worker.pid > 0 && worker.pid != except) kill(worker.pid, signum);
  }
}

void Supervisor::reap(int64_t now_ms) {
  for (;;) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    auto it = std::find_if(workers_.begin(), workers_.end(),
                           [pid](const Worker& w) { return w.pid == pid; });
    if (it == workers_.end()) continue;
    const int index = static_cast<int>(it - workers_.begin());
    Worker& worker = *it;
    worker.pid = 0;
    worker.ready = false;
    const bool exited = WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : 0;
    const int signum = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    if (stopping_) {
      logInfo("worker_exited", {{"worker", index}, {"pid", static_cast<int64_t>(pid)},
                                {"code", code}, {"signal", signum != 0 ? signalName(signum) : ""}});
      continue;
    }
    if (exited && code == kWorkerExitStartFailed) {
      // Restarting would fail the same way; the operator has to act.
      logError("worker_start_failed", {{"worker", index}, {"action", "stopping the edge"}});
      start_failed_ = true;
      stopping_ = true;
      forward(SIGTERM);
      continue;
    }
    const int64_t lived_ms = now_ms - worker.started_ms;
    worker.consecutive_failures =
        lived_ms >= policy_.stable_after_ms ? 1 : worker.consecutive_failures + 1;
    const int64_t delay = restartDelayMs(policy_, worker.consecutive_failures);
    worker.restart_at_ms = now_ms + delay;
    ++worker.restarts;
    logError("worker_died", {{"worker", index},
                             {"pid", static_cast<int64_t>(pid)},
                             {"code", code},
                             {"signal", signum != 0 ? signalName(signum) : ""},
                             {"lived_ms", lived_ms},
                             {"restart_in_ms", delay}});
  }
}

int64_t Supervisor::nextWakeMs(int64_t now_ms) const {
  int64_t next = now_ms + 1000;
  if (stopping_) return next;
  for (const Worker& worker : workers_) {
    if (worker.pid == 0) next = std::min(next, worker.restart_at_ms);
  }
  return std::max(next, now_ms);
}

int Supervisor::run() {
  // Signals are taken synchronously with sigtimedwait: no handler runs in the middle of a
  // fork, and the loop sees each one exactly once.
  const sigset_t set = supervisedSignals();
  sigset_t previous;
  sigprocmask(SIG_BLOCK, &set, &previous);
  logInfo("supervisor_started", {{"workers", count_}, {"pid", static_cast<int64_t>(getpid())}});
  for (int i = 0; i < count_; ++i) {
    if (!spawn(i)) {
      stopping_ = true;
      start_failed_ = true;
      forward(SIGTERM);
      break;
    }
  }
  for (;;) {
    const int64_t now = nowMonoMs();
    reap(now);
    const bool any_running = std::any_of(workers_.begin(), workers_.end(),
                                         [](const Worker& w) { return w.pid > 0; });
    if (stopping_ && !any_running) break;
    if (!stopping_) {
      for (int i = 0; i < count_; ++i) {
        if (workers_[i].pid == 0 && workers_[i].restart_at_ms <= now) spawn(i);
      }
    }
    const int64_t wait_ms = std::max<int64_t>(1, nextWakeMs(nowMonoMs()) - nowMonoMs());
    timespec timeout{static_cast<time_t>(wait_ms / 1000), static_cast<long>(wait_ms % 1000) * 1000000};
    siginfo_t info{};
    const int signum = sigtimedwait(&set, &info, &timeout);
    if (signum < 0) continue;  // timeout or EINTR: the loop head does what is due
    if (signum == workerReadySignal()) {
      onWorkerReady(info.si_pid);
      continue;
    }
    switch (signum) {
      case SIGCHLD:
        break;  // reaped at the loop head
      case SIGTERM:
      case SIGINT:
        // The first one drains the workers; a second one is forwarded too, which makes
        // them stop at once.
        logInfo("supervisor_signal", {{"signal", signalName(signum)}});
        stopping_ = true;
        notifyStopping("draining the workers");
        forward(signum);
        break;
      case SIGHUP:
        logInfo("supervisor_signal", {{"signal", "SIGHUP"}});
        // Each worker reloads on its own and logs the outcome. No RELOADING=1: under
        // Type=notify the ExecReload job is the reload (RELOADING=1 is for
        // Type=notify-reload, systemd 253 and newer).
        forward(SIGHUP);
        notifyStatus("configuration reload sent to the workers");
        break;
      case SIGUSR1:
        // A worker was told to drain (POST /admin/drain): the whole host drains with it.
        if (!stopping_) {
          logInfo("host_drain_requested", {{"by_pid", static_cast<int64_t>(info.si_pid)}});
          stopping_ = true;
          notifyStopping("draining the workers");
          forward(SIGTERM, info.si_pid);
        }
        break;
      default:
        break;
    }
  }
  // A ready report still pending would kill the process once unblocked (the default
  // action of a real-time signal): take what is left first.
  const timespec no_wait{0, 0};
  while (sigtimedwait(&set, nullptr, &no_wait) > 0) {
  }
  sigprocmask(SIG_SETMASK, &previous, nullptr);
  logInfo("supervisor_stopped", {{"start_failed", start_failed_}});
  return start_failed_ ? 1 : 0;
}

}  // namespace wsfleet
