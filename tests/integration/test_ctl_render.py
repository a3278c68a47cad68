"""`wsfleetctl topology render-nats` and `render-dns` against the real programs: the
rendered nats-server confs pass `nats-server -t` and, started, form a supercluster (routes
within a region, gateways between regions, one JetStream meta group); the rendered BIND
views, served by a real named, answer each region's clients with their region's
addresses, and a drained region's clients with its failover region's."""

import json
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import harness
import nats_cluster as natsc
from managed_process import ManagedProcess
from ports import free_port

SAMPLE = harness.REPO_ROOT / "conf" / "topology.toml"
NAMED = shutil.which("named") or "/usr/sbin/named"
DIG = shutil.which("dig") or "/usr/bin/dig"
ZONE = "ws.example.test"
FORM_TIMEOUT_S = 30.0

needs_nats = pytest.mark.skipif(not natsc.nats_server_available(),
                                reason="nats-server not installed (Debian package nats-server)")
needs_bind = pytest.mark.skipif(
    not (Path(NAMED).exists() and Path(DIG).exists()),
    reason="named/dig not installed (Debian packages bind9 and bind9-dnsutils)")


def ctl(*args):
    return subprocess.run([str(harness.ctl_binary()), "topology", *map(str, args)],
                          capture_output=True, text=True, timeout=30)


def line_of(text, marker):
    return text[:text.index(marker)].count("\n") + 1


# ---------------------------------------------------------------------------- render-nats
class RenderedNats(ManagedProcess):
    """A nats-server running a conf wsfleetctl rendered (ports read back from it)."""

    failure = natsc.NatsFailure
    stop_timeout_s = natsc.STOP_TIMEOUT_S
    missing_hint = "package nats-server"

    def __init__(self, conf_path, monitor_port):
        super().__init__()
        self.conf_path = Path(conf_path)
        self.name = self.conf_path.stem
        self.dir = self.conf_path.parent
        self.log_path = self.dir / f"{self.name}.log"
        self.monitor_port = monitor_port

    def _command(self):
        return [natsc.NATS_SERVER, "-c", self.conf_path]

    def _not_ready(self):
        try:
            self.monitor("/varz")
            return None
        except (OSError, ValueError, natsc.NatsFailure) as e:
            return repr(e)

    def _stop_status(self, rc):
        # nats-server 2.9 exits with status 1 after a clean SIGTERM (nats_cluster.py, (g)).
        return 0 if rc in (1, -signal.SIGTERM) else rc

    def monitor(self, path):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"http://127.0.0.1:{self.monitor_port}{path}", timeout=2) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise natsc.NatsFailure(f"{self.name} GET {path}: HTTP {e.code}") from e


def server_block(name, ports):
    client, cluster, gateway, monitor = ports
    return (f'\n[[regions.servers]]\nname = "{name}"\nclient = "127.0.0.1:{client}"\n'
            f'cluster = "127.0.0.1:{cluster}"\ngateway = "127.0.0.1:{gateway}"\n'
            f'monitor = "127.0.0.1:{monitor}"\n')


def supercluster_topology(layout):
    """layout: {region: [server name, ...]}; every port from ports.py. Returns the TOML
    text and {server: (client, cluster, gateway, monitor) ports}."""
    ports = {}
    text = ""
    for region, servers in layout.items():
        text += (f'[[regions]]\nname = "{region}"\n'
                 f'public_urls = ["wss://{region}.example.test/ws"]\n')
        for server in servers:
            ports[server] = tuple(free_port() for _ in range(4))
            text += server_block(server, ports[server])
        text += "\n"
    return text, ports


def supercluster_problem(servers, layout):
    """None once every server routes to its region's others, has an outbound gateway to
    every other region, every region sees inbound gateways from all servers of the
    others, and all agree on one JetStream meta leader; else why not."""
    region_of = {s: r for r, names in layout.items() for s in names}
    try:
        ids = {name: s.monitor("/varz")["server_id"] for name, s in servers.items()}
        inbound = {r: set() for r in layout}
        leaders = set()
        for name, s in servers.items():
            region = region_of[name]
            routes = {r.get("remote_id") for r in s.monitor("/routez").get("routes") or []}
            peers = {ids[p] for p in layout[region] if p != name}
            if not peers <= routes:
                return f"{name}: routes {sorted(routes)}, wanted {sorted(peers)}"
            gz = s.monitor("/gatewayz")
            if gz.get("name") != region:
                return f"{name}: gateway name {gz.get('name')!r}, wanted {region!r}"
            for other in layout:
                out = (gz.get("outbound_gateways") or {}).get(other) or {}
                if other != region and not out.get("connection"):
                    return f"{name}: no outbound gateway to {other}"
            for src, conns in (gz.get("inbound_gateways") or {}).items():
                inbound[region] |= {(src, (c.get("connection") or {}).get("name"))
                                    for c in conns}
            leaders.add((s.monitor("/jsz").get("meta_cluster") or {}).get("leader"))
        for region in layout:
            for name in servers:
                src = region_of[name]
                if src != region and (src, ids[name]) not in inbound[region]:
                    return f"region {region}: no inbound gateway from {name}"
        if len(leaders) != 1 or None in leaders or "" in leaders:
            return f"JetStream meta leaders: {sorted(map(str, leaders))}"
    except (OSError, ValueError, natsc.NatsFailure) as e:
        return repr(e)
    return None


@needs_nats
def test_rendered_sample_confs_are_valid(tmp_path):
    out = tmp_path / "nats"
    r = ctl("render-nats", SAMPLE, "--out", out, "--data-dir", tmp_path / "data")
    assert r.returncode == 0, r.stderr
    confs = sorted(out.glob("*.conf"))
    assert [c.name for c in confs] == sorted(
        f"nats-{region}-{i}.conf" for region in ("us-east", "eu-west", "ap-south")
        for i in (1, 2, 3))
    for conf in confs:
        text = conf.read_text()
        assert text.startswith("# Generated by wsfleetctl topology render-nats from "
                               f"{SAMPLE}.\n"), text
        t = subprocess.run([natsc.NATS_SERVER, "-t", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
        assert t.returncode == 0, (conf.name, t.stdout, t.stderr)
    us1 = (out / "nats-us-east-1.conf").read_text()
    assert f'store_dir: "{tmp_path / "data"}/nats-us-east-1"' in us1
    assert '"nats-route://10.10.0.12:6222"' in us1 and '"nats-route://10.10.0.11:6222"' not in us1
    assert '{name: "ap-south", urls: ["nats://10.30.0.11:7222"' in us1


@needs_nats
def test_rendered_confs_form_a_supercluster(tmp_path):
    layout = {"us": ["nats-us-1", "nats-us-2"], "eu": ["nats-eu-1"]}
    text, ports = supercluster_topology(layout)
    topology = tmp_path / "topology.toml"
    topology.write_text(text)
    out = tmp_path / "nats"
    r = ctl("render-nats", topology, "--out", out, "--data-dir", tmp_path / "data")
    assert r.returncode == 0, r.stderr
    servers = {}
    for name, server_ports in ports.items():
        conf = out / f"{name}.conf"
        t = subprocess.run([natsc.NATS_SERVER, "-t", "-c", str(conf)],
                           capture_output=True, text=True, timeout=30)
        assert t.returncode == 0, (name, t.stdout, t.stderr)
        servers[name] = RenderedNats(conf, server_ports[3])
    try:
        for s in servers.values():
            s.start(wait=False)
        for s in servers.values():
            s.wait_ready(FORM_TIMEOUT_S)
        deadline = time.monotonic() + FORM_TIMEOUT_S
        while (problem := supercluster_problem(servers, layout)) is not None:
            if time.monotonic() > deadline:
                tails = "\n".join(s.log_tail(20) for s in servers.values())
                pytest.fail(f"no supercluster within {FORM_TIMEOUT_S}s: {problem}\n{tails}")
            time.sleep(0.1)
        # The client port of each server is the one the topology named, and its
        # JetStream store is under --data-dir.
        for name, s in servers.items():
            varz = s.monitor("/varz")
            assert varz["port"] == ports[name][0] and varz["server_name"] == name
            assert (tmp_path / "data" / name / "jetstream").is_dir()
    finally:
        for s in servers.values():
            s.stop()
    problems = [p for s in servers.values() for p in s.problems]
    assert not problems, problems


def test_render_nats_needs_every_regions_servers(tmp_path):
    text, _ = supercluster_topology({"us": ["nats-us-1"]})
    text += '[[regions]]\nname = "eu"\nnats_urls = ["nats://127.0.0.1:4222"]\n' \
            'public_urls = ["wss://eu.example.test/ws"]\n'
    topology = tmp_path / "topology.toml"
    topology.write_text(text)
    r = ctl("render-nats", topology, "--out", tmp_path / "out")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "no [[regions.servers]] for region(s) eu" in r.stderr
    assert not (tmp_path / "out").exists()


def test_validate_reports_server_errors_with_positions(tmp_path):
    text, _ = supercluster_topology({"us": ["nats-us-1", "nats-us-2"]})
    text = text.replace('name = "nats-us-2"', 'name = "nats-us-1"', 1)
    first_client = text[text.index('client = "'):].split("\n")[0]
    text = text.replace(first_client, 'client = "127.0.0.1"', 1)
    path = tmp_path / "topology.toml"
    path.write_text(text)
    for command in ("validate", "check"):
        r = ctl(command, path)
        assert r.returncode == 2, (command, r.stdout, r.stderr)
        errors = r.stderr.strip().splitlines()
        assert len(errors) == 2, r.stderr
        client_line = line_of(text, 'client = "127.0.0.1"')
        assert errors[0].startswith(f"{path}:{client_line}:"), errors[0]
        assert "regions[0].servers[0].client: '127.0.0.1' is not host:port" in errors[0]
        second = text.index('name = "nats-us-1"', text.index('name = "nats-us-1"') + 1)
        assert errors[1].startswith(f"{path}:{text[:second].count(chr(10)) + 1}:")
        assert "is already the name of regions[0].servers[0].name" in errors[1]


# ---------------------------------------------------------------------------- render-dns
class Named(ManagedProcess):
    """named in the foreground (-g) on 127.0.0.1:<port>, serving the rendered views."""

    missing_hint = "package bind9"
    ready_timeout_s = 20.0

    def __init__(self, workdir, port, views_conf):
        super().__init__()
        self.name = "named"
        self.dir = Path(workdir)
        self.port = port
        self.log_path = self.dir / "named.log"
        self.conf_path = self.dir / "named.conf"
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        # No control channel (rndc): nothing else to listen on and no key to read.
        self.conf_path.write_text(
            "options {\n"
            f'  directory "{self.dir / "data"}";\n'
            f'  pid-file "{self.dir / "named.pid"}";\n'
            f'  session-keyfile "{self.dir / "session.key"}";\n'
            f"  listen-on port {port} {{ 127.0.0.1; }};\n"
            "  listen-on-v6 { none; };\n"
            "  recursion no;\n"
            "  dnssec-validation no;\n"
            "};\n"
            "controls { };\n"
            f'include "{views_conf}";\n')

    def _command(self):
        return [NAMED, "-g", "-c", self.conf_path]

    def _not_ready(self):
        status, _ = dig(self.port, "127.0.0.1", ZONE, "SOA")
        return None if status == "NOERROR" else f"SOA query: {status}"

    def reload(self):
        """SIGHUP: named reads its conf and the changed zone files again."""
        self.proc.send_signal(signal.SIGHUP)


def dig(port, source, name, rtype="A"):
    """(status, sorted answers) of one query from `source` to 127.0.0.1:port."""
    r = subprocess.run([DIG, "-b", source, "-p", str(port), "@127.0.0.1", name, rtype,
                        "+time=1", "+tries=1", "+norecurse", "+noall", "+comments", "+answer"],
                       capture_output=True, text=True, timeout=10)
    status = "NO-ANSWER"
    answers = []
    for line in r.stdout.splitlines():
        if "status:" in line:
            status = line.split("status:")[1].split(",")[0].strip()
        elif line and not line.startswith(";"):
            fields = line.split()
            if len(fields) >= 5 and fields[3] == rtype:
                answers.append(fields[4])
    return status, sorted(answers)


DNS_TOPOLOGY = """
[[regions]]
name = "a"
nats_urls = ["nats://127.0.0.1:4222"]
public_urls = ["ws://192.0.2.1:8080/ws"]
client_subnets = ["127.0.0.2/32"]
failover = ["b"]

[[regions]]
name = "b"
nats_urls = ["nats://127.0.0.1:4222"]
public_urls = ["wss://b.example.test/ws"]
dns_addresses = ["192.0.2.2", "2001:db8::2"]
client_subnets = ["127.0.0.3/32"]
failover = ["a"]

[[regions]]
name = "c"
nats_urls = ["nats://127.0.0.1:4222"]
public_urls = ["wss://c.example.test/ws"]
dns_addresses = ["192.0.2.3"]
client_subnets = ["127.0.0.4/32"]
weight = 300
"""


def render_dns(topology, out, serial, *drained):
    args = ["render-dns", topology, "--format", "bind", "--out", out, "--zone", ZONE,
            "--ttl", "5", "--serial", serial]
    for region in drained:
        args += ["--drained", region]
    r = ctl(*args)
    assert r.returncode == 0, (r.stdout, r.stderr)
    return r


def answers_by_client(port):
    """{client address: (A answers, AAAA answers)} for one client of each region and one
    of no region."""
    result = {}
    for source in ("127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.9"):
        status_a, a = dig(port, source, ZONE, "A")
        status_aaaa, aaaa = dig(port, source, ZONE, "AAAA")
        assert status_a == status_aaaa == "NOERROR", (source, status_a, status_aaaa)
        result[source] = (a, aaaa)
    return result


@needs_bind
def test_geo_dns_views_answer_by_client_region_and_follow_drains(tmp_path):
    topology = tmp_path / "topology.toml"
    topology.write_text(DNS_TOPOLOGY)
    out = tmp_path / "dns"
    render_dns(topology, out, 1)
    views = (out / "wsfleet-views.conf").read_text()
    assert views.startswith(f"// Generated by wsfleetctl topology render-dns from {topology}.")
    named = Named(tmp_path / "named", free_port(), out / "wsfleet-views.conf")
    checkconf = shutil.which("named-checkconf")
    if checkconf:  # a clearer message than named's when a file does not load
        check = subprocess.run([checkconf, "-z", str(named.conf_path)],
                               capture_output=True, text=True, timeout=30)
        assert check.returncode == 0, (check.stdout, check.stderr)
    try:
        named.start()
        before = answers_by_client(named.port)
        assert before == {
            "127.0.0.2": (["192.0.2.1"], []),                 # a: its public_urls host
            "127.0.0.3": (["192.0.2.2"], ["2001:db8::2"]),   # b: its dns_addresses
            "127.0.0.4": (["192.0.2.3"], []),                 # c
            "127.0.0.9": (["192.0.2.3"], []),                 # no region: c, the heaviest
        }, before

        # Drain a: its clients get its failover region b; nobody else changes.
        render_dns(topology, out, 2, "a")
        assert "answered by region b (a is drained)" in (out / "region-a.zone").read_text()
        named.reload()
        deadline = time.monotonic() + 15
        while (after := answers_by_client(named.port))["127.0.0.2"][0] != ["192.0.2.2"]:
            named.check_alive()
            assert time.monotonic() < deadline, f"named still answers {after}\n" \
                                                f"{named.log_tail(30)}"
            time.sleep(0.1)
        assert after == {**before, "127.0.0.2": (["192.0.2.2"], ["2001:db8::2"])}, after

        # Drain c as well: the default view follows c's clients to the first region
        # (in file order) that is not drained, b; a's clients still go to b.
        render_dns(topology, out, 3, "a", "c")
        named.reload()
        deadline = time.monotonic() + 15
        while (after := answers_by_client(named.port))["127.0.0.9"][0] != ["192.0.2.2"]:
            named.check_alive()
            assert time.monotonic() < deadline, f"named still answers {after}"
            time.sleep(0.1)
        both = (["192.0.2.2"], ["2001:db8::2"])
        assert after == {"127.0.0.2": both, "127.0.0.3": both, "127.0.0.4": both,
                         "127.0.0.9": both}, after
    finally:
        named.stop()
    assert not named.problems, (named.problems, named.log_tail())


def test_render_dns_refuses_bad_input(tmp_path):
    topology = tmp_path / "topology.toml"
    topology.write_text(DNS_TOPOLOGY)
    out = tmp_path / "dns"
    base = ["render-dns", topology, "--format", "bind", "--out", out, "--zone", ZONE]
    r = ctl(*base, "--drained", "mars")
    assert r.returncode == 2 and "drained region 'mars' is not a region" in r.stderr, r.stderr
    r = ctl(*base, "--drained", "a", "--drained", "b", "--drained", "c")
    assert r.returncode == 1 and "every region is drained" in r.stderr, r.stderr
    r = ctl(*base, "--ns", f"ns1.{ZONE}")
    assert r.returncode == 2 and "would need glue" in r.stderr, r.stderr
    r = ctl(*base[:-2], "--zone", "bad..zone")
    assert r.returncode == 2 and "is not a DNS name" in r.stderr, r.stderr
    r = ctl(*base[:2], "--format", "tinydns", *base[4:])
    assert r.returncode == 2, r.stderr
    assert not out.exists()
