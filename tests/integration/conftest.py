"""pytest fixtures: real edge processes, stopped (and checked for crashes) after use.

- edge_factory(overrides=None, start=True) -> Edge: a fresh edge with its own conf,
  ports and storage for this test only.
- edge: one default edge shared by the tests of a module (cheap), checked after every
  test: if a test killed it, that test fails and the edge is started again so the next
  tests still run against a live process.
- nats_cluster_factory(n=3, start=True, **opts) -> NatsCluster: nats-servers of one
  region in this test's tmp dir (opts: region, token, user, password, max_file_store,
  self_route, extra_conf, ...), stopped at the end.
- nats_cluster: a fresh, started 3-server region "eu" with JetStream.
- nats_supercluster_factory(regions=("us", "eu"), servers_per_region=1, start=True,
  partitionable=False, **opts) -> NatsSupercluster: one cluster per region joined by
  gateways (through proxies of the test process with partitionable=True: sc.cut(a, b),
  sc.heal(a, b), sc.wait_gateways(a, b, connected)), stopped at the end.
- fleet_factory(regions=("us", "eu"), servers_per_region=1, edges_per_region=1,
  bridges_per_region=1, pins=None, partitionable=False, jetstream=True) -> fleet.Fleet:
  a supercluster with edges and wsfleet-bridge processes in every region (fleet.py).
All fail the test when a nats-server died without the test killing it.
"""

import sys
from pathlib import Path

import pytest

sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))

import fleet as fleetm  # noqa: E402
import harness  # noqa: E402
import nats_cluster as natsc  # noqa: E402


def _finish(edges):
    problems = []
    for e in edges:
        try:
            e.stop()
        except Exception as exc:  # noqa: BLE001 - keep stopping the others
            problems.append(f"{e.name}: stop failed: {exc!r}")
        if e.problems:
            problems.append("; ".join(e.problems) + "\n" + e.log_tail())
    if problems:
        pytest.fail("edge process problem(s):\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def edge_factory(tmp_path):
    edges = []

    def make(overrides=None, start=True, name=None):
        e = harness.Edge(tmp_path, overrides, name=name)
        edges.append(e)
        if start:
            e.start()
        return e

    yield make
    _finish(edges)


@pytest.fixture(scope="module")
def _module_edge(tmp_path_factory):
    e = harness.Edge(tmp_path_factory.mktemp("shared"))
    e.start()
    yield e
    _finish([e])


@pytest.fixture
def edge(_module_edge):
    yield _module_edge
    e = _module_edge
    if not e.alive():
        rc = e.proc.returncode if e.proc else None
        tail = e.log_tail()
        e.problems.clear()
        e.start()  # for the next tests
        pytest.fail(f"the edge died during this test (rc={rc})\n{tail}", pytrace=False)


@pytest.fixture
def es_key():
    return harness.es_key()


@pytest.fixture
def cx():
    """cx(edge, user="alice", **connect_kw) -> a client closed when the test ends."""
    opened = []

    def connect(edge, user="alice", **kw):
        c = edge.connect(user, **kw)
        opened.append(c)
        return c

    yield connect
    for c in opened:
        c.close(timeout=0.5)


def _finish_nats(clusters):
    """clusters: NatsCluster or NatsSupercluster objects (both have .servers)."""
    problems = []
    for c in clusters:
        for s in c.servers:
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                problems.append(f"{s.name}: stop failed: {exc!r}")
            if s.problems:
                problems.append("; ".join(s.problems) + "\n" + s.log_tail())
        if hasattr(c, "close_proxies"):
            c.close_proxies()
            problems += c.proxy_problems
    if problems:
        pytest.fail("nats-server problem(s):\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def nats_cluster_factory(tmp_path):
    if not natsc.nats_server_available():
        pytest.skip(f"{natsc.NATS_SERVER} not installed (Debian package nats-server)")
    clusters = []

    def make(n=3, start=True, **opts):
        c = natsc.NatsCluster(tmp_path / f"nats{len(clusters) + 1}", n=n, **opts)
        clusters.append(c)
        if start:
            c.start()
        return c

    yield make
    _finish_nats(clusters)


@pytest.fixture
def nats_cluster(nats_cluster_factory):
    return nats_cluster_factory()


@pytest.fixture
def nats_supercluster_factory(tmp_path):
    if not natsc.nats_server_available():
        pytest.skip(f"{natsc.NATS_SERVER} not installed (Debian package nats-server)")
    made = []

    def make(regions=("us", "eu"), servers_per_region=1, start=True, **opts):
        sc = natsc.NatsSupercluster(tmp_path / f"super{len(made) + 1}", regions=regions,
                                    servers_per_region=servers_per_region, **opts)
        made.append(sc)
        if start:
            sc.start()
        return sc

    yield make
    _finish_nats(made)


@pytest.fixture
def fleet_factory(tmp_path):
    """fleet_factory(regions=("us", "eu"), servers_per_region=1, edges_per_region=1,
    bridges_per_region=1, pins=None, partitionable=False, jetstream=True, start=True,
    **fleet_opts) -> fleet.Fleet on a fresh NatsSupercluster (fleet.py). Every bridge,
    edge and nats-server is stopped at the end; a crash of any of them fails the test."""
    if not natsc.nats_server_available():
        pytest.skip(f"{natsc.NATS_SERVER} not installed (Debian package nats-server)")
    made = []   # (Fleet or None, NatsSupercluster)

    def make(regions=("us", "eu"), servers_per_region=1, edges_per_region=1,
             bridges_per_region=1, pins=None, partitionable=False, jetstream=True,
             start=True, **fleet_opts):
        if not fleetm.bridge_available():
            pytest.fail(f"{fleetm.bridge_binary()} does not exist (build the wsfleet-bridge "
                        "target; WSFLEET_BIN_DIR names the directory)", pytrace=False)
        n = len(made) + 1
        sc = natsc.NatsSupercluster(tmp_path / f"fleet{n}-nats", regions=regions,
                                    servers_per_region=servers_per_region,
                                    partitionable=partitionable, jetstream=jetstream)
        made.append([None, sc])
        sc.start()
        f = fleetm.Fleet(tmp_path / f"fleet{n}", sc, edges_per_region=edges_per_region,
                         bridges_per_region=bridges_per_region, pins=pins, **fleet_opts)
        made[-1][0] = f
        if start:
            f.start()
        return f

    yield make
    problems = []
    for f, _ in made:
        if f is not None:
            problems += f.stop()
    try:
        _finish_nats([sc for _, sc in made])
    except pytest.fail.Exception as e:
        problems.append(str(e))
    if problems:
        pytest.fail("fleet process problem(s):\n" + "\n\n".join(problems), pytrace=False)
