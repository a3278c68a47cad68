#!/usr/bin/python3
"""Runs wsfleet and its peers side by side with wsfleet-bench and writes the comparison.

Normally started by tools/bench/compare, which installs and builds what is missing first.
Method (see the benchmark brief): every server is a fresh process pinned to one core, all
load runs pinned to the other; scenarios run interleaved (for each repetition, for each
scenario, every target in turn, the order rotating between repetitions), so that ratios
compare runs minutes apart, never days apart. Machine busyness is recorded around every
run and runs where something else used the cores are flagged.
"""

import argparse
import datetime
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# Run from the source tree: leave no __pycache__ beside the scripts.
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import servers  # noqa: E402
import scenarios as scen  # noqa: E402
import report  # noqa: E402
import machine  # noqa: E402

# floor: wsfleet-bench-floor, the cheapest server of the `ws` peer protocol (one send() per
# delivery, nothing else): what the kernel alone costs in the same run.
ALL_TARGETS = ["wsfleet", "nats", "mqtt", "ws", "socketio", "floor"]



# compare.d/ -> bench/ -> tools/ -> the repository root
REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def relative_to_repo(arg):
    if isinstance(arg, str) and os.path.isabs(arg) and arg.startswith(REPO_ROOT + os.sep):
        return os.path.relpath(arg, REPO_ROOT)
    return arg

def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="tools/bench/compare",
        description="Benchmark wsfleet against nats-server, mosquitto, node ws, socket.io "
        "and the floor peer on this machine, interleaved, and write JSON, a ratio table and "
        "a chart.")
    p.add_argument("--quick", action="store_true",
                   help="small connection counts and short windows (about a minute)")
    p.add_argument("--out", default="docs/benchmarks",
                   help="directory for results.json and the chart (default docs/benchmarks)")
    p.add_argument("--reps", type=int, default=None,
                   help="repetitions of every (scenario, target) (default 2, --quick 1)")
    p.add_argument("--targets", default=",".join(ALL_TARGETS),
                   help="comma-separated subset of " + ",".join(ALL_TARGETS))
    p.add_argument("--scenarios", default=None,
                   help="comma-separated subset of the scenario names (see --list)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    p.add_argument("--server-core", type=int, default=0, help="core the servers run on")
    p.add_argument("--load-core", default="1", help="core list the load runs on (taskset -c)")
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds after which remaining runs are skipped "
                   "(default 540, --quick 150)")
    p.add_argument("--noisy-threshold", type=float, default=0.15,
                   help="a run is flagged noisy when other processes used more than this "
                   "fraction of the server core (default 0.15)")
    p.add_argument("--noisy-retries", type=int, default=None,
                   help="times a noisy run is repeated at once, keeping the quietest "
                   "(default 1, --quick 0)")
    p.add_argument("--quiet-wait", type=float, default=None,
                   help="before each run, wait up to this many seconds for the server core "
                   "to be idle (default 10, --quick 3)")
    p.add_argument("--smoke", action="store_true",
                   help="only start every server, check a WebSocket handshake, stop it")
    p.add_argument("--keep-workdir", action="store_true",
                   help="keep the temporary directory with configs and server logs")
    # Paths, filled in by tools/bench/compare.
    p.add_argument("--edge", default="build/bin/wsfleet-edge")
    p.add_argument("--ctl", default="build/bin/wsfleetctl")
    p.add_argument("--bench", default="build/bin/wsfleet-bench")
    p.add_argument("--floor", default="build/bin/wsfleet-bench-floor")
    p.add_argument("--node-modules", default="build/bench-peers/node_modules")
    p.add_argument("--peers", default="tools/bench/peers")
    a = p.parse_args(argv)
    if a.reps is None:
        a.reps = 1 if a.quick else 2
    if a.noisy_retries is None:
        a.noisy_retries = 0 if a.quick else 1
    if a.quiet_wait is None:
        a.quiet_wait = 1.0 if a.quick else 2.0
    if a.time_budget is None:
        a.time_budget = 150.0 if a.quick else 540.0
    a.targets = [t for t in a.targets.split(",") if t]
    for t in a.targets:
        if t not in ALL_TARGETS:
            p.error(f"unknown target {t!r}")
    if a.reps < 1 or a.reps > 10:
        p.error("--reps must be 1..10")
    return a


def check_limits(args, plan):
    """Refuse plans that cannot work here instead of failing half-way."""
    cores = os.cpu_count() or 1
    if cores < 2:
        sys.exit("compare: needs at least 2 cores (server and load on different cores)")
    nofile = machine.open_file_limit()
    for s in plan:
        per_proc = -(-s.connections // max(1, s.procs))
        if per_proc + 64 > nofile:
            sys.exit(f"compare: scenario {s.name} needs {per_proc} sockets per load process, "
                     f"open-file limit is {nofile}: raise --procs")


def run_bench(cmd, timeout_s):
    """Runs the bench in its own process group; whatever happens (timeout, signal,
    exception) the whole group, forked workers included, is gone when this returns."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout_s)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            proc.wait(timeout=10)


def run_one(args, env, target, sc, rep, workdir, quiet_wait):
    """Fresh server, one bench run, measurements around it. Returns the run record."""
    record = {"target": target, "scenario": sc.name, "rep": rep,
              "started_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
    record["waited_for_quiet_s"] = machine.wait_quiet(args.server_core, args.noisy_threshold,
                                                      quiet_wait) if quiet_wait > 0 else 0.0
    srv = servers.make(target, env, os.path.join(workdir, f"{rep}-{sc.name}-{target}-"
                                                 f"{secrets.token_hex(3)}"))
    try:
        srv.start(args.server_core)
        record["server"] = srv.describe()
        cmd = scen.bench_command(env, sc, srv, args.load_core)
        # Recorded without secrets and with paths relative to the repository, so results
        # can be committed and compared across machines.
        record["bench_command"] = [
            "<secret>" if i > 0 and cmd[i - 1] == "--hs256-secret" else relative_to_repo(x)
            for i, x in enumerate(cmd)]
        before = machine.snapshot(srv.pid)
        sampler = machine.RssSampler(srv.pid)
        sampler.start()
        t0 = time.monotonic()
        try:
            proc = run_bench(cmd, sc.timeout_s)
        finally:
            sampler.stop()
        elapsed = time.monotonic() - t0
        after = machine.snapshot(srv.pid)
        record["elapsed_s"] = round(elapsed, 3)
        record["bench_exit"] = proc.returncode
        record["bench_stderr_tail"] = proc.stderr[-2000:]
        bench_json = scen.parse_bench_json(proc.stdout)
        record["bench"] = bench_json
        record["machine"] = machine.compare_snapshots(before, after, args.server_core,
                                                      args.load_core)
        record["server_measured"] = {
            "cpu_s": machine.delta(before, after, "server_cpu_s"),
            "rss_before_kb": before.get("server_rss_kb"),
            "rss_peak_kb": sampler.peak_kb,
            "rss_after_kb": after.get("server_rss_kb"),
            "alive_after": srv.alive(),
        }
        record["noisy"] = record["machine"].get("other_on_server_core", 0.0) > \
            args.noisy_threshold
        record["metrics"] = scen.metrics(sc, bench_json, record)
        record["ok"] = proc.returncode == 0 and bench_json is not None and srv.alive()
        if not srv.alive():
            record["error"] = f"{target} died during the run"
    except subprocess.TimeoutExpired:
        record["ok"] = False
        record["error"] = f"bench did not finish within {sc.timeout_s} s"
    except (servers.StartError, OSError, subprocess.SubprocessError) as e:
        # One run failing (a binary being rebuilt, a port taken) must not end the others.
        record["ok"] = False
        record["error"] = f"{type(e).__name__}: {e}"
    finally:
        record["server_log_tail"] = srv.stop()
        record["server_start_s"] = srv.start_s
        record["server_stop_s"] = srv.stop_s
    return record


def smoke(args, env, workdir):
    ok = True
    for target in args.targets:
        srv = servers.make(target, env, os.path.join(workdir, f"smoke-{target}"))
        try:
            srv.start(args.server_core)
            status = servers.handshake(srv)
            good = status.startswith("101")
            ok &= good
            print(f"{target:9} pid {srv.pid:7} port {srv.port:5} affinity "
                  f"{machine.affinity(srv.pid)}  handshake: {status}")
        except (servers.StartError, OSError, subprocess.SubprocessError) as e:
            ok = False
            print(f"{target:9} FAILED to start: {type(e).__name__}: {e}")
        finally:
            tail = srv.stop()
            if srv.pid and machine.pid_alive(srv.pid):
                ok = False
                print(f"{target:9} still running after stop")
            if not ok and tail:
                print(tail)
    return 0 if ok else 1


def main(argv):
    args = parse_args(argv)
    plan = scen.plan(args.quick)
    if args.list:
        for s in plan:
            print(f"{s.name:16} {s.describe()}")
        return 0
    if args.scenarios:
        wanted = args.scenarios.split(",")
        unknown = set(wanted) - {s.name for s in plan}
        if unknown:
            sys.exit(f"compare: unknown scenario(s) {', '.join(sorted(unknown))}")
        plan = [s for s in plan if s.name in wanted]
    check_limits(args, plan)

    # This script's own work (sampling, bookkeeping) must not land on the server core.
    load_cpus = machine.parse_cpu_list(args.load_core)
    if args.server_core in load_cpus:
        sys.exit("compare: the server core must not be one of the load cores")
    os.sched_setaffinity(0, load_cpus)

    env = servers.Env(edge=os.path.abspath(args.edge), ctl=os.path.abspath(args.ctl),
                      bench=os.path.abspath(args.bench),
                      node_modules=os.path.abspath(args.node_modules),
                      peers=os.path.abspath(args.peers), floor=os.path.abspath(args.floor))
    workdir = tempfile.mkdtemp(prefix="wsfleet-compare-")
    servers.install_signal_cleanup()
    try:
        if args.smoke:
            return smoke(args, env, workdir)
        if not os.access(env.bench, os.X_OK):
            sys.exit(f"compare: no bench binary at {env.bench}")
        return run_all(args, env, plan, workdir)
    finally:
        servers.stop_all()
        if args.keep_workdir:
            print(f"compare: work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _noise(rec):
    if not rec.get("ok"):
        return 2.0  # a failed attempt is worse than any noisy one
    return rec.get("machine", {}).get("other_on_server_core", 1.0)


class Budget:
    """Keeps the whole comparison within --time-budget. Extras (waiting for a quiet core,
    repeating a noisy run) are spent only from the slack left after the planned runs,
    estimated from how long each scenario's runs took so far."""

    def __init__(self, seconds, planned):
        self.seconds = seconds
        self.started = time.monotonic()
        self.left = dict(planned)  # scenario name -> runs still to do
        self.took = {}             # scenario name -> durations of attempts so far
        self.guess = {}

    def plan_guess(self, sc):
        # Before any run of a scenario: set-up at ~3000 connections/s, window, drain, and
        # a second for starting and stopping the server.
        self.guess[sc.name] = sc.connections / 3000 + sc.duration_s + sc.drain_s + 1.5

    def used(self):
        return time.monotonic() - self.started

    def expired(self):
        return self.used() > self.seconds

    def estimate(self, name):
        took = self.took.get(name)
        return statistics.mean(took) if took else self.guess.get(name, 5.0)

    def slack(self):
        need = sum(n * self.estimate(name) for name, n in self.left.items())
        return self.seconds - self.used() - need

    def record(self, name, seconds):
        self.took.setdefault(name, []).append(seconds)

    def done(self, name):
        self.left[name] -= 1


def run_all(args, env, plan, workdir):
    started = time.monotonic()
    runs = []
    total = args.reps * len(plan) * len(args.targets)
    budget = Budget(args.time_budget, {sc.name: args.reps * len(args.targets) for sc in plan})
    for sc in plan:
        budget.plan_guess(sc)
    n = 0
    for rep in range(args.reps):
        # Rotate the target order each repetition so that no target always runs first
        # (a warm page cache or a cooling CPU would otherwise favour one of them).
        order = args.targets[rep % len(args.targets):] + args.targets[:rep % len(args.targets)]
        for sc in plan:
            for target in order:
                n += 1
                budget.done(sc.name)
                if budget.expired():
                    runs.append({"target": target, "scenario": sc.name, "rep": rep,
                                 "ok": False, "skipped": "time budget exhausted"})
                    print(report.progress_line(n, total, runs[-1]), flush=True)
                    continue
                quiet = args.quiet_wait if budget.slack() > args.quiet_wait else 0.0
                t0 = time.monotonic()
                rec = run_one(args, env, target, sc, rep, workdir, quiet)
                budget.record(sc.name, time.monotonic() - t0)
                discarded = []
                for _ in range(args.noisy_retries):
                    if not rec.get("noisy") or budget.slack() < budget.estimate(sc.name):
                        break
                    t0 = time.monotonic()
                    again = run_one(args, env, target, sc, rep, workdir, quiet)
                    budget.record(sc.name, time.monotonic() - t0)
                    worse, rec = sorted([rec, again], key=_noise, reverse=True)
                    discarded.append(worse)
                if discarded:
                    rec["discarded_noisy_attempts"] = discarded
                runs.append(rec)
                print(report.progress_line(n, total, rec), flush=True)
    wall = time.monotonic() - started

    results = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "wall_s": round(wall, 1),
        "quick": args.quick,
        "reps": args.reps,
        "targets": args.targets,
        "method": {
            "server_core": args.server_core,
            "load_cores": args.load_core,
            "order": "for each repetition, for each scenario, every target in turn; the "
                     "target order rotates by one each repetition",
            "fresh_server_per_run": True,
            "noisy_threshold": args.noisy_threshold,
            "noisy_definition": "CPU used on the server core by processes other than the "
                                "server, as a fraction of the run's wall time",
            "ratios": "per repetition wsfleet/peer, then the median over repetitions; "
                      "runs flagged noisy are left out when a clean repetition exists",
        },
        "scenarios": [s.to_json() for s in plan],
        "wsfleet_config": servers.WSFLEET_CHOICES,
        "environment": machine.environment(env),
        "runs": runs,
    }
    results["summary"] = report.summarise(results, plan)

    os.makedirs(args.out, exist_ok=True)
    out_json = os.path.join(args.out, "results.json")
    with open(out_json + ".tmp", "w") as f:
        json.dump(results, f, indent=1, sort_keys=False)
        f.write("\n")
    os.replace(out_json + ".tmp", out_json)
    print()
    print(report.table(results, plan))
    chart = report.chart(results, plan, os.path.join(args.out, "comparison.png"))
    print(f"\nresults: {out_json}" + (f"\nchart:   {chart}" if chart else ""))
    failed = [r for r in runs if not r.get("ok")]
    if failed:
        print(f"{len(failed)} of {len(runs)} runs failed or were skipped (see results.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
