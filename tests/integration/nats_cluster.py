"""NATS servers for the region tests: real nats-server processes with JetStream on
loopback, a small synchronous NATS client, and the "nothing lost" oracle.

- NatsServer: one nats-server with its own conf, log and JetStream store under a work
  directory; client, route and monitoring ports picked free on 127.0.0.1.
- NatsCluster: N servers of one region (cluster name = region name) routed to each other,
  JetStream meta leader elected and every peer current before it is handed out.
- NatsSupercluster: one NatsCluster per region joined by gateways (interest-only),
  ready when every server has gateways to and from every other region and the one
  supercluster-wide JetStream meta group has a leader; /gatewayz counters per region.
- NatsClient: the client protocol (PUB/HPUB, SUB, MSG/HMSG, PING/PONG, request/reply) and
  JetStream API helpers on top of request().
- DeliveryOracle: classifies messages as delivered, lost, duplicate or reordered.

Written by hand because the test machine has no client library and no `nats` CLI; every
blocking call has a deadline.

What nats-server 2.9.10 answers (checked by test_nats_cluster.py, the tests named here)
-----------------------------------------------------------------------------------------
Same answers standalone and in an R3 cluster unless said otherwise.

(a) Store full (test_fact_a_*). Every refused publish is NOT stored ("seq": 0):
  - server limit (jetstream.max_file_store) reached:
      {"error":{"code":503,"err_code":10023,"description":"insufficient resources"},
       "stream":"S","seq":0}; the log says "JetStream resource limits exceeded for
    server". Standalone: every later publish gets the same. R3: the stream leader also
    steps down, so later publishes get no answer (status 503 no-responders or timeout)
    for seconds.
  - account limit (accounts { A: { jetstream: { max_file: N } } }):
      {"error":{"code":400,"err_code":10002,"description":"resource limits exceeded
       for account"},"stream":"S","seq":0}; smaller messages that still fit are acked.
  - stream max_bytes with discard "new":
      {"error":{"code":503,"err_code":10077,"description":"maximum bytes exceeded"},
       "stream":"S","seq":0}
    BUT with file storage a message that fits by payload size but not as a stored
    record (payload + subject + ~20 bytes; the check seems to add the payload size
    only) is ACKED and the OLDEST message is silently dropped (discard-old behaviour);
    memory storage refuses it as it should. Use
    max_msgs as well when the bound must hold; max_msgs + discard new gives
      {"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},
       "stream":"S","seq":0}
  - creating a stream whose max_bytes exceeds what is left: standalone
    {"code":500,"err_code":10047,"description":"insufficient storage resources
    available"}, R3 {"code":400,"err_code":10005,"description":"no suitable peers for
    placement, insufficient storage"} (inside "error").
(b) Republish (test_fact_b_republish): accepted. {"src","dest"} maps wildcards
    (rp.> -> out.>: rp.a is republished as out.a); "src" defaults to ">"; a dest that
    feeds the stream is refused (err_code 10052, "... forms a cycle"). A republished
    message carries the original headers (Nats-Msg-Id too) plus Nats-Stream,
    Nats-Subject (original subject), Nats-Sequence and Nats-Last-Sequence (the previous
    sequence ON THE SAME SUBJECT, "0" for the first); no Nats-Time-Stamp in 2.9.10.
    headers_only: empty payload plus Nats-Msg-Size (payload length).
(c) $JS.API.STREAM.MSG.GET.<stream> with {"seq":N,"next_by_subj":"subj"}
    (test_fact_c_msg_get_next_by_subj): accepted; returns the first message with
    seq >= N on that subject (wildcards allowed; without "seq" from the start) as
    {"message":{"subject","seq","hdrs"(base64, absent when none),"data"(base64),
    "time"}}; none: {"error":{"code":404,"err_code":10037,"description":"no message
    found"}}; unknown stream: err_code 10059 "stream not found".
(d) Duplicate Nats-Msg-Id inside the window (default 2 min) (test_fact_d_*): the
    original's ack plus "duplicate": {"stream":"S","seq":<original seq>,
    "duplicate":true}, also with another payload or subject; nothing is stored.
(e) A publish that got no ack is not necessarily lost: with 2 of 3 servers down the
    remaining stream leader keeps the proposals and commits them when a quorum is back
    (test_two_of_three_killed_publishes_are_never_acked). Retry with the same
    Nats-Msg-Id.
(f) A one-server "cluster" whose only route is to itself never elects a JetStream meta
    leader (the self route is dropped as a duplicate; the meta group waits for a route,
    gateway or leafnode), so /healthz stays 503. A gateway connection to another
    cluster releases it (test_nats_supercluster.py: the meta group then spans every
    region, with one leader); alone, run it standalone, without a cluster block
    (NatsCluster(n=1) does).
(g) nats-server 2.9.10 exits with status 1 after a clean SIGTERM shutdown.
"""

import base64
import json
import os
import secrets
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import deque, namedtuple
from pathlib import Path

from gateway_proxy import GatewayProxy, Partitions
from managed_process import ManagedProcess
from ports import free_port

NATS_SERVER = os.environ.get("WSFLEET_NATS_SERVER", "/usr/sbin/nats-server")

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0       # JetStream flushes its store on SIGTERM: over a second
DEFAULT_MAX_FILE_STORE = 256 * 1024 * 1024
DEFAULT_MAX_MEMORY_STORE = 32 * 1024 * 1024


def nats_server_available():
    return Path(NATS_SERVER).exists()


class NatsFailure(AssertionError):
    pass


# ------------------------------------------------------------------------------ server
def _conf_string(s):
    return json.dumps(str(s))  # the NATS conf format accepts JSON-quoted strings


class NatsServer(ManagedProcess):
    """One nats-server process at a time (across restarts) with fixed ports and store."""

    failure = NatsFailure
    stop_timeout_s = STOP_TIMEOUT_S
    missing_hint = "package nats-server"

    def __init__(self, workdir, name, cluster="eu", routes=None, cluster_port=None,
                 jetstream=True, max_file_store=DEFAULT_MAX_FILE_STORE,
                 max_memory_store=DEFAULT_MAX_MEMORY_STORE, token=None, user=None,
                 password=None, extra_conf="", standalone=False, system_account=True):
        """routes: cluster ports of the other members; None = a route to itself only.
        standalone: no cluster block at all (plain single-server JetStream).
        system_account=False: no $SYS account (no system events cross routes or
        gateways; clustered JetStream needs it). A gateway block is added by
        configure_gateway()."""
        super().__init__()
        self.name = name
        self.cluster = cluster
        self.dir = Path(workdir) / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "nats.conf"
        self.log_path = self.dir / "nats.log"
        self.store_dir = self.dir / "jetstream"
        self.port = free_port()
        self.cluster_port = cluster_port or free_port()
        self.http_port = free_port()
        self.routes = list(routes) if routes is not None else [self.cluster_port]
        self.jetstream = jetstream
        self.standalone = standalone
        self.max_file_store = max_file_store
        self.max_memory_store = max_memory_store
        self.token = token
        self.user = user
        self.password = password
        self.extra_conf = extra_conf
        self.system_account = system_account
        self.gateway_port = None
        self.gateway_peers = {}    # other gateway (region) name -> its gateway ports
        self.gateway_advertise = None  # port other regions are told to dial (a proxy's)
        self._paused = False
        self.write_conf()

    # ---- configuration
    def conf_text(self):
        lines = [
            f"server_name: {_conf_string(self.name)}",
            f"listen: \"127.0.0.1:{self.port}\"",
            f"http: \"127.0.0.1:{self.http_port}\"",
            "logtime: true",
        ]
        if self.jetstream:
            lines += [
                "jetstream {",
                f"  store_dir: {_conf_string(self.store_dir)}",
                f"  max_file_store: {int(self.max_file_store)}",
                f"  max_memory_store: {int(self.max_memory_store)}",
                "}",
            ]
        if not self.standalone:
            routes = ", ".join(f"\"nats-route://127.0.0.1:{p}\"" for p in self.routes)
            lines += [
                "cluster {",
                f"  name: {_conf_string(self.cluster)}",
                f"  listen: \"127.0.0.1:{self.cluster_port}\"",
                f"  routes: [{routes}]",
                "}",
            ]
        if self.gateway_port is not None:
            lines += [
                "gateway {",
                f"  name: {_conf_string(self.cluster)}",
                f"  listen: \"127.0.0.1:{self.gateway_port}\"",
            ]
            if self.gateway_advertise is not None:
                lines.append(f"  advertise: \"127.0.0.1:{self.gateway_advertise}\"")
            lines.append("  gateways: [")
            for peer, ports in sorted(self.gateway_peers.items()):
                urls = ", ".join(f"\"nats://127.0.0.1:{p}\"" for p in ports)
                lines.append(f"    {{name: {_conf_string(peer)}, urls: [{urls}]}}")
            lines += ["  ]", "}"]
        if not self.system_account:
            lines.append("no_system_account: true")
        if self.token is not None:
            lines += ["authorization {", f"  token: {_conf_string(self.token)}", "}"]
        elif self.user is not None:
            lines += ["authorization {", f"  user: {_conf_string(self.user)}",
                      f"  password: {_conf_string(self.password or '')}", "}"]
        if self.extra_conf:
            lines.append(self.extra_conf)
        return "\n".join(lines) + "\n"

    def write_conf(self):
        self.conf_path.write_text(self.conf_text())

    def configure_gateway(self, port, peers, advertise=None):
        """Joins this server to a supercluster: a gateway named after its cluster,
        listening on `port`, with explicit gateways {region: [gateway ports]} to the
        other clusters. advertise: the port the servers of other regions learn for this
        one by gossip (default: `port`). Takes effect on the next start."""
        assert not self.standalone, "a gateway needs a cluster block"
        self.gateway_port = port
        self.gateway_advertise = advertise
        self.gateway_peers = {r: list(ps) for r, ps in peers.items()}
        self.write_conf()

    @property
    def url(self):
        return f"nats://127.0.0.1:{self.port}"

    @property
    def lonely(self):
        """Clustered with a route to itself only: nats-server drops that route as a
        duplicate, and its JetStream meta group waits for a route, gateway or leafnode
        connection before electing itself, so JetStream stays unavailable until one
        exists (a supercluster member alone in its cluster)."""
        return not self.standalone and self.routes == [self.cluster_port]

    @property
    def meta_group(self):
        """JetStream runs clustered here and a meta leader can be expected (a lonely
        member gets one through its gateway)."""
        return self.jetstream and not self.standalone and \
            (not self.lonely or self.gateway_port is not None)

    # ---- lifecycle
    def _command(self):
        self._paused = False  # the process about to start is not stopped (SIGSTOP)
        return [NATS_SERVER, "-c", self.conf_path]

    def wait_ready(self, timeout=READY_TIMEOUT_S, meta_leader=None):
        """Polls GET /healthz (200 once the server, and JetStream with a meta leader and
        its assets current, is healthy) and, when a meta group is expected, until /jsz
        names a meta leader. A lonely member (see `lonely`) only needs /varz to answer,
        unless meta_leader=True (it has a gateway or leafnode by now)."""
        if meta_leader is None:
            meta_leader = self.meta_group
        path = "/varz" if self.lonely and not meta_leader else "/healthz"

        def not_ready():
            try:
                status, body = self.monitor(path, raw=True)
                if status != 200:
                    return f"{path} HTTP {status} {body[:200]!r}"
                if meta_leader and not self.meta_leader():
                    return "no JetStream meta leader in /jsz"
                return None
            except (OSError, ValueError) as e:
                return repr(e)

        return self._wait_until_ready(timeout, not_ready)

    def _before_sigterm(self):
        # A stopped (SIGSTOP) process would not act on SIGTERM before the timeout.
        if self._paused:
            self.resume()

    def _stop_status(self, rc):
        # nats-server 2.9 exits with status 1 after a clean SIGTERM shutdown ("Server
        # Exiting.."), or dies by the signal when it lands before the handler is set.
        if rc in (1, -signal.SIGTERM):
            return 0
        return rc

    def kill(self):
        """kill -9, as a host crash would; waits for the process to be gone."""
        if self.alive():
            super().kill()
            self._paused = False

    def pause(self):
        """SIGSTOP: the process keeps its sockets but answers nothing."""
        assert self.alive(), f"{self.name} is not running"
        self.proc.send_signal(signal.SIGSTOP)
        self._paused = True

    def resume(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
        self._paused = False

    # ---- monitoring
    def monitor(self, path, raw=False, timeout=2.0, **query):
        """GET http://127.0.0.1:<http_port><path>?<query>; the parsed JSON, or
        (status, body bytes) when raw."""
        if query:
            path += "?" + "&".join(
                f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in query.items())
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://127.0.0.1:{self.http_port}{path}",
                             timeout=timeout) as r:
                status, body = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, body = e.code, e.read()
        if raw:
            return status, body
        if status != 200:
            raise NatsFailure(f"{self.name} GET {path}: HTTP {status} {body[:300]!r}")
        return json.loads(body)

    def varz(self):
        return self.monitor("/varz")

    def routez(self):
        return self.monitor("/routez")

    def jsz(self, **query):
        return self.monitor("/jsz", **query)

    def gatewayz(self, **query):
        return self.monitor("/gatewayz", **query)

    def healthz(self):
        status, body = self.monitor("/healthz", raw=True)
        return status, json.loads(body or b"{}")

    def meta_leader(self):
        """The JetStream meta leader's server name as this server sees it, or None."""
        meta = self.jsz().get("meta_cluster") or {}
        return meta.get("leader") or None


class NatsCluster:
    """N servers of one region routed to each other. n=1 gives a one-server cluster with
    a route to itself."""

    def __init__(self, workdir, n=3, region="eu", name_prefix=None, self_route=False,
                 **server_opts):
        """n=1: a standalone server (no cluster block), or with self_route a cluster
        block routed to itself (JetStream then waits for a gateway or leafnode: see
        NatsServer.lonely). server_opts go to every NatsServer (jetstream,
        max_file_store, max_memory_store, token, user, password, extra_conf)."""
        assert n >= 1
        if n == 1:
            server_opts.setdefault("standalone", not self_route)
        self.region = region
        self.workdir = Path(workdir)
        prefix = name_prefix or f"nats-{region}-"
        ports = [free_port() for _ in range(n)]
        self.servers = []
        for i in range(n):
            routes = None if n == 1 else [p for j, p in enumerate(ports) if j != i]
            self.servers.append(NatsServer(self.workdir, f"{prefix}{i + 1}", cluster=region,
                                           routes=routes, cluster_port=ports[i],
                                           **server_opts))

    def __len__(self):
        return len(self.servers)

    def __getitem__(self, i):
        return self.servers[i]

    @property
    def urls(self):
        return [s.url for s in self.servers]

    @property
    def token(self):
        return self.servers[0].token

    @property
    def user(self):
        return self.servers[0].user

    @property
    def password(self):
        return self.servers[0].password

    @property
    def problems(self):
        return [p for s in self.servers for p in s.problems]

    def start(self, timeout=READY_TIMEOUT_S):
        # The health check needs a meta leader, which needs a quorum: start all first.
        for s in self.servers:
            s.start(wait=False)
        self.wait_ready(timeout)
        return self

    def running(self):
        return [s for s in self.servers if s.alive() and not s._paused]

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        """Every running member healthy, routed to every other running member, and (with
        JetStream) agreeing on one meta leader that sees all running peers current."""
        deadline = time.monotonic() + timeout
        for s in self.running():
            s.wait_ready(max(0.1, deadline - time.monotonic()))
        last = None
        while True:
            for s in self.servers:
                if s.proc is not None and s._sent_signal is None:
                    s._fail_if_exited("while the cluster formed")
            last = self._not_ready_reason()
            if last is None:
                return self
            if time.monotonic() >= deadline:
                tails = "\n".join(s.log_tail(20) for s in self.servers)
                raise NatsFailure(f"cluster {self.region} not ready within {timeout}s: "
                                  f"{last}\n{tails}")
            time.sleep(0.05)

    def _not_ready_reason(self):
        up = self.running()
        names = {s.name for s in up}
        leaders = set()
        try:
            for s in up:
                if len(self.servers) > 1:
                    routed = {r.get("remote_id") for r in s.routez().get("routes", [])}
                    peers = {o.varz()["server_id"] for o in up if o is not s}
                    if not peers <= routed:
                        return f"{s.name} routes to {len(routed)} of {len(peers)} peers"
                if not s.meta_group:
                    continue
                meta = s.jsz().get("meta_cluster") or {}
                if not meta.get("leader"):
                    return f"{s.name} knows no meta leader"
                leaders.add(meta["leader"])
                if meta["leader"] == s.name:
                    current = {r["name"] for r in meta.get("replicas") or []
                               if r.get("current") and not r.get("offline")}
                    missing = names - current - {s.name}
                    if missing:
                        return f"meta leader {s.name}: peers not current: {sorted(missing)}"
        except (OSError, ValueError, KeyError) as e:
            return repr(e)
        if len(leaders) > 1:
            return f"servers disagree on the meta leader: {sorted(leaders)}"
        # In a supercluster the one meta group spans every region: the leader may be
        # in another cluster (NatsSupercluster checks it).
        gatewayed = any(s.gateway_port is not None for s in self.servers)
        if any(s.meta_group for s in up) and not (leaders & names) and not gatewayed:
            return f"meta leader {leaders} is not a running member"
        return None

    def meta_leader(self):
        for s in self.running():
            leader = s.meta_leader()
            if leader:
                return leader
        return None

    def stop(self):
        for s in self.servers:
            s.stop()

    def kill(self, i):
        self.servers[i].kill()

    def restart(self, i, hard=False, wait=True):
        """Restarts member i on its store and ports; with wait, until the cluster is whole
        again."""
        s = self.servers[i]
        if hard:
            s.kill()
        else:
            s.stop()
        s.start(wait=False)
        if wait:
            self.wait_ready()
        return s

    def start_member(self, i, wait=True):
        """Starts a member that was stopped or killed, on its store and ports."""
        self.servers[i].start(wait=False)
        if wait:
            self.wait_ready()
        return self.servers[i]

    def connect(self, i=0, **kw):
        """A NatsClient to member i with the cluster's credentials."""
        s = self.servers[i]
        kw.setdefault("token", s.token)
        kw.setdefault("user", s.user)
        kw.setdefault("password", s.password)
        return NatsClient.connect("127.0.0.1", s.port, **kw)


class NatsSupercluster:
    """One NatsCluster per region (cluster name = gateway name = region), every server
    with explicit gateways to the gateway ports of all servers of the other regions.

    nats-server 2.9.10 runs every account's gateway traffic in interest-only mode from
    the start: a message crosses to a region only when some server there has a
    subscription on its subject, once per interested region. With the system account
    and JetStream on, system traffic (statsz, connect events, the Raft heartbeats of
    the one supercluster-wide JetStream meta group) crosses too, about once a second;
    tests that count client messages exactly run with jetstream=False and
    system_account=False."""

    def __init__(self, workdir, regions=("us", "eu"), servers_per_region=3,
                 partitionable=False, **server_opts):
        """server_opts go to every NatsServer (jetstream, system_account, token, user,
        password, max_file_store, extra_conf, ...). partitionable: every gateway
        connection goes through a proxy of the test process (gateway_proxy.py), so that
        cut(a, b) / heal(a, b) can partition two regions."""
        regions = list(regions)
        assert len(regions) >= 2 and len(set(regions)) == len(regions), regions
        assert servers_per_region >= 1
        self.workdir = Path(workdir)
        # A lone server still needs a cluster block (route to itself) for JetStream
        # to start and for the gateway to carry its cluster's name.
        self.clusters = {r: NatsCluster(self.workdir, n=servers_per_region, region=r,
                                        self_route=True, **server_opts)
                         for r in regions}
        gw_ports = {r: [free_port() for _ in c.servers] for r, c in self.clusters.items()}
        self.partitions = Partitions() if partitionable else None
        self.proxies = {}   # server name -> GatewayProxy
        dial = gw_ports
        if partitionable:
            for r, c in self.clusters.items():
                for s, port in zip(c.servers, gw_ports[r]):
                    self.proxies[s.name] = GatewayProxy(self.partitions, r, s.name, port)
            dial = {r: [self.proxies[s.name].port for s in c.servers]
                    for r, c in self.clusters.items()}
        for r, c in self.clusters.items():
            peers = {o: ps for o, ps in dial.items() if o != r}
            for s, port in zip(c.servers, gw_ports[r]):
                # Gossip must name the proxy too, or servers would learn the real
                # gateway ports and reconnect around it (gateway_proxy.py).
                proxy = self.proxies.get(s.name)
                s.configure_gateway(port, peers, advertise=proxy.port if proxy else None)

    @property
    def regions(self):
        return list(self.clusters)

    @property
    def servers(self):
        return [s for c in self.clusters.values() for s in c.servers]

    @property
    def problems(self):
        return [p for s in self.servers for p in s.problems]

    def region(self, name):
        return self.clusters[name]

    def start(self, timeout=READY_TIMEOUT_S):
        # The meta group spans every region: no server is healthy before all run.
        for s in self.servers:
            s.start(wait=False)
        self.wait_ready(timeout)
        return self

    def stop(self):
        for s in self.servers:
            s.stop()
        self.close_proxies()

    def close_proxies(self):
        """Stops the gateway proxies (after the servers: nothing to relay any more)."""
        for p in self.proxies.values():
            p.close()

    @property
    def proxy_problems(self):
        return list(self.partitions.problems) if self.partitions else []

    # ---- partitions (partitionable=True)
    def _partitions(self):
        assert self.partitions is not None, "NatsSupercluster(partitionable=True) needed"
        return self.partitions

    def cut(self, a, b):
        """Partitions regions a and b both ways: their gateway connections are closed
        and every new one is closed after its CONNECT until heal(a, b). Returns once
        the proxied connections are gone (the servers notice on their own; see
        wait_gateways)."""
        assert a != b and a in self.clusters and b in self.clusters, (a, b)
        self._partitions().cut(a, b)

    def heal(self, a, b):
        """Lets regions a and b connect again (the servers retry about once a second)."""
        self._partitions().heal(a, b)

    def gateway_links(self, a, b):
        """{"a->b": n, "b->a": m}: connections with a connection object in /gatewayz,
        outbound from each side's servers (inbound ones counted on the other side)."""
        out = {}
        for src, dst in ((a, b), (b, a)):
            n = 0
            for s in self.clusters[src].running():
                gz = s.gatewayz()
                if (gz.get("outbound_gateways") or {}).get(dst, {}).get("connection"):
                    n += 1
                n += sum(1 for x in (gz.get("inbound_gateways") or {}).get(dst) or []
                         if x.get("connection"))
            out[f"{src}->{dst}"] = n
        return out

    def wait_gateways(self, a, b, connected=True, timeout=20.0):
        """connected=True: every running server of a has an outbound gateway to b and
        vice versa, each seen inbound on the other side. connected=False: no server of
        either region lists a gateway connection to the other (outbound or inbound),
        and no proxied connection between them is left."""
        def state():
            try:
                if connected:
                    return self._pair_ready(a, b) is None
                links = self.gateway_links(a, b)
                proxied = self.partitions.count(a, b) if self.partitions else 0
                return not any(links.values()) and proxied == 0
            except (OSError, ValueError, NatsFailure):
                return False

        deadline = time.monotonic() + timeout
        while not state():
            if time.monotonic() >= deadline:
                detail = self._pair_ready(a, b) if connected else self.gateway_links(a, b)
                raise NatsFailure(f"gateways {a}<->{b} not "
                                  f"{'connected' if connected else 'gone'} within "
                                  f"{timeout}s: {detail}")
            time.sleep(0.05)

    def _pair_ready(self, a, b):
        """None when regions a and b are connected both ways, else why not."""
        ids = {}
        for src, dst in ((a, b), (b, a)):
            for s in self.clusters[src].running():
                ids[s.name] = s.varz()["server_id"]
        for src, dst in ((a, b), (b, a)):
            inbound = set()
            for s in self.clusters[dst].running():
                for x in (s.gatewayz().get("inbound_gateways") or {}).get(src) or []:
                    inbound.add((x.get("connection") or {}).get("name"))
            for s in self.clusters[src].running():
                out = (s.gatewayz().get("outbound_gateways") or {}).get(dst) or {}
                if not out.get("connection"):
                    return f"{s.name}: no outbound gateway to {dst}"
                if ids[s.name] not in inbound:
                    return f"region {dst}: no inbound gateway from {s.name}"
        return None

    def wait_ready(self, timeout=READY_TIMEOUT_S):
        """Every region whole (routes, see NatsCluster.wait_ready), every server with an
        outbound gateway connection to every other region and seen as an inbound one by
        some server of every other region, and (with
        JetStream) every server naming the same meta leader, which sees all peers of
        all regions current."""
        deadline = time.monotonic() + timeout
        while True:
            for s in self.servers:
                if s.proc is not None and s._sent_signal is None:
                    s._fail_if_exited("while the supercluster formed")
            last = self._not_ready_reason()
            if last is None:
                return self
            if time.monotonic() >= deadline:
                tails = "\n".join(s.log_tail(20) for s in self.servers)
                raise NatsFailure(f"supercluster not ready within {timeout}s: {last}\n"
                                  f"{tails}")
            time.sleep(0.05)

    def _not_ready_reason(self):
        up = [s for c in self.clusters.values() for s in c.running()]
        try:
            for s in up:
                status, body = s.monitor("/varz", raw=True)
                if status != 200:
                    return f"{s.name} /varz HTTP {status}"
            for r, c in self.clusters.items():
                reason = c._not_ready_reason()
                if reason is not None:
                    return f"region {r}: {reason}"
            # Each server connects out to ONE server of every other region, so a
            # server may have no inbound connection at all: check inbound per region,
            # by the server ids the remote ends name.
            ids = {s.name: s.varz()["server_id"] for s in up}
            inbound = {r: set() for r in self.clusters}   # region -> "<src>/<id>"
            for r, c in self.clusters.items():
                others = set(self.clusters) - {r}
                for s in c.running():
                    gz = s.gatewayz()
                    out = {g for g, v in (gz.get("outbound_gateways") or {}).items()
                           if v.get("connection")}
                    if not others <= out:
                        return f"{s.name}: no outbound gateway to {sorted(others - out)}"
                    for src, conns in (gz.get("inbound_gateways") or {}).items():
                        inbound[r] |= {f"{src}/{(x.get('connection') or {}).get('name')}"
                                       for x in conns}
            for r, c in self.clusters.items():
                for src, sc in self.clusters.items():
                    for s in sc.running() if src != r else ():
                        if f"{src}/{ids[s.name]}" not in inbound[r]:
                            return f"region {r}: no inbound gateway from {s.name}"
            meta = [s for s in up if s.meta_group]
            if not meta:
                return None
            leaders = set()
            for s in meta:
                status, body = s.monitor("/healthz", raw=True)
                if status != 200:
                    return f"{s.name} /healthz HTTP {status} {body[:200]!r}"
                leaders.add(s.meta_leader())
            if len(leaders) != 1 or None in leaders:
                return f"servers do not agree on one meta leader: {sorted(map(str, leaders))}"
            leader = next((s for s in meta if s.name in leaders), None)
            if leader is None:
                return f"meta leader {leaders} is not a running server"
            info = leader.jsz().get("meta_cluster") or {}
            current = {p["name"] for p in info.get("replicas") or []
                       if p.get("current") and not p.get("offline")}
            missing = {s.name for s in meta} - current - {leader.name}
            if missing:
                return f"meta leader {leader.name}: peers not current: {sorted(missing)}"
        except (OSError, ValueError, KeyError) as e:
            return repr(e)
        return None

    def meta_leader(self):
        for s in self.servers:
            if s.alive():
                leader = s.meta_leader()
                if leader:
                    return leader
        return None

    def gatewayz(self, region, i=0, **query):
        """/gatewayz of server i of the region, parsed: "outbound_gateways" {region:
        {"connection": {"out_msgs", "in_msgs", "out_bytes", ...}}} (one connection per
        remote region) and "inbound_gateways" {region: [{"connection": {...}}, ...]}."""
        return self.clusters[region][i].gatewayz(**query)

    def gateway_msgs_sent(self, region, to=None):
        """Messages the servers of `region` sent over their outbound gateway connections
        (to every other region, or only to region `to`): the sum of
        outbound_gateways.<remote>.connection.out_msgs. Messages always leave a cluster
        on outbound connections; inbound ones only receive."""
        total = 0
        for s in self.clusters[region].servers:
            if not s.alive():
                continue
            for remote, gw in (s.gatewayz().get("outbound_gateways") or {}).items():
                if to is None or remote == to:
                    total += (gw.get("connection") or {}).get("out_msgs", 0)
        return total

    def gateway_msgs_received(self, region, src=None):
        """Messages the servers of `region` received on inbound gateway connections
        (from every other region, or only from region `src`)."""
        total = 0
        for s in self.clusters[region].servers:
            if not s.alive():
                continue
            for remote, conns in (s.gatewayz().get("inbound_gateways") or {}).items():
                if src is None or remote == src:
                    total += sum((c.get("connection") or {}).get("in_msgs", 0)
                                 for c in conns)
        return total

    def connect(self, region, i=0, **kw):
        """A NatsClient to server i of the region."""
        return self.clusters[region].connect(i, **kw)


# ------------------------------------------------------------------------------ client
class NatsError(Exception):
    pass


class NatsTimeout(NatsError, TimeoutError):
    pass


class NatsClosed(NatsError):
    pass


class NoResponders(NatsError):
    """A request nobody subscribes to (status 503 with no_responders on)."""


class ServerError(NatsError):
    """-ERR from the server (the text without quotes)."""


Msg = namedtuple("Msg", "subject reply headers payload")
MAX_CONTROL_LINE = 64 * 1024


def encode_headers(headers):
    block = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    return block.encode("utf-8")


def parse_headers(block):
    """b"NATS/1.0 503 No Responders\\r\\nK: V\\r\\n\\r\\n" -> {"Status": "503",
    "Description": "No Responders", "K": "V"}. A repeated key keeps its last value."""
    lines = block.decode("utf-8", "replace").split("\r\n")
    out = {}
    status = lines[0][len("NATS/1.0"):].strip() if lines[0].startswith("NATS/1.0") else ""
    if status:
        code, _, desc = status.partition(" ")
        out["Status"] = code
        if desc:
            out["Description"] = desc.strip()
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            out[k.strip()] = v.strip()
    return out


class NatsClient:
    """A synchronous NATS client. Messages that arrive while waiting for something else
    are queued, in order, for next_msg(); server PINGs are answered whenever reading."""

    def __init__(self, sock, info):
        self.sock = sock
        self.info = info
        self.errors = []       # -ERR texts seen after connecting
        self._buf = bytearray()
        self._pending = deque()  # (sid, Msg)
        self._sid = 0
        self._pongs = 0
        self._closed = False
        self._resp_sid = None
        self._resp_prefix = f"_INBOX.{secrets.token_hex(8)}"
        self._req_n = 0

    @classmethod
    def connect(cls, host="127.0.0.1", port=4222, token=None, user=None, password=None,
                name="wsfleet-test", timeout=5.0):
        """Connects, reads INFO, sends CONNECT and a PING, and waits for the PONG; a
        refusal (-ERR 'Authorization Violation') raises ServerError."""
        deadline = time.monotonic() + timeout
        sock = socket.create_connection((host, port), timeout=timeout)
        c = cls(sock, None)
        try:
            op = c._read_op(deadline)
            if op[0] != "INFO":
                raise NatsError(f"expected INFO, got {op!r}")
            c.info = op[1]
            opts = {"verbose": False, "pedantic": False, "headers": True,
                    "no_responders": True, "name": name, "lang": "python-test",
                    "version": "0", "protocol": 1}
            if token is not None:
                opts["auth_token"] = token
            if user is not None:
                opts["user"] = user
                opts["pass"] = password or ""
            c._send(b"CONNECT " + json.dumps(opts).encode() + b"\r\nPING\r\n")
            while True:
                op = c._read_op(deadline)
                if op[0] == "PONG":
                    break
                if op[0] == "-ERR":
                    raise ServerError(op[1])
                c._handle(op)
        except BaseException:
            c.close()
            raise
        return c

    # ---- wire
    def _send(self, data):
        if self._closed:
            raise NatsClosed("client closed")
        try:
            self.sock.settimeout(5.0)
            self.sock.sendall(data)
        except OSError as e:
            raise NatsClosed(f"send failed: {e!r}") from e

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise NatsTimeout("timed out")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise NatsTimeout("timed out") from None
        except OSError as e:
            raise NatsClosed(f"recv failed: {e!r}") from e
        if not data:
            raise NatsClosed("connection closed by the server"
                             + (f" (last error: {self.errors[-1]})" if self.errors else ""))
        self._buf += data

    def _try_parse(self):
        """One complete operation from the buffer, consumed; None when incomplete, so a
        timeout never leaves half a message behind."""
        buf = self._buf
        end = buf.find(b"\r\n")
        if end < 0:
            if len(buf) > MAX_CONTROL_LINE:
                raise NatsError("control line too long")
            return None
        line = bytes(buf[:end]).decode("utf-8", "replace")
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word in ("MSG", "HMSG"):
            parts = rest.split()
            if word == "MSG":
                subject, sid = parts[0], parts[1]
                reply = parts[2] if len(parts) == 4 else None
                hlen, total = 0, int(parts[-1])
            else:
                subject, sid = parts[0], parts[1]
                reply = parts[2] if len(parts) == 5 else None
                hlen, total = int(parts[-2]), int(parts[-1])
            start = end + 2
            need = start + total + 2
            if len(buf) < need:
                return None
            headers = parse_headers(bytes(buf[start:start + hlen])) if word == "HMSG" else {}
            payload = bytes(buf[start + hlen:start + total])
            del buf[:need]
            return ("MSG", sid, Msg(subject, reply, headers, payload))
        del buf[:end + 2]
        if word == "INFO":
            return ("INFO", json.loads(rest))
        if word == "-ERR":
            return ("-ERR", rest.strip().strip("'"))
        return (word, rest)

    def _read_op(self, deadline):
        while True:
            op = self._try_parse()
            if op is not None:
                return op
            self._fill(deadline)

    def _handle(self, op):
        kind = op[0]
        if kind == "PING":
            self._send(b"PONG\r\n")
        elif kind == "PONG":
            self._pongs += 1
        elif kind == "MSG":
            self._pending.append((op[1], op[2]))
        elif kind == "INFO":
            self.info = op[1]
        elif kind == "-ERR":
            self.errors.append(op[1])

    def _process(self, deadline):
        self._handle(self._read_op(deadline))

    # ---- API
    def publish(self, subject, payload=b"", headers=None, reply=None):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        r = f" {reply}" if reply else ""
        if headers:
            hdr = encode_headers(headers)
            head = f"HPUB {subject}{r} {len(hdr)} {len(hdr) + len(payload)}\r\n".encode()
            self._send(head + hdr + payload + b"\r\n")
        else:
            self._send(f"PUB {subject}{r} {len(payload)}\r\n".encode() + payload + b"\r\n")

    def subscribe(self, subject, queue=None):
        self._sid += 1
        sid = str(self._sid)
        q = f" {queue}" if queue else ""
        self._send(f"SUB {subject}{q} {sid}\r\n".encode())
        return sid

    def unsubscribe(self, sid):
        self._send(f"UNSUB {sid}\r\n".encode())

    def next_msg(self, timeout=5.0, sid=None):
        """The next message (of subscription sid, or of any of the caller's
        subscriptions) as Msg(subject, reply, headers, payload); NatsTimeout when none."""
        deadline = time.monotonic() + timeout
        while True:
            for idx, (s, m) in enumerate(self._pending):
                if s != self._resp_sid and (sid is None or s == sid):
                    del self._pending[idx]
                    return m
            self._process(deadline)

    def flush(self, timeout=5.0):
        """PING and wait for its PONG: everything sent before has been processed."""
        want = self._pongs + 1
        self._send(b"PING\r\n")
        deadline = time.monotonic() + timeout
        while self._pongs < want:
            self._process(deadline)

    def request(self, subject, payload=b"", timeout=2.0, headers=None):
        """Publishes with a unique inbox as reply subject and returns the reply Msg.
        NoResponders when nobody listens, NatsTimeout when no reply in time."""
        if self._resp_sid is None:
            self._resp_sid = self.subscribe(f"{self._resp_prefix}.*")
        self._req_n += 1
        inbox = f"{self._resp_prefix}.{self._req_n}"
        self.publish(subject, payload, headers=headers, reply=inbox)
        deadline = time.monotonic() + timeout
        while True:
            for idx, (s, m) in enumerate(list(self._pending)):
                if s != self._resp_sid:
                    continue
                del self._pending[idx]
                if m.subject != inbox:
                    break  # a late reply to an earlier, timed-out request: dropped
                if m.headers.get("Status") == "503":
                    raise NoResponders(f"no responders on {subject}")
                return m
            else:
                self._process(deadline)

    def close(self):
        if not self._closed:
            self._closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- JetStream
    def js_api(self, api, body=None, timeout=2.0):
        """Request to $JS.API.<api>; the parsed JSON answer (errors are in "error")."""
        data = b"" if body is None else json.dumps(body).encode()
        return json.loads(self.request(f"$JS.API.{api}", data, timeout).payload)

    def js_publish(self, subject, payload=b"", headers=None, msg_id=None, timeout=2.0):
        """A JetStream publish: the PubAck JSON ({"stream", "seq"[, "duplicate"]}) or the
        error JSON ({"error": {"code", "err_code", "description"}}). NatsTimeout when
        nothing answers (no stream leader), NoResponders when no stream takes it."""
        if msg_id is not None:
            headers = dict(headers or {})
            headers["Nats-Msg-Id"] = msg_id
        return json.loads(self.request(subject, payload, timeout, headers).payload)

    def stream_create(self, name, subjects, timeout=5.0, **config):
        cfg = {"name": name, "subjects": list(subjects), "storage": "file",
               "retention": "limits", "discard": "old", "num_replicas": 1}
        cfg.update(config)
        return self.js_api(f"STREAM.CREATE.{name}", cfg, timeout)

    def stream_update(self, name, config, timeout=5.0):
        return self.js_api(f"STREAM.UPDATE.{name}", config, timeout)

    def stream_info(self, name, timeout=2.0):
        return self.js_api(f"STREAM.INFO.{name}", None, timeout)

    def stream_names(self, timeout=2.0):
        return self.js_api("STREAM.NAMES", {}, timeout).get("streams") or []

    def stream_delete(self, name, timeout=5.0):
        return self.js_api(f"STREAM.DELETE.{name}", None, timeout)

    def stream_purge(self, name, subject=None, timeout=5.0):
        return self.js_api(f"STREAM.PURGE.{name}",
                           {"filter": subject} if subject else None, timeout)

    def account_info(self, timeout=2.0):
        return self.js_api("INFO", None, timeout)

    def msg_get(self, stream, seq=None, last_by_subj=None, next_by_subj=None, timeout=2.0):
        """$JS.API.STREAM.MSG.GET: the answer with message.data decoded to bytes and
        message.hdrs decoded to a dict (absent keys: b"" / {})."""
        body = {}
        if seq is not None:
            body["seq"] = seq
        if last_by_subj is not None:
            body["last_by_subj"] = last_by_subj
        if next_by_subj is not None:
            body["next_by_subj"] = next_by_subj
        r = self.js_api(f"STREAM.MSG.GET.{stream}", body, timeout)
        m = r.get("message")
        if m is not None:
            m["data"] = base64.b64decode(m.get("data") or "")
            m["hdrs"] = parse_headers(base64.b64decode(m["hdrs"])) if m.get("hdrs") else {}
        return r


# ------------------------------------------------------------------------------ oracle
class DeliveryOracle:
    """Nothing-lost bookkeeping for one channel (RELIABILITY brief): publishers send
    unique (publisher, seq) ids; the test records each publish with its acked offset (or
    as not acked) and every message each subscriber receives, then classify() sorts them.

    - delivered: received (by offset after de-duplication).
    - lost: acked, expected by a subscriber (offset after its `since`), never received.
    - duplicate: one id received at two different offsets (stored twice); the same
      offset received twice is a redelivery the client drops, counted separately.
    - reordered: received after a larger offset, or after a larger seq of its publisher.
    - unknown: an id nobody published; conflict: one offset carrying two ids;
      offset_mismatch: received at an offset other than the one its ack named.
    """

    def __init__(self):
        self.publishes = {}       # (publisher, seq) -> acked offset, True (acked, no
        #                           offset known) or None (not acked)
        self.subscribers = {}     # name -> since offset (exclusive)
        self.receptions = {}      # name -> [(offset, (publisher, seq))]

    def published(self, publisher, seq, offset=None, acked=True):
        key = (publisher, seq)
        assert key not in self.publishes, f"publish id {key} recorded twice"
        self.publishes[key] = (offset if offset is not None else True) if acked else None

    def subscriber(self, name, since=0):
        """Declares a subscriber that stayed connected (or resumed within the window)
        from offset `since` on: every acked message after it must reach it."""
        self.subscribers[name] = since
        self.receptions.setdefault(name, [])

    def received(self, subscriber, offset, publisher, seq):
        if subscriber not in self.subscribers:
            self.subscriber(subscriber)
        self.receptions[subscriber].append((offset, (publisher, seq)))

    def classify(self):
        report = {}
        for name, since in self.subscribers.items():
            r = {"delivered": [], "lost": [], "duplicate": [], "redelivered": [],
                 "reordered": [], "unknown": [], "conflict": [], "offset_mismatch": [],
                 "unacked_delivered": []}
            by_offset = {}
            seen_ids = {}
            max_offset = None
            max_seq = {}
            for offset, mid in self.receptions.get(name, []):
                if offset in by_offset:
                    if by_offset[offset] == mid:
                        r["redelivered"].append((offset, mid))
                    else:
                        r["conflict"].append((offset, by_offset[offset], mid))
                    continue
                by_offset[offset] = mid
                if mid not in self.publishes:
                    r["unknown"].append((offset, mid))
                    continue
                if mid in seen_ids:
                    r["duplicate"].append((mid, seen_ids[mid], offset))
                    continue
                seen_ids[mid] = offset
                r["delivered"].append(mid)
                ack = self.publishes[mid]
                if ack is None:
                    r["unacked_delivered"].append(mid)
                elif ack is not True and ack != offset:
                    r["offset_mismatch"].append((mid, ack, offset))
                publisher, seq = mid
                if (max_offset is not None and offset < max_offset) or \
                        (publisher in max_seq and seq < max_seq[publisher]):
                    r["reordered"].append((offset, mid))
                max_offset = offset if max_offset is None else max(max_offset, offset)
                max_seq[publisher] = max(max_seq.get(publisher, seq), seq)
            for mid, ack in self.publishes.items():
                if ack is None or mid in seen_ids:
                    continue
                if ack is True or ack > since:
                    r["lost"].append(mid)
            r["lost"].sort(key=lambda m: (str(m[0]), m[1]))
            report[name] = r
        return report

    def problems(self, allow_duplicates=False):
        """Human-readable list of what breaks "nothing lost" (empty when fine)."""
        bad = ["lost", "reordered", "unknown", "conflict", "offset_mismatch"]
        if not allow_duplicates:
            bad.append("duplicate")
        out = []
        for name, r in self.classify().items():
            for kind in bad:
                if r[kind]:
                    items = r[kind]
                    more = f" (+{len(items) - 10} more)" if len(items) > 10 else ""
                    out.append(f"{name}: {len(items)} {kind}: {items[:10]!r}{more}")
        return out

    def assert_nothing_lost(self, allow_duplicates=False):
        problems = self.problems(allow_duplicates)
        assert not problems, "delivery oracle:\n" + "\n".join(problems)
