// The supervisor in a real process tree: the test forks a child that runs a Supervisor
// whose workers report their pids through a pipe and wait for a signal.
#include "edge/supervisor.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <set>
#include <string>

#include "tests/unit/notify_socket.h"
#include "tests/unit/temp_dir.h"

namespace wsfleet {
namespace {

TEST(RestartDelayTest, DoublesFromTheInitialDelayUpToTheCap) {
  RestartPolicy policy;
  policy.initial_backoff_ms = 100;
  policy.max_backoff_ms = 1000;
  EXPECT_EQ(restartDelayMs(policy, 1), 100);
  EXPECT_EQ(restartDelayMs(policy, 2), 200);
  EXPECT_EQ(restartDelayMs(policy, 4), 800);
  EXPECT_EQ(restartDelayMs(policy, 5), 1000);
  EXPECT_EQ(restartDelayMs(policy, 1000), 1000);
}

// Reads "index pid\n" lines the workers write, with a deadline.
class PidReader {
 public:
  explicit PidReader(int fd) : fd_(fd) {}
  bool next(int* index, pid_t* pid, int timeout_ms = 10000) {
    for (;;) {
      const size_t nl = buffer_.find('\n');
      if (nl != std::string::npos) {
        long long p = 0;
        std::sscanf(buffer_.substr(0, nl).c_str(), "%d %lld", index, &p);
        *pid = static_cast<pid_t>(p);
        buffer_.erase(0, nl + 1);
        return true;
      }
      pollfd pfd{fd_, POLLIN, 0};
      if (poll(&pfd, 1, timeout_ms) <= 0) return false;
      char chunk[256];
      const ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_;
  std::string buffer_;
};

// Forks the supervisor; its workers write their slot and pid, then wait for SIGTERM and
// exit 0 (or exit at once with `exit_code` when it is not -1). With `report_ready` they
// tell the supervisor they serve, as an edge worker does once it listens, and ignore
// SIGHUP.
pid_t startSupervisor(int workers, int report_fd, int exit_code, RestartPolicy policy,
                      bool report_ready = false) {
  const pid_t pid = fork();
  if (pid != 0) return pid;
  Supervisor supervisor(workers, policy, [report_fd, exit_code, report_ready](WorkerSlot slot) {
    const std::string line =
        std::to_string(slot.index) + " " + std::to_string(getpid()) + "\n";
    if (write(report_fd, line.data(), line.size()) < 0) return 1;
    if (exit_code >= 0) return exit_code;
    if (report_ready) {
      signal(SIGHUP, SIG_IGN);
      reportWorkerReady(slot, "unused: supervised");
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int signum = 0;
    sigwait(&set, &signum);
    return 0;
  });
  _exit(supervisor.run());
}

int waitExit(pid_t pid) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(SupervisorTest, StartsWorkersRestartsAKilledOneAndStopsOnSigterm) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  RestartPolicy policy;
  policy.initial_backoff_ms = 50;
  const pid_t supervisor = startSupervisor(2, fds[1], -1, policy);
  close(fds[1]);
  PidReader reader(fds[0]);
  std::set<int> slots;
  pid_t pids[2] = {0, 0};
  for (int i = 0; i < 2; ++i) {
    int index = -1;
    pid_t pid = 0;
    ASSERT_TRUE(reader.next(&index, &pid));
    slots.insert(index);
    pids[index] = pid;
  }
  EXPECT_EQ(slots, (std::set<int>{0, 1}));

  // A worker killed with SIGKILL comes back in the same slot with a new pid.
  ASSERT_EQ(kill(pids[1], SIGKILL), 0);
  int index = -1;
  pid_t restarted = 0;
  ASSERT_TRUE(reader.next(&index, &restarted));
  EXPECT_EQ(index, 1);
  EXPECT_NE(restarted, pids[1]);

  // SIGTERM to the supervisor reaches every worker; it exits 0 when they are gone.
  ASSERT_EQ(kill(supervisor, SIGTERM), 0);
  EXPECT_EQ(waitExit(supervisor), 0);
  EXPECT_NE(kill(pids[0], 0), 0);
  EXPECT_NE(kill(restarted, 0), 0);
  close(fds[0]);
}

TEST(SupervisorTest, WorkerThatCannotStartStopsTheHostWithFailure) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t supervisor = startSupervisor(2, fds[1], kWorkerExitStartFailed, RestartPolicy{});
  close(fds[1]);
  EXPECT_EQ(waitExit(supervisor), 1);
  close(fds[0]);
}

TEST(SupervisorTest, CrashLoopBacksOff) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  RestartPolicy policy;
  policy.initial_backoff_ms = 100;
  policy.max_backoff_ms = 400;
  // Workers die at once with a crash code: restarted after 100, 200, 400, 400 ms...
  const pid_t supervisor = startSupervisor(1, fds[1], 1, policy);
  close(fds[1]);
  PidReader reader(fds[0]);
  int index = 0;
  pid_t pid = 0;
  int starts = 0;
  const auto begin = std::chrono::steady_clock::now();
  while (starts < 5 && reader.next(&index, &pid, 5000)) ++starts;
  const auto elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - begin)
                              .count();
  EXPECT_EQ(starts, 5);
  // 4 restarts: at least 100 + 200 + 400 + 400 ms of backoff.
  EXPECT_GE(elapsed_ms, 1100);
  kill(supervisor, SIGTERM);
  EXPECT_EQ(waitExit(supervisor), 0);
  close(fds[0]);
}

// The service manager hears READY=1 once, when every worker serves (not when the first
// does), a status when a restarted worker serves again or a SIGHUP was forwarded, and
// STOPPING=1 on SIGTERM. The workers themselves say nothing to it.
TEST(SupervisorTest, TellsTheServiceManagerWhenAllWorkersServe) {
  TempDir dir;
  const std::string path = dir.path() + "/notify";
  ManagerSocket manager(path);
  ASSERT_TRUE(manager.bound());
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  RestartPolicy policy;
  policy.initial_backoff_ms = 50;
  pid_t supervisor = 0;
  {
    NotifySocketEnv env(path.c_str());  // inherited by the supervisor only
    supervisor = startSupervisor(3, fds[1], -1, policy, /*report_ready=*/true);
  }
  close(fds[1]);
  PidReader reader(fds[0]);
  pid_t pids[3] = {0, 0, 0};
  for (int i = 0; i < 3; ++i) {
    int index = -1;
    pid_t pid = 0;
    ASSERT_TRUE(reader.next(&index, &pid));
    pids[index] = pid;
  }
  EXPECT_EQ(manager.receive(10000), "STATUS=1 of 3 workers serving");
  EXPECT_EQ(manager.receive(10000), "STATUS=2 of 3 workers serving");
  EXPECT_EQ(manager.receive(10000), "READY=1\nSTATUS=3 of 3 workers serving");

  ASSERT_EQ(kill(pids[2], SIGKILL), 0);
  EXPECT_EQ(manager.receive(10000), "STATUS=3 of 3 workers serving");

  ASSERT_EQ(kill(supervisor, SIGHUP), 0);
  EXPECT_EQ(manager.receive(10000), "STATUS=configuration reload sent to the workers");

  ASSERT_EQ(kill(supervisor, SIGTERM), 0);
  EXPECT_EQ(manager.receive(10000), "STOPPING=1\nSTATUS=draining the workers");
  EXPECT_EQ(waitExit(supervisor), 0);
  EXPECT_TRUE(manager.idle());
  close(fds[0]);
}

}  // namespace
}  // namespace wsfleet
