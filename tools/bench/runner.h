#pragma once
// The parent process: forks the workers, sequences the phases, samples the server and the
// machine around them, and merges the workers' reports into one result.

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "common/status.h"
#include "tools/bench/options.h"
#include "tools/bench/proc_stats.h"
#include "tools/bench/target.h"
#include "tools/bench/worker.h"

namespace wsfleet::bench {

struct ServerSample {
  std::optional<uint64_t> cpu_us;
  std::optional<uint64_t> rss_kb;
  std::optional<SockStat> sock;
};

struct RunResult {
  int nproc = 0;
  std::array<double, 3> load_before{};
  std::array<double, 3> load_after{};
  ServerSample baseline;     // before any connection
  ServerSample after_setup;  // connections up (idle: after the hold)
  ServerSample run_start;    // when the run phase began
  ServerSample run_end;      // after every worker reported
  WorkerReport setup;        // merged phase-1 reports
  WorkerReport total;        // merged phase-2 reports
  uint32_t workers = 0;
  uint64_t expected_deliveries = 0;  // fanout, direct
  uint64_t bench_cpu_us = 0;          // all worker processes
  double wall_s = 0;
};

Result<RunResult> runBench(const BenchOptions& opts, const TargetUrl& target);

// Deliveries a fanout run should produce: message n goes to channel n % C, and the K
// subscribers are spread over the channels by index (subscriber i on channel i % C).
uint64_t expectedFanoutDeliveries(uint64_t published, uint64_t subscribers, uint64_t channels);

void mergeReport(WorkerReport& into, const WorkerReport& from);

}  // namespace wsfleet::bench
