"""The scenarios of the comparison, how each becomes a wsfleet-bench command line, and
which figures are taken from each run."""

import json
from dataclasses import asdict, dataclass, field


@dataclass
class Scenario:
    name: str
    bench: str                 # wsfleet-bench scenario: idle | connect | fanout | direct
    connections: int
    what: str                  # one line for --list and the JSON
    channels: int = 1
    rate: float = 0.0          # publishes/s in total (fanout)
    burst: bool = False
    duration_s: float = 0.0    # publish window or idle hold
    drain_s: float = 0.0       # longest wait for deliveries after the window
    procs: int = 1
    primary: list = field(default_factory=list)  # metric names shown in table and chart

    @property
    def timeout_s(self):
        # Set-up at a pessimistic 500 connections/s, the window, the drain, a margin.
        return int(self.connections / 500 + self.duration_s + self.drain_s + 30)

    def describe(self):
        return self.what

    def to_json(self):
        d = asdict(self)
        d["timeout_s"] = self.timeout_s
        return d


def plan(quick):
    """The default scenarios; --quick shrinks counts and windows, not the shape."""
    big = 1000 if quick else 10000
    small = 200 if quick else 1000
    window = 1.0 if quick else 3.0
    burst_window = 1.0 if quick else 2.0  # the method asks for at least 2 s
    drain = 1.0 if quick else 2.0
    hold = 1.0 if quick else 2.0
    # One load core: more worker processes would only share it.
    procs = 1
    # Paced fan-out at 20k deliveries/s whatever the subscriber count: well under every
    # peer's saturation, so server CPU per delivery is a cost, not a capacity figure.
    paced_rate = 20000.0 / big
    burst_metrics = ["deliveries_per_s", "delivered_fraction", "server_cpu_us_per_delivery"]
    return [
        Scenario("idle", "idle", big, f"{big} idle subscribed connections: RSS per connection",
                 duration_s=hold, procs=procs, primary=["rss_kb_per_conn"]),
        Scenario("connect", "connect", big, f"connect + handshake rate, {big} connections",
                 procs=procs, primary=["connects_per_s", "server_cpu_us_per_conn"]),
        Scenario("fanout_paced", "fanout", big,
                 f"paced fan-out, {big} subscribers, {paced_rate:g} publishes/s "
                 f"(20k deliveries/s) for {window:g} s: server CPU per delivery, latency",
                 rate=paced_rate, duration_s=window, drain_s=drain, procs=procs,
                 primary=["server_cpu_us_per_delivery", "latency_p99_ms", "delivered_fraction"]),
        Scenario(f"burst_{small}", "fanout", small,
                 f"burst fan-out, {small} subscribers, {burst_window:g} s window: capacity",
                 burst=True, duration_s=burst_window, drain_s=drain, procs=1,
                 primary=burst_metrics),
        Scenario(f"burst_{big}", "fanout", big,
                 f"burst fan-out, {big} subscribers, {burst_window:g} s window: capacity",
                 burst=True, duration_s=burst_window, drain_s=drain, procs=procs,
                 primary=burst_metrics),
        Scenario("latency", "fanout", 10,
                 f"probe latency, 10 subscribers, 100 publishes/s for {window:g} s",
                 rate=100.0, duration_s=window, drain_s=drain, procs=1,
                 primary=["latency_p50_ms", "latency_p99_ms"]),
    ]


# Whether a bigger value of a metric is better, for the table's reading of ratios.
HIGHER_IS_BETTER = {
    "connects_per_s": True,
    "deliveries_per_s": True,
    "delivered_fraction": True,
    "rss_kb_per_conn": False,
    "server_cpu_us_per_conn": False,
    "server_cpu_us_per_delivery": False,
    "latency_p50_ms": False,
    "latency_p99_ms": False,
}

UNITS = {
    "connects_per_s": "conn/s",
    "deliveries_per_s": "deliv/s",
    "delivered_fraction": "",
    "rss_kb_per_conn": "KB",
    "server_cpu_us_per_conn": "µs",
    "server_cpu_us_per_delivery": "µs",
    "latency_p50_ms": "ms",
    "latency_p99_ms": "ms",
}


def bench_command(env, sc, srv, load_core):
    cmd = ["taskset", "-c", str(load_core), env.bench, "--scenario", sc.bench]
    cmd += srv.bench_args()
    cmd += ["--connections", str(sc.connections), "--channels", str(sc.channels),
            "--procs", str(sc.procs), "--server-pid", str(srv.pid), "--json"]
    if sc.duration_s:
        cmd += ["--duration", f"{sc.duration_s:g}"]
    if sc.bench == "fanout":
        cmd += ["--drain", f"{sc.drain_s:g}"]
    if sc.bench == "fanout":
        cmd += ["--burst"] if sc.burst else ["--rate", f"{sc.rate:g}"]
    return cmd


def parse_bench_json(stdout):
    """The bench prints one JSON object with --json; accept surrounding lines too."""
    text = stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def _get(d, *paths):
    """First present value among dotted paths in nested dicts."""
    for path in paths:
        cur = d
        for part in path.split("."):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            else:
                cur = None
                break
        if cur is not None:
            return cur
    return None


def _num(v):
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def metrics(sc, bench, record):
    """The figures compared. They come from the bench, which reads the server's CPU time
    and RSS at the edges of its own measuring window (after set-up, after the drain);
    this script's own readings around the whole run are only a fallback for the RSS."""
    b = bench or {}
    res = b.get("results") or {}
    srv = b.get("server") or {}
    m = {}
    if sc.bench == "idle":
        per_conn = _num(srv.get("rss_bytes_per_connection"))
        if per_conn is None:
            measured = record.get("server_measured", {})
            ready = _num(_get(b, "connections.ready")) or float(sc.connections)
            if measured.get("rss_peak_kb") and measured.get("rss_before_kb"):
                per_conn = (measured["rss_peak_kb"] - measured["rss_before_kb"]) * 1024 / ready
        m["rss_kb_per_conn"] = None if per_conn is None else per_conn / 1024
        kernel = _num(srv.get("kernel_tcp_mem_bytes_per_connection"))
        m["kernel_tcp_kb_per_conn"] = None if kernel is None else kernel / 1024
    if sc.bench == "connect":
        m["connects_per_s"] = _num(res.get("handshakes_per_s"))
        m["server_cpu_us_per_conn"] = _num(res.get("server_cpu_us_per_handshake"))
    if sc.bench == "fanout":
        m["deliveries_per_s"] = _num(res.get("deliveries_per_s"))
        m["delivered_fraction"] = _num(res.get("delivered_fraction"))
        m["server_cpu_us_per_delivery"] = _num(res.get("server_cpu_us_per_delivery"))
        for p in ("p50", "p99"):
            us = _num(_get(res, f"latency_us.{p}"))
            m[f"latency_{p}_ms"] = None if us is None else us / 1000
    failed = _num(_get(b, "connections.failed"))
    if failed:
        m["connections_failed"] = failed
    return m
