#pragma once
// One load-generating process: owns a share of the connections, runs the scenario on its
// own epoll loop, and reports to the parent through a pipe. The parent sequences the
// phases with one-byte commands so server-side measurements bracket exactly the work.

#include <cstdint>
#include <string>
#include <type_traits>

#include "tools/bench/failure.h"
#include "tools/bench/options.h"
#include "tools/bench/stats.h"
#include "tools/bench/target.h"

namespace wsfleet::bench {

struct WorkerPlan {
  uint32_t worker_index = 0;
  uint32_t first_conn = 0;   // global index of this worker's first connection
  uint32_t count = 0;        // subscribers (idle, fanout) or connections (connect, direct)
  uint32_t publishers = 0;   // fanout publisher connections in this worker
  std::string source_ip;     // empty: let the kernel choose
};

// Sent twice: after the setup phase (phase 1) and at the end (phase 2). Plain data, so it
// crosses the pipe as raw bytes between processes of the same binary.
struct WorkerReport {
  uint32_t worker = 0;
  uint32_t phase = 0;
  uint64_t attempted = 0;
  uint64_t ready = 0;
  uint64_t failures[kFailCount] = {};
  uint64_t setup_ns = 0;           // first connect to last settle in the setup phase
  uint64_t run_start_ns = 0;       // CLOCK_MONOTONIC
  uint64_t run_end_ns = 0;
  uint64_t first_delivery_ns = 0;
  uint64_t last_delivery_ns = 0;
  uint64_t published = 0;
  uint64_t publish_acks = 0;
  uint64_t publish_errors = 0;
  uint64_t publish_skipped = 0;    // paced sends skipped because the socket was backed up
  uint64_t delivered = 0;
  uint64_t delivered_unstamped = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  uint64_t recv_calls = 0;
  uint64_t frames_in = 0;
  uint64_t cpu_us = 0;
  Histogram latency;    // ns, publish to receipt
  Histogram handshake;  // ns, connect() to session ready (and subscribed)
};
static_assert(std::is_trivially_copyable_v<WorkerReport>);

// Parent -> worker commands.
constexpr char kCmdGo = 'G';
constexpr char kCmdQuit = 'Q';

// Runs in the forked child; returns the process exit code.
int runWorker(const BenchOptions& opts, const TargetUrl& target, const WorkerPlan& plan,
              int ctl_fd, int report_fd);

// Payload stamp: "wsfb" + 16 lowercase hex digits of CLOCK_MONOTONIC ns, padded with 'x'.
constexpr size_t kStampBytes = 20;
void writeStamp(char* at, uint64_t ns);
// Finds the stamp in a received frame; false when absent or malformed.
bool findStamp(std::string_view frame, uint64_t* ns);

}  // namespace wsfleet::bench
