#include "tools/bench/report.h"

#include <fmt/format.h>

#include <optional>

#include "common/json.h"

namespace wsfleet::bench {
namespace {

// The derived figures, computed once for both renderings.
struct Figures {
  uint64_t failed = 0;
  std::optional<double> server_cpu_us;     // run phase
  std::optional<double> rss_delta_per_conn_bytes;
  std::optional<int64_t> tcp_inuse_delta;
  std::optional<double> tcp_mem_per_conn_bytes;
  double run_s = 0;
  double deliveries_per_s = 0;
  std::optional<double> delivered_fraction;
  std::optional<double> cpu_us_per_delivery;
  double handshakes_per_s = 0;
  std::optional<double> cpu_us_per_handshake;
  double frames_per_recv = 0;
};

Figures compute(const BenchOptions& opts, const RunResult& r) {
  Figures f;
  const WorkerReport& t = r.total;
  for (uint64_t n : t.failures) f.failed += n;
  if (r.run_start.cpu_us && r.run_end.cpu_us) {
    f.server_cpu_us = static_cast<double>(*r.run_end.cpu_us - *r.run_start.cpu_us);
  }
  if (r.baseline.rss_kb && r.after_setup.rss_kb && t.ready > 0) {
    f.rss_delta_per_conn_bytes =
        (static_cast<double>(*r.after_setup.rss_kb) - static_cast<double>(*r.baseline.rss_kb)) *
        1024.0 / static_cast<double>(t.ready);
  }
  if (r.baseline.sock && r.after_setup.sock) {
    f.tcp_inuse_delta = r.after_setup.sock->tcp_inuse - r.baseline.sock->tcp_inuse;
    if (t.ready > 0) {
      f.tcp_mem_per_conn_bytes = static_cast<double>(r.after_setup.sock->tcp_mem_pages -
                                                     r.baseline.sock->tcp_mem_pages) *
                                 4096.0 / static_cast<double>(t.ready);
    }
  }
  if (t.run_end_ns > t.run_start_ns) {
    const uint64_t end = std::max(t.run_end_ns, t.last_delivery_ns);
    f.run_s = static_cast<double>(end - t.run_start_ns) / 1e9;
  }
  if (opts.scenario == Scenario::kFanout || opts.scenario == Scenario::kDirect) {
    if (f.run_s > 0) f.deliveries_per_s = static_cast<double>(t.delivered) / f.run_s;
    if (r.expected_deliveries > 0) {
      f.delivered_fraction =
          static_cast<double>(t.delivered) / static_cast<double>(r.expected_deliveries);
    }
    if (f.server_cpu_us && t.delivered > 0) {
      f.cpu_us_per_delivery = *f.server_cpu_us / static_cast<double>(t.delivered);
    }
  }
  if (opts.scenario == Scenario::kConnect) {
    if (f.run_s > 0) f.handshakes_per_s = static_cast<double>(t.ready) / f.run_s;
    if (f.server_cpu_us && t.ready > 0) {
      f.cpu_us_per_handshake = *f.server_cpu_us / static_cast<double>(t.ready);
    }
  }
  if (t.recv_calls > 0) {
    f.frames_per_recv = static_cast<double>(t.frames_in) / static_cast<double>(t.recv_calls);
  }
  return f;
}

void optNumber(JsonWriter& w, std::string_view key, const std::optional<double>& v) {
  w.key(key);
  if (v) {
    w.number(*v);
  } else {
    w.null();
  }
}

void optUint(JsonWriter& w, std::string_view key, const std::optional<uint64_t>& v) {
  w.key(key);
  if (v) {
    w.uint(*v);
  } else {
    w.null();
  }
}

void histogramUs(JsonWriter& w, std::string_view key, const Histogram& h) {
  w.key(key).beginObject();
  w.fieldUint("count", h.count());
  w.key("p50").number(static_cast<double>(h.percentile(50)) / 1e3);
  w.key("p90").number(static_cast<double>(h.percentile(90)) / 1e3);
  w.key("p99").number(static_cast<double>(h.percentile(99)) / 1e3);
  w.key("p999").number(static_cast<double>(h.percentile(99.9)) / 1e3);
  w.key("max").number(static_cast<double>(h.max()) / 1e3);
  w.key("mean").number(h.mean() / 1e3);
  w.endObject();
}

void serverSample(JsonWriter& w, std::string_view key, const ServerSample& s) {
  w.key(key).beginObject();
  optUint(w, "cpu_us", s.cpu_us);
  optUint(w, "rss_kb", s.rss_kb);
  w.key("tcp_inuse");
  if (s.sock) {
    w.integer(s.sock->tcp_inuse);
  } else {
    w.null();
  }
  w.key("tcp_mem_pages");
  if (s.sock) {
    w.integer(s.sock->tcp_mem_pages);
  } else {
    w.null();
  }
  w.endObject();
}

std::string fmtOpt(const std::optional<double>& v, const char* spec = "{:.2f}") {
  return v ? fmt::format(fmt::runtime(spec), *v) : std::string("n/a");
}

}  // namespace

std::string renderJson(const BenchOptions& opts, const RunResult& r) {
  const Figures f = compute(opts, r);
  const WorkerReport& t = r.total;
  std::string out;
  JsonWriter w(out);
  w.beginObject();
  w.field("tool", "wsfleet-bench").field("scenario", scenarioName(opts.scenario));
  w.field("target", opts.target).field("url", opts.url);
  if (!opts.publish_url.empty()) w.field("publish_url", opts.publish_url);
  w.key("params").beginObject();
  w.fieldUint("connections", opts.connections).fieldUint("channels", opts.channels);
  w.fieldUint("publishers", opts.publishers).key("rate").number(opts.rate);
  w.fieldBool("burst", opts.burst).key("duration_s").number(opts.duration_s);
  w.key("drain_s").number(opts.drain_s).fieldUint("payload_bytes", opts.payload_bytes);
  w.fieldUint("procs", opts.procs).fieldUint("concurrency", opts.concurrency);
  w.key("source_ips").beginArray();
  for (const auto& ip : opts.source_ips) w.string(ip);
  w.endArray();
  w.fieldInt("server_pid", opts.server_pid);
  w.endObject();

  w.key("machine").beginObject();
  w.fieldInt("nproc", r.nproc);
  w.key("loadavg_before").beginArray();
  for (double l : r.load_before) w.number(l);
  w.endArray().key("loadavg_after").beginArray();
  for (double l : r.load_after) w.number(l);
  w.endArray().endObject();

  w.key("connections").beginObject();
  w.fieldUint("attempted", t.attempted).fieldUint("ready", t.ready);
  w.fieldUint("failed", f.failed);
  w.key("failures").beginObject();
  for (size_t i = 0; i < kFailCount; ++i) {
    if (t.failures[i] > 0) w.fieldUint(failName(static_cast<Fail>(i)), t.failures[i]);
  }
  w.endObject();
  w.key("setup_s").number(static_cast<double>(r.total.setup_ns) / 1e9);
  histogramUs(w, "handshake_us", t.handshake);
  w.endObject();

  w.key("server").beginObject();
  serverSample(w, "baseline", r.baseline);
  serverSample(w, "after_setup", r.after_setup);
  serverSample(w, "run_end", r.run_end);
  optNumber(w, "run_cpu_us", f.server_cpu_us);
  optNumber(w, "rss_bytes_per_connection", f.rss_delta_per_conn_bytes);
  w.key("tcp_inuse_delta");
  if (f.tcp_inuse_delta) {
    w.integer(*f.tcp_inuse_delta);
  } else {
    w.null();
  }
  optNumber(w, "kernel_tcp_mem_bytes_per_connection", f.tcp_mem_per_conn_bytes);
  w.endObject();

  w.key("results").beginObject();
  w.key("run_s").number(f.run_s);
  w.fieldUint("published", t.published).fieldUint("publish_acks", t.publish_acks);
  w.fieldUint("publish_errors", t.publish_errors).fieldUint("publish_skipped", t.publish_skipped);
  w.fieldUint("expected_deliveries", r.expected_deliveries);
  w.fieldUint("delivered", t.delivered).fieldUint("delivered_unstamped", t.delivered_unstamped);
  optNumber(w, "delivered_fraction", f.delivered_fraction);
  w.key("deliveries_per_s").number(f.deliveries_per_s);
  optNumber(w, "server_cpu_us_per_delivery", f.cpu_us_per_delivery);
  histogramUs(w, "latency_us", t.latency);
  w.fieldUint("handshakes", opts.scenario == Scenario::kConnect ? t.ready : 0);
  w.key("handshakes_per_s").number(f.handshakes_per_s);
  optNumber(w, "server_cpu_us_per_handshake", f.cpu_us_per_handshake);
  w.endObject();

  w.key("client").beginObject();
  w.fieldUint("workers", r.workers).fieldUint("cpu_us", r.bench_cpu_us);
  w.fieldUint("bytes_in", t.bytes_in).fieldUint("bytes_out", t.bytes_out);
  w.fieldUint("recv_calls", t.recv_calls).fieldUint("frames_in", t.frames_in);
  w.key("frames_per_recv").number(f.frames_per_recv);
  w.key("wall_s").number(r.wall_s);
  w.endObject();
  w.endObject();
  out += '\n';
  return out;
}

std::string renderTable(const BenchOptions& opts, const RunResult& r) {
  const Figures f = compute(opts, r);
  const WorkerReport& t = r.total;
  std::string o;
  auto row = [&](std::string_view k, const std::string& v) {
    o += fmt::format("  {:<34} {}\n", k, v);
  };
  o += fmt::format("wsfleet-bench  scenario={} target={} url={}{}\n", scenarioName(opts.scenario),
                   opts.target, opts.url,
                   opts.publish_url.empty() ? "" : " publish_url=" + opts.publish_url);
  o += fmt::format("  machine: {} cpus, loadavg {:.2f} -> {:.2f}; {} worker process(es)\n",
                   r.nproc, r.load_before[0], r.load_after[0], r.workers);
  row("connections ready / attempted", fmt::format("{} / {}", t.ready, t.attempted));
  for (size_t i = 0; i < kFailCount; ++i) {
    if (t.failures[i] > 0) row(fmt::format("  failed: {}", failName(static_cast<Fail>(i))),
                               std::to_string(t.failures[i]));
  }
  row("setup time", fmt::format("{:.3f} s", static_cast<double>(r.total.setup_ns) / 1e9));
  row("handshake p50 / p99",
      fmt::format("{:.0f} / {:.0f} us", static_cast<double>(t.handshake.percentile(50)) / 1e3,
                  static_cast<double>(t.handshake.percentile(99)) / 1e3));
  switch (opts.scenario) {
    case Scenario::kIdle:
      row("server RSS per connection", fmtOpt(f.rss_delta_per_conn_bytes, "{:.0f} bytes"));
      row("kernel TCP sockets in use (delta)",
          f.tcp_inuse_delta ? std::to_string(*f.tcp_inuse_delta) : "n/a");
      row("kernel TCP memory per connection", fmtOpt(f.tcp_mem_per_conn_bytes, "{:.0f} bytes"));
      break;
    case Scenario::kConnect:
      row("handshakes/s", fmt::format("{:.0f}", f.handshakes_per_s));
      row("server CPU per handshake", fmtOpt(f.cpu_us_per_handshake, "{:.1f} us"));
      break;
    case Scenario::kFanout:
    case Scenario::kDirect:
      row("published (skipped, errors)", fmt::format("{} ({}, {})", t.published,
                                                      t.publish_skipped, t.publish_errors));
      row("delivered / expected", fmt::format("{} / {}", t.delivered, r.expected_deliveries));
      row("delivered fraction", fmtOpt(f.delivered_fraction, "{:.4f}"));
      row("deliveries/s", fmt::format("{:.0f}", f.deliveries_per_s));
      row("latency p50 / p99 / p99.9",
          fmt::format("{:.0f} / {:.0f} / {:.0f} us",
                      static_cast<double>(t.latency.percentile(50)) / 1e3,
                      static_cast<double>(t.latency.percentile(99)) / 1e3,
                      static_cast<double>(t.latency.percentile(99.9)) / 1e3));
      row("server CPU per delivery", fmtOpt(f.cpu_us_per_delivery, "{:.2f} us"));
      break;
  }
  row("server CPU in run phase", fmtOpt(f.server_cpu_us, "{:.0f} us"));
  row("client frames per recv()", fmt::format("{:.2f}", f.frames_per_recv));
  row("client CPU (all workers)", fmt::format("{:.0f} ms", static_cast<double>(r.bench_cpu_us) / 1e3));
  return o;
}

}  // namespace wsfleet::bench
