#include "edge/connect_rate.h"

#include <algorithm>
#include <cmath>

namespace wsfleet {

ConnectRateTracker::ConnectRateTracker(int64_t window_ms, int64_t baseline_ms, int64_t now_ms)
    : window_ms_(std::max<int64_t>(1, window_ms)),
      baseline_ms_(std::max<int64_t>(window_ms_, baseline_ms)),
      window_start_ms_(now_ms) {}

bool ConnectRateTracker::update(int64_t now_ms) {
  const int64_t elapsed = now_ms - window_start_ms_;
  if (elapsed < window_ms_) return false;
  rate_ = static_cast<double>(count_) * 1000.0 / static_cast<double>(elapsed);
  if (!primed_) {
    baseline_ = rate_;  // the first window seeds it: no false storm at start-up
    primed_ = true;
  } else {
    // Exact EMA weight for a window of this length (also after a long pause of the loop).
    const double alpha =
        1.0 - std::exp(-static_cast<double>(elapsed) / static_cast<double>(baseline_ms_));
    baseline_ += alpha * (rate_ - baseline_);
  }
  count_ = 0;
  window_start_ms_ = now_ms;
  return true;
}

double ConnectRateTracker::ratio() const { return rate_ / std::max(1.0, baseline_); }

}  // namespace wsfleet
