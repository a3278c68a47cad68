#include "common/metrics.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <charconv>
#include <cmath>
#include <limits>

namespace wsfleet {

namespace {

enum class Kind { kCounter, kGauge, kHistogram };

const char* kindName(Kind kind) {
  switch (kind) {
    case Kind::kCounter:
      return "counter";
    case Kind::kGauge:
      return "gauge";
    case Kind::kHistogram:
      return "histogram";
  }
  return "untyped";
}

bool isMetricName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Label names exclude ':' and the "__" prefix, which Prometheus reserves.
bool isLabelName(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool validBounds(const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    // +Inf is implicit; listing it would print the le="+Inf" bucket twice.
    if (!std::isfinite(bounds[i])) return false;
    if (i > 0 && !(bounds[i - 1] < bounds[i])) return false;
  }
  return true;
}

bool validLabels(const Labels& labels, Kind kind) {
  for (size_t i = 0; i < labels.size(); ++i) {
    if (!isLabelName(labels[i].first)) return false;
    if (kind == Kind::kHistogram && labels[i].first == "le") return false;
    for (size_t j = 0; j < i; ++j) {
      if (labels[j].first == labels[i].first) return false;
    }
  }
  return true;
}

// One canonical order per label set, so {a,b} and {b,a} name the same series.
Labels canonicalLabels(const Labels& labels) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return sorted;
}

// The exposition format escapes backslash and newline in HELP text, and the double quote
// too in label values, which are themselves quoted.
void appendEscaped(std::string* out, std::string_view text, bool escape_quote) {
  for (char c : text) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '"' && escape_quote) {
      out->append("\\\"");
    } else if (c == '\n') {
      out->append("\\n");
    } else {
      out->push_back(c);
    }
  }
}

// `extra` is the histogram's le label, which goes last as the reference clients do.
void appendLabels(std::string* out, const Labels& labels, std::string_view extra_value = {},
                  bool with_extra = false) {
  if (labels.empty() && !with_extra) return;
  out->push_back('{');
  bool first = true;
  for (const auto& [key, value] : labels) {
    if (!first) out->push_back(',');
    first = false;
    out->append(key);
    out->append("=\"");
    appendEscaped(out, value, /*escape_quote=*/true);
    out->push_back('"');
  }
  if (with_extra) {
    if (!first) out->push_back(',');
    out->append("le=\"");
    out->append(extra_value);
    out->push_back('"');
  }
  out->push_back('}');
}

template <class Int>
void appendInteger(std::string* out, Int v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

// Shortest text that reads back as the same double. Fixed notation over the range where
// it stays short, so integers print as integers and 0.0005 does not become 5e-04.
void appendDouble(std::string* out, double v) {
  if (std::isnan(v)) {
    out->append("NaN");
    return;
  }
  if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (v == 0) v = 0;  // no "-0"
  char buf[64];
  const double mag = std::fabs(v);
  const bool fixed = mag == 0 || (mag >= 1e-4 && mag < 1e21);
  auto res = fixed ? std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed)
                   : std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, res.ptr);
}

void appendSample(std::string* out, std::string_view name, std::string_view suffix,
                  const Labels& labels) {
  out->append(name);
  out->append(suffix);
  appendLabels(out, labels);
  out->push_back(' ');
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  assert(validBounds(bounds_) && "histogram bounds must be finite and strictly ascending");
  sum_bits_.store(std::bit_cast<uint64_t>(0.0), std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  // A NaN would poison _sum for the process lifetime; it is not a measurement.
  if (std::isnan(v)) return;
  // le semantics: the first bucket whose upper bound is >= v.
  const size_t idx =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[idx].fetch_add(1, std::memory_order_relaxed);
  uint64_t expected = sum_bits_.load(std::memory_order_relaxed);
  while (!sum_bits_.compare_exchange_weak(
      expected, std::bit_cast<uint64_t>(std::bit_cast<double>(expected) + v),
      std::memory_order_relaxed)) {
  }
}

std::vector<uint64_t> Histogram::bucketCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

double Histogram::sum() const {
  return std::bit_cast<double>(sum_bits_.load(std::memory_order_relaxed));
}

uint64_t Histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
  }
  return total;
}

std::vector<double> latencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

namespace {

// At most one of the members is set; which one follows the family's kind.
struct Series {
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> callback;
};

}  // namespace

struct MetricsRegistry::Family {
  Kind kind = Kind::kCounter;
  std::string help;            // the first registration's help wins
  std::vector<double> bounds;  // histograms: every series of a family shares them
  std::map<Labels, Series> series;
  std::vector<std::unique_ptr<Series>> detached;  // only used in rejected_
};

struct MetricsRegistry::Ops {
  // Caller holds mu_.
  static Series& seriesFor(MetricsRegistry* reg, std::string_view name, std::string_view help,
                           Kind kind, const Labels& labels,
                           const std::vector<double>* bounds = nullptr) {
    const bool valid_name = isMetricName(name);
    assert(valid_name && "invalid metric name");
    const bool valid_labels = validLabels(labels, kind);
    assert(valid_labels && "invalid, duplicate or reserved label name");
    const bool valid_bounds = bounds == nullptr || validBounds(*bounds);
    assert(valid_bounds && "histogram bounds must be finite and strictly ascending");
    if (!valid_name || !valid_labels || !valid_bounds) return rejectedSeries(reg);
    auto it = reg->families_.find(name);
    if (it == reg->families_.end()) {
      auto family = std::make_unique<Family>();
      family->kind = kind;
      family->help = std::string(help);
      if (bounds != nullptr) family->bounds = *bounds;
      it = reg->families_.emplace(std::string(name), std::move(family)).first;
    }
    Family& family = *it->second;
    const bool same_kind = family.kind == kind;
    assert(same_kind && "metric registered with another type");
    const bool same_bounds = bounds == nullptr || family.bounds == *bounds;
    assert(same_bounds && "histogram registered with other buckets");
    if (!same_kind || !same_bounds) return rejectedSeries(reg);
    return family.series[canonicalLabels(labels)];
  }

  static Series& rejectedSeries(MetricsRegistry* reg) {
    if (!reg->rejected_) reg->rejected_ = std::make_unique<Family>();
    return *reg->rejected_->detached.emplace_back(std::make_unique<Series>());
  }

  static void renderFamily(std::string* out, const std::string& name, const Family& family) {
    out->append("# HELP ").append(name).push_back(' ');
    appendEscaped(out, family.help, /*escape_quote=*/false);
    out->append("\n# TYPE ").append(name).push_back(' ');
    out->append(kindName(family.kind)).push_back('\n');
    for (const auto& [labels, series] : family.series) {
      if (series.counter) {
        appendSample(out, name, "", labels);
        appendInteger(out, series.counter->value());
      } else if (series.gauge) {
        appendSample(out, name, "", labels);
        appendInteger(out, series.gauge->value());
      } else if (series.callback) {
        appendSample(out, name, "", labels);
        appendDouble(out, series.callback());
      } else if (series.histogram) {
        renderHistogram(out, name, labels, *series.histogram);
        continue;
      } else {
        continue;  // a callback registered without a function
      }
      out->push_back('\n');
    }
  }

  static void renderHistogram(std::string* out, const std::string& name, const Labels& labels,
                              const Histogram& h) {
    const std::vector<uint64_t> counts = h.bucketCounts();
    const std::vector<double>& bounds = h.bounds();
    // _count is the +Inf bucket of this same snapshot, so the two always agree even
    // while other threads observe.
    uint64_t cumulative = 0;
    std::string le;
    for (size_t i = 0; i < counts.size(); ++i) {
      cumulative += counts[i];
      le.clear();
      if (i < bounds.size()) {
        appendDouble(&le, bounds[i]);
      } else {
        le = "+Inf";
      }
      out->append(name).append("_bucket");
      appendLabels(out, labels, le, true);
      out->push_back(' ');
      appendInteger(out, cumulative);
      out->push_back('\n');
    }
    appendSample(out, name, "_sum", labels);
    appendDouble(out, h.sum());
    out->push_back('\n');
    appendSample(out, name, "_count", labels);
    appendInteger(out, cumulative);
    out->push_back('\n');
  }
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = Ops::seriesFor(this, name, help, Kind::kCounter, labels);
  if (!series.counter) series.counter = std::make_unique<Counter>();
  return *series.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series* series = &Ops::seriesFor(this, name, help, Kind::kGauge, labels);
  // One label set is either a stored gauge or a callback, never both.
  assert(!series->callback && "series already registered as a gauge callback");
  if (series->callback) series = &Ops::rejectedSeries(this);
  if (!series->gauge) series->gauge = std::make_unique<Gauge>();
  return *series->gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = Ops::seriesFor(this, name, help, Kind::kHistogram, labels, &bounds);
  if (!series.histogram) series.histogram = std::make_unique<Histogram>(bounds);
  return *series.histogram;
}

void MetricsRegistry::gaugeCallback(std::string_view name, std::string_view help,
                                    const Labels& labels, std::function<double()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = Ops::seriesFor(this, name, help, Kind::kGauge, labels);
  assert(fn && "gauge callback without a function");
  assert(!series.gauge && "series already registered as a stored gauge");
  if (series.gauge) return;
  // Registering the same series again replaces the function: the owner of the value
  // (say, a reopened LMDB environment) may change over the process lifetime.
  series.callback = std::move(fn);
}

std::string MetricsRegistry::renderPrometheus() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) Ops::renderFamily(&out, name, *family);
  return out;
}

}  // namespace wsfleet
