#include "common/token_bucket.h"

#include <algorithm>
#include <cmath>

namespace wsfleet {

namespace {
// Refills are computed in floating point: a wait of exactly msUntil() must not come up a
// rounding error short of the token it promised.
constexpr double kEpsilon = 1e-9;
}  // namespace

TokenBucket::TokenBucket(double rate_per_s, double burst, int64_t now_ms)
    : rate_per_s_(rate_per_s), burst_(burst), tokens_(burst), last_ms_(now_ms) {}

double TokenBucket::available(int64_t now_ms) const {
  // A clock that appears to go back (callers mixing sources) refills nothing rather than
  // draining the bucket.
  const int64_t elapsed = std::max<int64_t>(0, now_ms - last_ms_);
  return std::min(burst_, tokens_ + static_cast<double>(elapsed) * rate_per_s_ / 1000.0);
}

bool TokenBucket::canTake(int64_t now_ms, double n) const {
  return !enabled() || available(now_ms) + kEpsilon >= n;
}

bool TokenBucket::tryTake(int64_t now_ms, double n) {
  if (!enabled()) return true;
  const double tokens = available(now_ms);
  last_ms_ = std::max(last_ms_, now_ms);
  tokens_ = tokens;
  if (tokens + kEpsilon < n) return false;
  tokens_ = std::max(0.0, tokens - n);
  return true;
}

int64_t TokenBucket::msUntil(int64_t now_ms, double n) const {
  if (!enabled()) return 0;
  const double missing = std::min(n, burst_) - available(now_ms);
  if (missing <= kEpsilon) return 0;
  return static_cast<int64_t>(std::ceil(missing * 1000.0 / rate_per_s_));
}

}  // namespace wsfleet
