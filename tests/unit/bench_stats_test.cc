// Percentiles, /proc parsing, target checks and the fan-out arithmetic of the bench.

#include <gtest/gtest.h>
#include <unistd.h>

#include <random>
#include <vector>

#include "tools/bench/proc_stats.h"
#include "tools/bench/runner.h"
#include "tools/bench/stats.h"
#include "tools/bench/target.h"
#include "tools/bench/worker.h"

namespace wsfleet::bench {
namespace {

TEST(BenchHistogram, BucketsCoverValuesContiguously) {
  for (int b = 0; b + 1 < Histogram::kBuckets - Histogram::kSub; ++b) {
    ASSERT_EQ(Histogram::bucketHigh(b) + 1, Histogram::bucketLow(b + 1)) << b;
  }
  for (uint64_t v : {0ull, 63ull, 64ull, 65ull, 127ull, 128ull, 1000ull, 123456789ull,
                     (1ull << 40) + 12345}) {
    const int b = Histogram::bucketOf(v);
    EXPECT_LE(Histogram::bucketLow(b), v);
    EXPECT_GE(Histogram::bucketHigh(b), v);
  }
}

TEST(BenchHistogram, PercentilesWithinOneBucketOfExact) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(11.0, 1.5);  // ~60 us median, long tail
  std::vector<uint64_t> samples;
  Histogram h;
  for (int i = 0; i < 100000; ++i) {
    const auto v = static_cast<uint64_t>(dist(rng));
    samples.push_back(v);
    h.record(v);
  }
  for (double p : {50.0, 90.0, 99.0, 99.9, 100.0}) {
    const double exact = static_cast<double>(exactPercentile(samples, p));
    const double approx = static_cast<double>(h.percentile(p));
    EXPECT_NEAR(approx, exact, exact / 60.0 + 1) << p;
  }
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.percentile(100), h.max());
}

TEST(BenchHistogram, SmallExactValuesAndMerge) {
  Histogram a;
  Histogram b;
  for (uint64_t v = 1; v <= 50; ++v) a.record(v);
  for (uint64_t v = 51; v <= 100; ++v) b.record(v);
  EXPECT_EQ(a.percentile(50), 25u);  // below 64 buckets are exact
  a.merge(b);
  EXPECT_EQ(a.count(), 100u);
  EXPECT_EQ(a.min(), 1u);
  EXPECT_EQ(a.max(), 100u);
  EXPECT_DOUBLE_EQ(a.mean(), 50.5);
  EXPECT_EQ(a.percentile(10), 10u);
  EXPECT_NEAR(static_cast<double>(a.percentile(99)), 99.0, 1.0);
  EXPECT_EQ(Histogram().percentile(50), 0u);
}

TEST(BenchExactPercentile, NearestRank) {
  EXPECT_EQ(exactPercentile({5, 1, 4, 2, 3}, 50), 3u);
  EXPECT_EQ(exactPercentile({5, 1, 4, 2, 3}, 100), 5u);
  EXPECT_EQ(exactPercentile({5, 1, 4, 2, 3}, 0), 1u);
  EXPECT_EQ(exactPercentile({}, 50), 0u);
}

TEST(BenchProcStats, ParsesStatWithAwkwardCommandName) {
  const std::string stat =
      "1234 (wsfleet (edge) 1) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 "
      "100 1000000 500 18446744073709551615";
  EXPECT_EQ(parseStatCpuTicks(stat), 325u);
  EXPECT_FALSE(parseStatCpuTicks("1234 (x) S 1 2").has_value());
}

TEST(BenchProcStats, ParsesStatusAndSockstat) {
  EXPECT_EQ(parseStatusRssKb("Name:\tx\nVmPeak:\t 999 kB\nVmRSS:\t   12345 kB\n"), 12345u);
  EXPECT_FALSE(parseStatusRssKb("Name:\tx\n").has_value());
  const auto s = parseSockStat(
      "sockets: used 812\nTCP: inuse 41 orphan 0 tw 3 alloc 60 mem 7\nUDP: inuse 2 mem 1\n");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->sockets_used, 812);
  EXPECT_EQ(s->tcp_inuse, 41);
  EXPECT_EQ(s->tcp_mem_pages, 7);
}

TEST(BenchTarget, RefusesNonLoopbackTargets) {
  auto ok = resolveTarget("ws://127.0.0.1:8080/ws?x=1");
  ASSERT_TRUE(ok.isOk());
  EXPECT_EQ(ok->port, 8080);
  EXPECT_EQ(ok->path, "/ws?x=1");
  EXPECT_TRUE(resolveTarget("ws://[::1]:9000").isOk());
  auto far = resolveTarget("ws://10.1.2.3:80/");
  ASSERT_FALSE(far.isOk());
  EXPECT_STREQ(far.status().reason(), "not_loopback");
  EXPECT_FALSE(resolveTarget("wss://127.0.0.1:1/").isOk());
  EXPECT_FALSE(resolveTarget("ws://127.0.0.1:0/").isOk());
}

TEST(BenchTarget, ExpandsSourceRanges) {
  auto ips = expandSourceIps("127.0.0.11-127.0.0.14,127.0.1.1");
  ASSERT_TRUE(ips.isOk());
  EXPECT_EQ(*ips, (std::vector<std::string>{"127.0.0.11", "127.0.0.12", "127.0.0.13",
                                            "127.0.0.14", "127.0.1.1"}));
  EXPECT_FALSE(expandSourceIps("192.168.1.1").isOk());
  EXPECT_FALSE(expandSourceIps("127.0.0.9-127.0.0.2").isOk());
}

TEST(BenchFanout, ExpectedDeliveriesMatchesACount) {
  for (uint64_t k : {1u, 7u, 50u, 101u}) {
    for (uint64_t c : {1u, 3u, 8u}) {
      for (uint64_t n : {0u, 1u, 5u, 99u}) {
        uint64_t count = 0;
        for (uint64_t m = 0; m < n; ++m) {
          for (uint64_t sub = 0; sub < k; ++sub) count += (sub % c == m % c) ? 1 : 0;
        }
        EXPECT_EQ(expectedFanoutDeliveries(n, k, c), count) << k << " " << c << " " << n;
      }
    }
  }
}

TEST(BenchStamp, RoundTripsInsideProtocolText) {
  char stamp[kStampBytes];
  writeStamp(stamp, 0x0123456789abcdefULL);
  const std::string frame = R"({"type":"message","data":")" + std::string(stamp, kStampBytes) +
                            R"(xxxx"})";
  uint64_t ns = 0;
  ASSERT_TRUE(findStamp(frame, &ns));
  EXPECT_EQ(ns, 0x0123456789abcdefULL);
  EXPECT_FALSE(findStamp("wsfb0123", &ns));
  EXPECT_FALSE(findStamp("wsfbXXXXXXXXXXXXXXXX", &ns));
}

}  // namespace
}  // namespace wsfleet::bench

namespace wsfleet::bench {
namespace {

TEST(BenchProcStats, ParsesChildrenLists) {
  EXPECT_EQ(parseChildren("12 345 6789 "), (std::vector<int>{12, 345, 6789}));
  EXPECT_EQ(parseChildren("42"), (std::vector<int>{42}));
  EXPECT_TRUE(parseChildren("").empty());
}

TEST(BenchProcStats, ProcessTreeStartsWithTheProcessItself) {
  const std::vector<int> tree = processAndChildren(getpid());
  ASSERT_FALSE(tree.empty());
  EXPECT_EQ(tree.front(), getpid());
}

}  // namespace
}  // namespace wsfleet::bench
