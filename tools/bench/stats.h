#pragma once
// Latency statistics: a log-linear histogram (64 sub-buckets per power of two, so any
// reported percentile is within 1/64 of the true value) with exact count, min, max and
// sum. Fixed size and trivially copyable, so worker processes send it to the parent as raw
// bytes and the parent merges them.

#include <array>
#include <cstdint>
#include <vector>

namespace wsfleet::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kBuckets = kSub + kSub * (64 - kSubBits);

  void record(uint64_t value);
  void merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ == 0 ? 0 : min_; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ == 0 ? 0.0 : static_cast<double>(sum_) / count_; }
  // The value at percentile p in [0, 100] (nearest rank), 0 when empty. The bucket's
  // midpoint, clamped to [min, max].
  uint64_t percentile(double p) const;

  static int bucketOf(uint64_t value);
  static uint64_t bucketLow(int bucket);
  static uint64_t bucketHigh(int bucket);  // inclusive

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
  uint64_t sum_ = 0;
};

// Nearest-rank percentile of raw samples (sorts a copy); the reference the tests compare
// the histogram against.
uint64_t exactPercentile(std::vector<uint64_t> samples, double p);

}  // namespace wsfleet::bench
