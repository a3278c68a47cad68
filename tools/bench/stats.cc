#include "tools/bench/stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace wsfleet::bench {
namespace {

uint64_t nearestRank(uint64_t count, double p) {
  if (p <= 0) return 1;
  auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count)));
  return std::clamp<uint64_t>(rank, 1, count);
}

}  // namespace

int Histogram::bucketOf(uint64_t value) {
  if (value < static_cast<uint64_t>(kSub)) return static_cast<int>(value);
  const int e = 63 - std::countl_zero(value);  // >= kSubBits
  const auto m = static_cast<int>(value >> (e - kSubBits));  // in [kSub, 2*kSub)
  return kSub + (e - kSubBits) * kSub + (m - kSub);
}

uint64_t Histogram::bucketLow(int bucket) {
  if (bucket < kSub) return static_cast<uint64_t>(bucket);
  const int e = (bucket - kSub) / kSub + kSubBits;
  const auto m = static_cast<uint64_t>((bucket - kSub) % kSub + kSub);
  return m << (e - kSubBits);
}

uint64_t Histogram::bucketHigh(int bucket) {
  if (bucket < kSub) return static_cast<uint64_t>(bucket);
  const int e = (bucket - kSub) / kSub + kSubBits;
  return bucketLow(bucket) + ((uint64_t{1} << (e - kSubBits)) - 1);
}

void Histogram::record(uint64_t value) {
  ++counts_[static_cast<size_t>(bucketOf(value))];
  ++count_;
  sum_ += value;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  const uint64_t rank = nearestRank(count_, p);
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += counts_[static_cast<size_t>(b)];
    if (seen >= rank) {
      const uint64_t low = bucketLow(b);
      const uint64_t mid = low + (bucketHigh(b) - low) / 2;
      return std::clamp(mid, min(), max_);
    }
  }
  return max_;
}

uint64_t exactPercentile(std::vector<uint64_t> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[nearestRank(samples.size(), p) - 1];
}

}  // namespace wsfleet::bench
