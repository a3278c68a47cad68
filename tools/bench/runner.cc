#include "tools/bench/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "tools/bench/connection.h"

namespace wsfleet::bench {
namespace {

// Children to kill when the hard deadline fires (async-signal-safe access only).
constexpr int kMaxWorkers = 256;
volatile pid_t g_children[kMaxWorkers];
volatile int g_child_count = 0;

void onHardDeadline(int) {
  for (int i = 0; i < g_child_count; ++i) {
    if (g_children[i] > 0) kill(g_children[i], SIGKILL);
  }
  static constexpr char kMsg[] = "wsfleet-bench: hard deadline reached, workers killed\n";
  (void)!write(2, kMsg, sizeof kMsg - 1);
  _exit(4);
}

ServerSample sampleServer(int pid) {
  ServerSample s;
  if (pid > 0) {
    // Summed over the server's worker processes too (a supervised multi-worker edge).
    for (int p : processAndChildren(pid)) {
      if (auto cpu = processCpuMicros(p)) s.cpu_us = s.cpu_us.value_or(0) + *cpu;
      if (auto rss = processRssKb(p)) s.rss_kb = s.rss_kb.value_or(0) + *rss;
    }
  }
  s.sock = readSockStat();
  return s;
}

// Reads exactly len bytes before the monotonic deadline; false on EOF, error or timeout.
bool readExact(int fd, void* buf, size_t len, uint64_t deadline_ns) {
  auto* p = static_cast<char*>(buf);
  while (len > 0) {
    const uint64_t now = monotonicNs();
    if (now >= deadline_ns) return false;
    pollfd pfd{fd, POLLIN, 0};
    const int r = poll(&pfd, 1, static_cast<int>(std::min<uint64_t>((deadline_ns - now) / 1000000 + 1, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t n = ::read(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

struct Child {
  pid_t pid = -1;
  int ctl_w = -1;
  int report_r = -1;
};

void sendAll(std::vector<Child>& kids, char cmd) {
  for (Child& k : kids) {
    if (k.ctl_w >= 0) (void)!::write(k.ctl_w, &cmd, 1);
  }
}

void reap(std::vector<Child>& kids, uint64_t deadline_ns) {
  for (Child& k : kids) {
    if (k.ctl_w >= 0) ::close(k.ctl_w);
    k.ctl_w = -1;
  }
  for (Child& k : kids) {
    while (k.pid > 0) {
      int status = 0;
      const pid_t r = waitpid(k.pid, &status, WNOHANG);
      if (r == k.pid || (r < 0 && errno != EINTR)) {
        k.pid = -1;
        break;
      }
      if (monotonicNs() >= deadline_ns) {
        kill(k.pid, SIGKILL);
        waitpid(k.pid, &status, 0);
        k.pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (k.report_r >= 0) ::close(k.report_r);
    k.report_r = -1;
  }
}

}  // namespace

void mergeReport(WorkerReport& into, const WorkerReport& from) {
  into.attempted += from.attempted;
  into.ready += from.ready;
  for (size_t i = 0; i < kFailCount; ++i) into.failures[i] += from.failures[i];
  into.setup_ns = std::max(into.setup_ns, from.setup_ns);
  if (from.run_start_ns != 0) {
    into.run_start_ns = into.run_start_ns == 0 ? from.run_start_ns
                                               : std::min(into.run_start_ns, from.run_start_ns);
  }
  into.run_end_ns = std::max(into.run_end_ns, from.run_end_ns);
  if (from.first_delivery_ns != 0) {
    into.first_delivery_ns = into.first_delivery_ns == 0
                                 ? from.first_delivery_ns
                                 : std::min(into.first_delivery_ns, from.first_delivery_ns);
  }
  into.last_delivery_ns = std::max(into.last_delivery_ns, from.last_delivery_ns);
  into.published += from.published;
  into.publish_acks += from.publish_acks;
  into.publish_errors += from.publish_errors;
  into.publish_skipped += from.publish_skipped;
  into.delivered += from.delivered;
  into.delivered_unstamped += from.delivered_unstamped;
  into.bytes_in += from.bytes_in;
  into.bytes_out += from.bytes_out;
  into.recv_calls += from.recv_calls;
  into.frames_in += from.frames_in;
  into.cpu_us += from.cpu_us;
  into.latency.merge(from.latency);
  into.handshake.merge(from.handshake);
}

uint64_t expectedFanoutDeliveries(uint64_t published, uint64_t subscribers, uint64_t channels) {
  if (channels == 0) channels = 1;
  const uint64_t rounds = published / channels;
  const uint64_t rest = published % channels;
  // Channel c has K/C subscribers, plus one when c < K % C.
  return rounds * subscribers + rest * (subscribers / channels) +
         std::min(rest, subscribers % channels);
}

Result<RunResult> runBench(const BenchOptions& opts, const TargetUrl& target) {
  RunResult out;
  const uint32_t procs = std::clamp<uint32_t>(opts.procs, 1, kMaxWorkers);
  out.workers = procs;
  out.nproc = onlineCpus();
  out.load_before = loadAverage();
  out.baseline = sampleServer(opts.server_pid);

  double hard = opts.hard_deadline_s;
  if (hard <= 0) hard = 2 * opts.setup_timeout_s + opts.duration_s + opts.drain_s + 30;
  signal(SIGALRM, onHardDeadline);
  alarm(static_cast<unsigned>(std::ceil(hard)));
  const uint64_t t_begin = monotonicNs();
  const uint64_t hard_ns = t_begin + static_cast<uint64_t>(hard * 1e9);

  std::vector<Child> kids(procs);
  uint32_t next = 0;
  fflush(stdout);
  fflush(stderr);
  for (uint32_t w = 0; w < procs; ++w) {
    WorkerPlan plan;
    plan.worker_index = w;
    plan.first_conn = next;
    plan.count = opts.connections / procs + (w < opts.connections % procs ? 1 : 0);
    next += plan.count;
    plan.publishers = (opts.scenario == Scenario::kFanout && w == 0) ? opts.publishers : 0;
    if (!opts.source_ips.empty()) plan.source_ip = opts.source_ips[w % opts.source_ips.size()];
    int ctl[2];
    int rep[2];
    if (pipe2(ctl, O_CLOEXEC) != 0 || pipe2(rep, O_CLOEXEC) != 0) {
      return Status(Code::kInternal, "pipe_failed", std::strerror(errno));
    }
    const pid_t pid = fork();
    if (pid < 0) return Status(Code::kInternal, "fork_failed", std::strerror(errno));
    if (pid == 0) {
      ::close(ctl[1]);
      ::close(rep[0]);
      for (uint32_t k = 0; k < w; ++k) {
        ::close(kids[k].ctl_w);
        ::close(kids[k].report_r);
      }
      signal(SIGALRM, SIG_DFL);
      alarm(static_cast<unsigned>(std::ceil(hard)) + 5);
      _exit(runWorker(opts, target, plan, ctl[0], rep[1]));
    }
    ::close(ctl[0]);
    ::close(rep[1]);
    kids[w] = Child{pid, ctl[1], rep[0]};
    g_children[w] = pid;
    g_child_count = static_cast<int>(w + 1);
  }

  auto collect = [&](WorkerReport& merged, const char* what) -> Status {
    merged = WorkerReport{};
    for (uint32_t w = 0; w < procs; ++w) {
      WorkerReport r;
      if (!readExact(kids[w].report_r, &r, sizeof r, hard_ns)) {
        sendAll(kids, kCmdQuit);
        reap(kids, monotonicNs() + 2000000000ull);
        return Status(Code::kUnavailable, "worker_failed",
                      "worker " + std::to_string(w) + " died or timed out during " + what);
      }
      mergeReport(merged, r);
    }
    return Status::ok();
  };

  WSF_RETURN_IF_ERROR(collect(out.setup, "setup"));
  if (opts.scenario == Scenario::kIdle) {
    std::this_thread::sleep_for(std::chrono::duration<double>(opts.duration_s));
  }
  out.after_setup = sampleServer(opts.server_pid);
  out.run_start = out.after_setup;
  sendAll(kids, kCmdGo);
  WSF_RETURN_IF_ERROR(collect(out.total, "the run"));
  out.run_end = sampleServer(opts.server_pid);
  // Setup-phase failures and counters are in the final report too (it is cumulative);
  // only the handshake histogram of the setup phase lives in `setup`.
  sendAll(kids, kCmdQuit);
  reap(kids, monotonicNs() + 10000000000ull);
  alarm(0);
  g_child_count = 0;
  out.bench_cpu_us = selfAndChildrenCpuMicros();
  out.load_after = loadAverage();
  out.wall_s = static_cast<double>(monotonicNs() - t_begin) / 1e9;
  if (opts.scenario == Scenario::kFanout) {
    out.expected_deliveries =
        expectedFanoutDeliveries(out.total.published, opts.connections, opts.channels);
  } else if (opts.scenario == Scenario::kDirect) {
    out.expected_deliveries = out.total.published;
  }
  return out;
}

}  // namespace wsfleet::bench
