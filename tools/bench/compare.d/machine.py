"""What the machine and the server process did during a run, read from /proc."""

import os
import platform
import resource
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def pid_alive(pid):
    stat = read(f"/proc/{pid}/stat")
    # A zombie still has a /proc entry; it is gone for our purposes.
    return stat is not None and stat[stat.rfind(")") + 2:].split()[0] != "Z"


def process_cpu_s(pid):
    stat = read(f"/proc/{pid}/stat")
    if stat is None:
        return None
    # Fields after the command name, which may itself contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def process_rss_kb(pid):
    status = read(f"/proc/{pid}/status")
    if status is None:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def affinity(pid):
    try:
        cpus = sorted(os.sched_getaffinity(pid))
    except OSError:
        return "?"
    return ",".join(str(c) for c in cpus)


def cpu_ticks():
    """{"cpu": {...}, "cpu0": {...}, ...}: clock ticks since boot spent by tasks (user,
    nice, system), in interrupts (irq, softirq), stolen by the hypervisor, and in all."""
    out = {}
    for line in (read("/proc/stat") or "").splitlines():
        if not line.startswith("cpu"):
            continue
        name, *vals = line.split()
        v = [int(x) for x in vals[:8]] + [0] * max(0, 8 - len(vals))
        out[name] = {"task": v[0] + v[1] + v[2], "irq": v[5] + v[6], "steal": v[7],
                     "total": sum(v)}
    return out


def snapshot(server_pid):
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "t": time.monotonic(),
        "loadavg": (read("/proc/loadavg") or "").split()[:3],
        "cpu": cpu_ticks(),
        "server_cpu_s": process_cpu_s(server_pid) if server_pid else None,
        "server_rss_kb": process_rss_kb(server_pid) if server_pid else None,
        "children_cpu_s": ru.ru_utime + ru.ru_stime,
    }


def delta(before, after, key):
    a, b = before.get(key), after.get(key)
    if a is None or b is None:
        return None
    return round(b - a, 4)


def _fractions(before, after):
    """{core: {"task": f, "irq": f, "steal": f}} as fractions of that core's time."""
    out = {}
    for name, a in after["cpu"].items():
        b = before["cpu"].get(name)
        if b is None or a["total"] <= b["total"]:
            continue
        span = a["total"] - b["total"]
        out[name] = {k: round((a[k] - b[k]) / span, 3) for k in ("task", "irq", "steal")}
    return out


def compare_snapshots(before, after, server_core, load_cores):
    wall = after["t"] - before["t"]
    busy = _fractions(before, after)
    out = {"wall_s": round(wall, 3), "loadavg_before": before["loadavg"],
           "loadavg_after": after["loadavg"], "busy": busy}
    server_cpu = delta(before, after, "server_cpu_s") or 0.0
    load_cpu = delta(before, after, "children_cpu_s") or 0.0
    core = busy.get(f"cpu{server_core}")
    if core is not None and wall > 0:
        # Task time on the server core not explained by the server itself: other
        # engineers' builds or anything else the scheduler put there. Interrupt time is
        # left out: loopback traffic of the run itself is processed there in softirq.
        out["other_on_server_core"] = round(max(0.0, core["task"] * wall - server_cpu) / wall, 3)
        out["steal_on_server_core"] = core["steal"]
    if "cpu" in busy and wall > 0:
        ncpu = max(1, len(after["cpu"]) - 1)
        all_task_s = busy["cpu"]["task"] * wall * ncpu
        out["other_all_cores"] = round(max(0.0, all_task_s - server_cpu - load_cpu) / wall, 3)
    out["load_cpu_s"] = round(load_cpu, 3)
    return out


def wait_quiet(core, threshold, max_wait_s, step_s=0.5):
    """Waits (at most max_wait_s) until `core` spent less than `threshold` of a step in
    tasks; returns the seconds waited. Nothing of ours runs there between runs, so busy
    time there is someone else's."""
    start = time.monotonic()
    name = f"cpu{core}"
    while True:
        a = cpu_ticks().get(name)
        time.sleep(step_s)
        b = cpu_ticks().get(name)
        if a is None or b is None or b["total"] <= a["total"]:
            break
        if (b["task"] - a["task"]) / (b["total"] - a["total"]) < threshold:
            break
        if time.monotonic() - start >= max_wait_s:
            break
    return round(time.monotonic() - start, 2)


class RssSampler:
    """Peak RSS of the server while the bench runs (the bench may drop its sockets
    before exiting, so a reading afterwards would miss the peak)."""

    def __init__(self, pid, period_s=0.1):
        self.pid = pid
        self.period_s = period_s
        self.peak_kb = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=2)

    def _run(self):
        while not self._stop.is_set():
            rss = process_rss_kb(self.pid)
            if rss is not None and (self.peak_kb is None or rss > self.peak_kb):
                self.peak_kb = rss
            self._stop.wait(self.period_s)


def parse_cpu_list(spec):
    """taskset-style list: "1", "1,3", "1-3"."""
    cpus = set()
    for part in str(spec).split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            cpus.update(range(int(lo), int(hi) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def open_file_limit():
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _version(cmd):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=10)
        return p.stdout.strip().splitlines()[0] if p.stdout.strip() else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _npm_version(node_modules, pkg):
    import json
    try:
        with open(os.path.join(node_modules, pkg, "package.json")) as f:
            return json.load(f).get("version")
    except (OSError, ValueError):
        return None


def environment(env):
    cpu_model = None
    for line in (read("/proc/cpuinfo") or "").splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    git = None
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, timeout=10,
                             cwd=os.path.dirname(env.peers)).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "kernel": platform.release(),
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "open_file_limit": open_file_limit(),
        "wsfleet_commit": git,
        "versions": {
            "wsfleet-edge": _version([env.edge, "--version"]),
            "nats-server": _version(["nats-server", "--version"]),
            "mosquitto": _version(["mosquitto", "-h"]),
            "node": _version(["node", "--version"]),
            "ws": _npm_version(env.node_modules, "ws"),
            "socket.io": _npm_version(env.node_modules, "socket.io"),
        },
    }
