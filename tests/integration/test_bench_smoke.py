"""wsfleet-bench against a real edge: small, short runs whose JSON figures must be sane.

These check the load generator end to end (handshakes, subscriptions, publishes, the
delivered count and latency from the payload stamp, several worker processes) rather than
the edge's speed: nothing here depends on how fast the machine is.
"""

import json
import subprocess

import harness


def bench_binary():
    return harness.bin_dir() / "wsfleet-bench"


def run_bench(edge, *args, timeout=90):
    exe = bench_binary()
    assert exe.exists(), f"{exe} is missing (build the wsfleet-bench target)"
    cmd = [str(exe), "--target", "wsfleet", "--url", f"ws://127.0.0.1:{edge.ws_port}/ws",
           "--hs256-secret", harness.DEMO_SECRET, "--kid", "k1", "--tenant", "demo",
           "--audience", harness.AUDIENCE, "--server-pid", str(edge.proc.pid), "--json",
           *args]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout)
    assert p.returncode == 0, f"rc={p.returncode}\nstdout:{p.stdout}\nstderr:{p.stderr}"
    return json.loads(p.stdout)


def test_fanout_paced_delivers_everything(edge):
    r = run_bench(edge, "--scenario", "fanout", "--connections", "50", "--rate", "50",
                  "--duration", "2")
    c, res = r["connections"], r["results"]
    assert c["ready"] == 51 and c["failed"] == 0, c   # 50 subscribers + 1 publisher
    assert res["published"] >= 90, res
    assert res["publish_errors"] == 0
    assert res["expected_deliveries"] == res["published"] * 50
    assert res["delivered"] == res["expected_deliveries"], res
    assert res["delivered_fraction"] == 1.0
    lat = res["latency_us"]
    assert lat["count"] == res["delivered"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"] < 2_000_000, lat
    assert res["server_cpu_us_per_delivery"] is not None
    assert r["params"]["connections"] == 50 and r["scenario"] == "fanout"
    assert r["machine"]["nproc"] >= 1 and len(r["machine"]["loadavg_after"]) == 3


def test_connect_opens_every_connection(edge):
    r = run_bench(edge, "--scenario", "connect", "--connections", "200")
    c, res = r["connections"], r["results"]
    assert c["attempted"] == 200 and c["ready"] == 200 and c["failed"] == 0, c
    assert res["handshakes"] == 200
    assert res["handshakes_per_s"] > 0
    assert c["handshake_us"]["count"] == 200
    assert res["server_cpu_us_per_handshake"] is not None


def test_idle_two_processes_two_source_addresses(edge):
    r = run_bench(edge, "--scenario", "idle", "--connections", "100", "--procs", "2",
                  "--source-ips", "127.0.0.11-127.0.0.12", "--duration", "1")
    c, srv = r["connections"], r["server"]
    assert c["ready"] == 100 and c["failed"] == 0, c
    assert r["client"]["workers"] == 2
    assert srv["baseline"]["rss_kb"] > 0 and srv["after_setup"]["rss_kb"] > 0
    assert srv["rss_bytes_per_connection"] is not None
    # The kernel's socket count is machine-wide (other tests open and close sockets at the
    # same time under ctest -j), so only its presence is checked here.
    assert "tcp_inuse_delta" in srv, srv


def test_wrong_secret_is_counted_as_401(edge):
    exe = bench_binary()
    p = subprocess.run([str(exe), "--target", "wsfleet", "--url",
                        f"ws://127.0.0.1:{edge.ws_port}/ws", "--hs256-secret", "x" * 40,
                        "--kid", "k1", "--audience", harness.AUDIENCE, "--scenario", "connect",
                        "--connections", "5", "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    c = json.loads(p.stdout)["connections"]
    assert c["ready"] == 0 and c["failures"] == {"http_401": 5}, c


def test_refuses_non_loopback_target():
    p = subprocess.run([str(bench_binary()), "--target", "ws", "--url", "ws://192.0.2.1:80/",
                        "--scenario", "idle", "--connections", "1"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "not_loopback" in p.stderr
