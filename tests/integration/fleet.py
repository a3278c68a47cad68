"""A fleet of regions for the cross-region tests: a NatsSupercluster, a topology file,
edges on it (harness.Edge in region mode with `[node] topology`) and wsfleet-bridge
processes.

- Bridge: one wsfleet-bridge process at a time (across restarts) with its own TOML,
  admin port and log, modelled on harness.Edge: ready when GET /readyz answers 200,
  stop() with SIGTERM reporting crashes, kill() with SIGKILL, metrics(), status().
- Fleet: writes topology.toml (every region's NATS URLs and its first edge's public URL,
  pins, weights, failover), starts N edges and M bridges per region, stops them all.
  owner(tenant, channel) asks `wsfleetctl topology owner` about the generated file.

Namespaces: the demo and other tenants get one durable namespace per region, named
after it and pinned to it (FleetNamespaces), so a test knows a channel's owner from its
name: "eu:room-1" is owned by region eu. History there has no age limit, so that a
catch-up from any offset can be proven complete.
"""

import json
import os
import subprocess
from pathlib import Path

import harness
from harness import Metrics, deep_merge, http, to_toml
from managed_process import ManagedProcess
from ports import free_port
from region_util import region_conf

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def bridge_binary():
    return harness.bin_dir() / "wsfleet-bridge"


def bridge_available():
    return bridge_binary().exists()


class BridgeFailure(AssertionError):
    pass


# ------------------------------------------------------------------------------ bridge
def default_bridge_conf(region, topology, instance, admin_port, cluster):
    nats = {"servers": cluster.urls, "request_timeout_ms": 2000}
    if cluster.token is not None:
        nats["token"] = cluster.token
    elif cluster.user is not None:
        nats["user"] = cluster.user
        nats["password"] = cluster.password or ""
    return {
        "bridge": {"region": region, "topology": str(topology), "instance": instance,
                   "log_level": "debug"},
        "nats": nats,
        "admin": {"listen": f"127.0.0.1:{admin_port}"},
        # The documented defaults, spelled out: the tests' bounds are derived from them.
        "links": {"heartbeat_interval_ms": 500, "down_after_ms": 2000,
                  "forward_timeout_ms": 2000, "max_pending_forwards": 10000,
                  "interest_refresh_ms": 2000, "interest_linger_ms": 1000},
    }


class Bridge(ManagedProcess):
    """One wsfleet-bridge of a region: its conf, admin port and log in its own directory."""

    failure = BridgeFailure
    ready_timeout_s = READY_TIMEOUT_S
    stop_timeout_s = STOP_TIMEOUT_S

    def __init__(self, workdir, region, topology, cluster, instance, overrides=None):
        super().__init__()
        self.name = instance
        self.region = region
        self.dir = Path(workdir) / instance
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "bridge.toml"
        self.log_path = self.dir / "bridge.log"
        self.admin_port = free_port()
        self.conf = default_bridge_conf(region, topology, instance, self.admin_port, cluster)
        if overrides:
            deep_merge(self.conf, overrides)
        self.write_conf()

    def write_conf(self):
        self.conf_path.write_text(to_toml(self.conf) + "\n")

    def update_conf(self, overrides):
        deep_merge(self.conf, overrides)
        self.write_conf()

    # ---- lifecycle
    def _command(self):
        return [bridge_binary(), "--config", self.conf_path]

    def _not_ready(self):
        try:
            r = http(self.admin_port, "GET", "/readyz", timeout=0.5)
            if r.status == 200:
                return None
            return f"HTTP {r.status} {r.body[:200]!r}"
        except Exception as e:  # noqa: BLE001 - a half-started server may send garbage
            return repr(e)

    # ---- admin
    def metrics(self):
        r = http(self.admin_port, "GET", "/metrics")
        assert r.status == 200, r
        return Metrics(r.body.decode("utf-8"))

    def metric(self, name, **labels):
        return self.metrics().value(name, **labels)

    def status(self):
        r = http(self.admin_port, "GET", "/status")
        assert r.status == 200, r
        return json.loads(r.body)

    def ready(self):
        try:
            return http(self.admin_port, "GET", "/readyz", timeout=1.0).status == 200
        except OSError:
            return False


# ------------------------------------------------------------------------------- fleet
def region_namespaces(regions):
    """One durable namespace per region, named after it, without an age limit."""
    return {r: {"history_size": 1000, "history_ttl_ms": 0, "ordering": "owner",
                "presence": False}
            for r in regions}


def default_pins(regions, tenants=("demo", "other")):
    return [(t, r, r) for t in tenants for r in regions]


class Fleet:
    """Edges and bridges of every region of a started NatsSupercluster, sharing one
    topology file. Nothing runs before start()."""

    def __init__(self, workdir, supercluster, edges_per_region=1, bridges_per_region=1,
                 pins=None, weights=None, failover=None, edge_overrides=None,
                 bridge_overrides=None, moves=()):
        """pins: [(tenant, namespace, region)] (default: every region's namespace pinned
        to it, see region_namespaces); weights: {region: 1..1000}; failover: {region:
        [regions]}; moves: [(tenant, channel, region)]; edge_overrides /
        bridge_overrides: deep-merged into every edge's / bridge's conf."""
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.sc = supercluster
        self.regions = list(supercluster.regions)
        self.pins = list(default_pins(self.regions) if pins is None else pins)
        self.weights = dict(weights or {})
        self.failover = dict(failover or {})
        self.moves = list(moves)
        self.topology_path = self.workdir / "topology.toml"
        self.edges = {r: [] for r in self.regions}
        self.bridges = {r: [] for r in self.regions}
        ns = region_namespaces(self.regions)
        for r in self.regions:
            cluster = supercluster.region(r)
            for i in range(edges_per_region):
                name = f"edge-{r}-{i + 1}"
                # One test client publishes hundreds of messages as fast as acks come
                # back: the per-connection and per-user rate limits (test_rate_limits.py
                # covers them) are off here.
                over = region_conf(cluster, name, node={"topology": str(self.topology_path)},
                                   tenants={"demo": {"namespaces": ns},
                                            "other": {"namespaces": ns}},
                                   limits={"commands_per_s": 0, "user_publishes_per_s": 0,
                                           "channel_publishes_per_s": 0})
                deep_merge(over, edge_overrides or {})
                self.edges[r].append(harness.Edge(self.workdir, over, name=name))
            for i in range(bridges_per_region):
                self.bridges[r].append(Bridge(self.workdir, r, self.topology_path, cluster,
                                              f"{r}-b{i + 1}", bridge_overrides))
        self.write_topology()

    # ---- topology
    def topology(self):
        regions = []
        for r in self.regions:
            entry = {"name": r, "nats_urls": self.sc.region(r).urls,
                     "public_urls": [self.edges[r][0].url()] if self.edges[r] else
                     [f"ws://127.0.0.1:{free_port()}/ws"]}
            if r in self.failover:
                entry["failover"] = list(self.failover[r])
            if r in self.weights:
                entry["weight"] = int(self.weights[r])
            regions.append(entry)
        doc = {"regions": regions}
        if self.pins:
            doc["pins"] = [{"tenant": t, "namespace": ns, "region": r}
                           for t, ns, r in self.pins]
        if self.moves:
            doc["moves"] = [{"tenant": t, "channel": c, "region": r}
                            for t, c, r in self.moves]
        return doc

    def write_topology(self):
        self.topology_path.write_text(to_toml(self.topology()) + "\n")

    def owner(self, tenant, channel, down=()):
        """The owner region `wsfleetctl topology owner` names for the generated file."""
        args = [str(harness.ctl_binary()), "topology", "owner", str(self.topology_path),
                "--tenant", tenant, "--channel", channel]
        for r in down:
            args += ["--down", r]
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, f"{args}: rc={p.returncode} {p.stderr}"
        return p.stdout.split()[0]   # "<region> (<why>)"

    # ---- processes
    def start(self):
        for r in self.regions:
            for e in self.edges[r]:
                e.start()
        for r in self.regions:
            for b in self.bridges[r]:
                b.start()
        return self

    def edge(self, region, i=0):
        return self.edges[region][i]

    def bridge(self, region, i=0):
        return self.bridges[region][i]

    def processes(self):
        return [p for r in self.regions for p in self.bridges[r] + self.edges[r]]

    def check_alive(self):
        for p in self.processes():
            p.check_alive()

    def stop(self):
        """Stops every bridge, then every edge; returns the problems found (crashes, hung
        shutdowns) with log tails, empty when all went well."""
        problems = []
        for p in self.processes():
            try:
                p.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                problems.append(f"{p.name}: stop failed: {exc!r}")
            if p.problems:
                problems.append("; ".join(p.problems) + "\n" + p.log_tail())
        return problems

    def links_up(self, a, b):
        """1 when every running bridge of a sees b up and every one of b sees a up, 0 when
        all of them see it down, None in between."""
        seen = set()
        for here, there in ((a, b), (b, a)):
            for br in self.bridges[here]:
                if br.alive():
                    seen.add(br.metrics().value("wsfleet_bridge_link_up", region=there))
        return seen.pop() if len(seen) == 1 else None

    def wait_links(self, up=True, pairs=None, timeout=15.0):
        """Until the bridges see every pair of regions (or the given pairs) up / down."""
        if pairs is None:
            pairs = [(a, b) for i, a in enumerate(self.regions) for b in self.regions[i + 1:]]
        want = 1 if up else 0
        for a, b in pairs:
            harness.wait_until(lambda: self.links_up(a, b) == want, timeout,
                               what=f"bridge links {a}<->{b} {'up' if up else 'down'}")

    # ---- bridge metrics summed over a region
    def bridge_metric(self, of_region, name, **labels):
        """Sum of a bridge metric over the region's bridges that are running."""
        return sum(b.metrics().value(name, **labels)
                   for b in self.bridges[of_region] if b.alive())


_uniq = 0


def channel(owner, stem="room"):
    """A fresh channel of the namespace pinned to region `owner`."""
    global _uniq
    _uniq += 1
    return f"{owner}:{stem}-{os.getpid()}-{_uniq}"
