#include "common/metrics.h"

#include <gtest/gtest.h>

#include <limits>
#include <thread>
#include <vector>

namespace wsfleet {
namespace {

TEST(MetricsTest, RendersExactExpositionText) {
  MetricsRegistry reg;
  // Registered out of order: output is sorted by family name, then by label set.
  reg.gauge("wsfleet_connections", "Open connections.\nPer worker \\ region.", {{"region", "eu"}})
      .set(-3);
  reg.gauge("wsfleet_connections", "ignored: first help wins", {{"region", "ap"}}).set(12);
  Counter& drops = reg.counter("wsfleet_drops_total", "Dropped messages.",
                               {{"reason", "slow \"consumer\"\n\\x"}});
  drops.inc();
  drops.inc(41);
  reg.counter("wsfleet_accepts_total", "Accepted sockets.").inc(7);
  Histogram& lat =
      reg.histogram("wsfleet_latency_seconds", "Latency.", {0.005, 0.1, 2.5}, {{"region", "eu"}});
  lat.observe(0.001);
  lat.observe(0.005);  // on a bound: counts in that bucket (le)
  lat.observe(0.05);
  lat.observe(30);
  reg.gaugeCallback("wsfleet_lmdb_used_bytes", "LMDB map usage.", {}, [] { return 1048576.0; });
  reg.gaugeCallback("wsfleet_lmdb_used_ratio", "LMDB map usage ratio.", {{"env", "p"}},
                    [] { return 0.25; });

  const std::string expected =
      "# HELP wsfleet_accepts_total Accepted sockets.\n"
      "# TYPE wsfleet_accepts_total counter\n"
      "wsfleet_accepts_total 7\n"
      "# HELP wsfleet_connections Open connections.\\nPer worker \\\\ region.\n"
      "# TYPE wsfleet_connections gauge\n"
      "wsfleet_connections{region=\"ap\"} 12\n"
      "wsfleet_connections{region=\"eu\"} -3\n"
      "# HELP wsfleet_drops_total Dropped messages.\n"
      "# TYPE wsfleet_drops_total counter\n"
      "wsfleet_drops_total{reason=\"slow \\\"consumer\\\"\\n\\\\x\"} 42\n"
      "# HELP wsfleet_latency_seconds Latency.\n"
      "# TYPE wsfleet_latency_seconds histogram\n"
      "wsfleet_latency_seconds_bucket{region=\"eu\",le=\"0.005\"} 2\n"
      "wsfleet_latency_seconds_bucket{region=\"eu\",le=\"0.1\"} 3\n"
      "wsfleet_latency_seconds_bucket{region=\"eu\",le=\"2.5\"} 3\n"
      "wsfleet_latency_seconds_bucket{region=\"eu\",le=\"+Inf\"} 4\n"
      "wsfleet_latency_seconds_sum{region=\"eu\"} 30.056\n"
      "wsfleet_latency_seconds_count{region=\"eu\"} 4\n"
      "# HELP wsfleet_lmdb_used_bytes LMDB map usage.\n"
      "# TYPE wsfleet_lmdb_used_bytes gauge\n"
      "wsfleet_lmdb_used_bytes 1048576\n"
      "# HELP wsfleet_lmdb_used_ratio LMDB map usage ratio.\n"
      "# TYPE wsfleet_lmdb_used_ratio gauge\n"
      "wsfleet_lmdb_used_ratio{env=\"p\"} 0.25\n";
  EXPECT_EQ(reg.renderPrometheus(), expected);
}

TEST(MetricsTest, HistogramWithoutLabelsAndLatencyBuckets) {
  MetricsRegistry reg;
  Histogram& h = reg.histogram("rtt_seconds", "RTT.", latencyBuckets());
  h.observe(0.0003);
  h.observe(7);
  const std::string text = reg.renderPrometheus();
  EXPECT_NE(text.find("rtt_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt_seconds_bucket{le=\"0.0025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt_seconds_bucket{le=\"5\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt_seconds_bucket{le=\"10\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt_seconds_bucket{le=\"+Inf\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt_seconds_sum 7.0003\n"), std::string::npos) << text;
  EXPECT_NE(text.find("rtt_seconds_count 2\n"), std::string::npos) << text;
  EXPECT_EQ(latencyBuckets(), (std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1, 0.25, 0.5, 1, 2.5, 5, 10}));
}

TEST(MetricsTest, HistogramSnapshot) {
  Histogram h({1, 2});
  h.observe(-1);
  h.observe(1.5);
  h.observe(2);
  h.observe(std::numeric_limits<double>::infinity());
  h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored, sum stays usable
  EXPECT_EQ(h.bucketCounts(), (std::vector<uint64_t>{1, 2, 1}));
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.sum(), std::numeric_limits<double>::infinity());
  Histogram bytes({1024});
  // Large values stay exact (a fixed-point sum would overflow or round them).
  bytes.observe(1e15);
  bytes.observe(3e15);
  EXPECT_EQ(bytes.sum(), 4e15);
}

TEST(MetricsTest, SameNameAndLabelsReturnSameObject) {
  MetricsRegistry reg;
  Counter& a = reg.counter("c_total", "C.", {{"x", "1"}, {"y", "2"}});
  Counter& b = reg.counter("c_total", "C.", {{"x", "1"}, {"y", "2"}});
  Counter& reordered = reg.counter("c_total", "C.", {{"y", "2"}, {"x", "1"}});
  Counter& other = reg.counter("c_total", "C.", {{"x", "2"}, {"y", "2"}});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a, &reordered);
  EXPECT_NE(&a, &other);
  EXPECT_EQ(&reg.gauge("g", "G."), &reg.gauge("g", "G."));
  EXPECT_EQ(&reg.histogram("h", "H.", {1}), &reg.histogram("h", "H.", {1}));
  a.inc(5);
  EXPECT_EQ(reordered.value(), 5u);
}

TEST(MetricsTest, CallbackGaugeFormatting) {
  MetricsRegistry reg;
  double value = 0;
  reg.gaugeCallback("v", "V.", {}, [&value] { return value; });
  auto sample = [&reg] {
    const std::string text = reg.renderPrometheus();
    const size_t pos = text.rfind("\nv ");
    return text.substr(pos + 3, text.size() - pos - 4);
  };
  value = 1e20;
  EXPECT_EQ(sample(), "100000000000000000000");
  value = -0.0;
  EXPECT_EQ(sample(), "0");
  value = 0.1 + 0.2;
  EXPECT_EQ(sample(), "0.30000000000000004");
  value = 123456789.5;
  EXPECT_EQ(sample(), "123456789.5");
  value = 1.5e-9;
  EXPECT_EQ(sample(), "1.5e-09");
  value = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(sample(), "NaN");
  value = -std::numeric_limits<double>::infinity();
  EXPECT_EQ(sample(), "-Inf");
  // Registering the series again replaces the function.
  reg.gaugeCallback("v", "V.", {}, [] { return 2.0; });
  EXPECT_EQ(sample(), "2");
}

TEST(MetricsTest, ConcurrentUpdatesAndRegistration) {
  MetricsRegistry reg;
  constexpr int kThreads = 4;
  constexpr int kIters = 100000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&reg, t] {
      // Registration races too: every thread must get the same objects.
      Counter& c = reg.counter("hits_total", "Hits.");
      Gauge& g = reg.gauge("level", "Level.");
      Histogram& h = reg.histogram("obs", "Obs.", {0.5});
      Counter& mine = reg.counter("per_thread_total", "Per thread.", {{"t", std::to_string(t)}});
      for (int i = 0; i < kIters; ++i) {
        c.inc();
        g.add(i % 2 == 0 ? 3 : -1);
        h.observe(0.25);
        mine.inc();
        if (i % 10000 == 0) (void)reg.renderPrometheus();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(reg.counter("hits_total", "Hits.").value(), uint64_t{kThreads} * kIters);
  EXPECT_EQ(reg.gauge("level", "Level.").value(), int64_t{kThreads} * kIters);
  Histogram& h = reg.histogram("obs", "Obs.", {0.5});
  EXPECT_EQ(h.count(), uint64_t{kThreads} * kIters);
  // 0.25 is exact in binary, so the CAS-accumulated sum must be exact as well.
  EXPECT_EQ(h.sum(), 0.25 * kThreads * kIters);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(reg.counter("per_thread_total", "Per thread.", {{"t", std::to_string(t)}}).value(),
              uint64_t{kIters});
  }
}

#ifndef NDEBUG
TEST(MetricsDeathTest, ProgrammingErrorsAssert) {
  MetricsRegistry reg;
  EXPECT_DEATH(reg.counter("bad-name", "x"), "invalid metric name");
  EXPECT_DEATH(reg.counter("ok", "x", {{"0bad", "v"}}), "label name");
  EXPECT_DEATH(reg.histogram("h", "x", {1}, {{"le", "v"}}), "label name");
  EXPECT_DEATH(reg.histogram("h", "x", {2, 1}), "ascending");
  reg.counter("typed", "x");
  EXPECT_DEATH(reg.gauge("typed", "x"), "another type");
}
#else
TEST(MetricsTest, MisuseInReleaseIsNotExported) {
  MetricsRegistry reg;
  reg.counter("typed", "x").inc();
  Gauge& stray = reg.gauge("typed", "x");  // type mismatch: works, never rendered
  stray.set(5);
  EXPECT_EQ(stray.value(), 5);
  reg.counter("bad-name", "x").inc();
  reg.counter("ok_total", "x", {{"0bad", "v"}}).inc();
  reg.histogram("h", "x", {2, 1}).observe(1);
  EXPECT_EQ(reg.renderPrometheus(),
            "# HELP typed x\n"
            "# TYPE typed counter\n"
            "typed 1\n");
}
#endif

}  // namespace
}  // namespace wsfleet
