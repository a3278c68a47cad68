#pragma once
// Reconnect-storm indicator: the rate of accepted connections over the last window
// against its own slow-moving baseline. A storm (every client of a failed edge or region
// reconnecting) shows as a ratio far above 1 while the baseline has not caught up yet.

#include <cstdint>

namespace wsfleet {

class ConnectRateTracker {
 public:
  // window_ms: how long each rate sample counts over; baseline_ms: the time constant of the
  // exponential moving average that forms the baseline.
  ConnectRateTracker(int64_t window_ms, int64_t baseline_ms, int64_t now_ms);

  void onConnect() { ++count_; }
  // Closes the current window when it is over; returns true when the figures changed.
  bool update(int64_t now_ms);

  double rate() const { return rate_; }          // connections/s in the last whole window
  double baseline() const { return baseline_; }  // connections/s, slowly moving average
  // rate / baseline; a baseline under 1/s counts as 1/s so that an idle edge's first
  // few connections are not a "storm".
  double ratio() const;

 private:
  int64_t window_ms_;
  int64_t baseline_ms_;
  int64_t window_start_ms_;
  uint64_t count_ = 0;
  double rate_ = 0;
  double baseline_ = 0;
  bool primed_ = false;
};

}  // namespace wsfleet
