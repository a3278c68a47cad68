#pragma once
// Metrics registry with Prometheus text exposition (format 0.0.4).
// Metric objects have stable addresses for the registry's lifetime: look them up once
// (registration takes a lock and a map lookup) and keep the reference on hot paths.
// Updates are lock-free relaxed atomics, so cnats threads may update them too.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsfleet {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(int64_t v) { v_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { v_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> v_{0};
};

// Fixed buckets (upper bounds, ascending), cumulative on output, with _sum and _count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Snapshot: per-bucket (non-cumulative) counts, last one is +Inf; sum; count.
  std::vector<uint64_t> bucketCounts() const;
  double sum() const;
  uint64_t count() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (+Inf last)
  // The sum is a double updated by compare-and-swap on its bit pattern rather than a
  // fixed-point integer: it stays exact for any unit (a byte-size histogram would overflow
  // millionths in a uint64 after ~18 TB) and accepts negative observations. The count is
  // derived from the buckets so _count always equals the +Inf bucket.
  std::atomic<uint64_t> sum_bits_{0};  // bit pattern of 0.0
};

// Buckets for latencies in seconds: 0.5 ms .. 10 s.
std::vector<double> latencyBuckets();

class MetricsRegistry {
 public:
  // Out of line: Family is only complete in the .cc.
  MetricsRegistry();
  ~MetricsRegistry();

  // Same name + same labels returns the same object. Names must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*; label values are escaped on output. A name registered
  // with one type and requested with another is a programming error (asserts).
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help,
                       const std::vector<double>& bounds, const Labels& labels = {});
  // Value computed at scrape time (e.g. LMDB map usage). Called with the registry's
  // lock held: it must not call back into the registry.
  void gaugeCallback(std::string_view name, std::string_view help, const Labels& labels,
                     std::function<double()> fn);

  // Families in name order, series in label order; # HELP and # TYPE once per family.
  std::string renderPrometheus() const;

 private:
  struct Family;
  struct Ops;  // lookup and rendering helpers, defined with Family in the .cc
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
  // Series requested against the rules (bad name, type or bucket mismatch). Debug builds
  // assert; release builds hand out working metrics from here that are never exported,
  // so one bad registration cannot corrupt the whole scrape.
  std::unique_ptr<Family> rejected_;
};

}  // namespace wsfleet
