#pragma once
// A token bucket: `rate_per_s` tokens a second refill it up to `burst`; taking fails when
// too few are left. Pure: the caller passes the monotonic time, so tests drive the clock
// and a stepped wall clock can never refill or starve it. A default-constructed bucket is
// disabled (rate 0): every take succeeds.

#include <cstdint>

namespace wsfleet {

class TokenBucket {
 public:
  TokenBucket() = default;
  // Starts full, as a client that has been quiet for a long time would find it.
  TokenBucket(double rate_per_s, double burst, int64_t now_ms);

  bool enabled() const { return rate_per_s_ > 0; }
  // Takes `n` tokens when there are that many; otherwise takes nothing.
  bool tryTake(int64_t now_ms, double n = 1);
  // Whether tryTake(now_ms, n) would succeed, without taking.
  bool canTake(int64_t now_ms, double n = 1) const;
  // Milliseconds until `n` tokens are there (0 when they are now). Rounded up, so waiting
  // that long always suffices; n over the burst is treated as the burst.
  int64_t msUntil(int64_t now_ms, double n = 1) const;
  // Tokens available at `now_ms`.
  double available(int64_t now_ms) const;
  // Refilled to the burst: indistinguishable from a fresh bucket, so it can be forgotten.
  bool full(int64_t now_ms) const { return available(now_ms) >= burst_; }

 private:
  double rate_per_s_ = 0;
  double burst_ = 0;
  double tokens_ = 0;
  int64_t last_ms_ = 0;  // when tokens_ was computed
};

}  // namespace wsfleet
