#pragma once
// Two clocks, never mixed: wall time for what leaves the process (timestamps in frames,
// token exp/nbf/iat) and monotonic time for every timeout and heartbeat, so a clock step
// on the host never fires or starves a timer.

#include <cstdint>
#include <ctime>

namespace wsfleet {

inline int64_t nowWallMs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

inline int64_t nowMonoMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

}  // namespace wsfleet
