"""wsfleet-bridge facing bad inputs: configuration files (--check-config), its admin
listener, an unreachable NATS cluster, and malformed or hostile messages on the NATS
subjects it listens to. One real bridge of region "eu" on a real standalone nats-server;
the other region of the topology ("us") has no bridge, so its link stays down unless a
test plays one of its bridges by publishing heartbeats.

What the bridge must do: refuse a bad file with FILE:LINE:COL errors and exit 2; answer
every admin request with one HTTP status and stay up; say 503 on /readyz until it is
connected; count every control message it cannot use in
wsfleet_bridge_dropped_total{reason=...} (or answer a request with an error), and keep
working.
"""

import json
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from fleet import Bridge, bridge_available, bridge_binary
from harness import http, to_toml, wait_until
from nats_cluster import NatsTimeout
from ports import free_port

pytestmark = pytest.mark.skipif(not bridge_available(),
                                reason="wsfleet-bridge not built (set WSFLEET_BIN_DIR)")

REGION = "eu"
OTHER = "us"
DROPPED = "wsfleet_bridge_dropped_total"
SOURCE_DIR = Path(__file__).resolve().parents[2]
ERROR_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): (?P<msg>.+)$")


# ------------------------------------------------------------------------------ helpers
def topology(eu_urls):
    """eu (this bridge's region, on the test's nats-server) and us (nobody there)."""
    return {"regions": [
        {"name": REGION, "nats_urls": list(eu_urls),
         "public_urls": [f"ws://127.0.0.1:{free_port()}/ws"]},
        {"name": OTHER, "nats_urls": ["nats://127.0.0.1:1"],
         "public_urls": [f"ws://127.0.0.1:{free_port()}/ws"]},
    ]}


@pytest.fixture
def bridge_factory(tmp_path):
    """make(cluster, overrides=None, start=True) -> fleet.Bridge of region eu on
    `cluster` (started or not), stopped and checked for crashes at the end."""
    made = []

    def make(cluster, overrides=None, start=True):
        topo = tmp_path / "topology.toml"
        topo.write_text(to_toml(topology(cluster.urls)) + "\n")
        b = Bridge(tmp_path, REGION, topo, cluster, f"{REGION}-b{len(made) + 1}", overrides)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    problems = []
    for b in made:
        b.stop()
        if b.problems:
            problems.append("; ".join(b.problems) + "\n" + b.log_tail())
    if problems:
        pytest.fail("bridge problem(s):\n" + "\n\n".join(problems), pytrace=False)


@pytest.fixture
def running(nats_cluster_factory, bridge_factory):
    """(cluster, bridge, client): a connected bridge and a NATS client on its server."""
    cluster = nats_cluster_factory(n=1, region=REGION)
    bridge = bridge_factory(cluster)
    client = cluster.connect(name="bridge-inputs-test")
    yield cluster, bridge, client
    client.close()


def check_config(path):
    p = subprocess.run([str(bridge_binary()), "--check-config", str(path)],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def raw(port, data, timeout=5.0):
    """Sends raw bytes, reads until the server closes; the response bytes (what arrived
    before a reset counts)."""
    got = bytearray()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    return bytes(got)


def status_of(response):
    line = response.split(b"\r\n", 1)[0].decode("iso-8859-1")
    parts = line.split(" ")
    assert len(parts) >= 2 and parts[0] == "HTTP/1.1", f"no status line in {response[:200]!r}"
    return int(parts[1])


def dropped(bridge, reason):
    return bridge.metric(DROPPED, reason=reason)


def wait_dropped(bridge, reason, count, timeout=5.0):
    wait_until(lambda: dropped(bridge, reason) == count, timeout,
               what=f"{DROPPED}{{reason={reason}}} == {count} "
                    f"(now {dropped(bridge, reason)})")


def error_of(reply):
    body = json.loads(reply.payload)
    assert "error" in body, body
    return body["error"]


# ------------------------------------------------------------------ configuration files
GOOD = """[bridge]
region = "eu"
topology = "topology.toml"
instance = "eu-b1"

[nats]
servers = ["nats://127.0.0.1:4222"]

[links]
heartbeat_interval_ms = 500
down_after_ms = 2000
"""

# Line numbers are asserted below.
BAD = """[bridge]
region = "eu"
topology = "topology.toml"
instance = "eu b1"

[nats]
servers = ["nats://127.0.0.1:4222"]

[links]
heartbeat_interval_ms = 1000
down_after_ms = 1000
forward_retries = 3
"""


def test_check_config_reports_every_error_by_line_and_exits_2(tmp_path):
    (tmp_path / "topology.toml").write_text(to_toml(topology(["nats://127.0.0.1:4222"])))
    good = tmp_path / "good.toml"
    good.write_text(GOOD)
    rc, out, err = check_config(good)
    assert rc == 0, (out, err)
    assert f"{good}: ok" in out

    bad = tmp_path / "bad.toml"
    bad.write_text(BAD)
    rc, out, err = check_config(bad)
    assert rc == 2, (rc, out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "no errors printed"
    for line in lines:
        m = ERROR_LINE.match(line)
        assert m and m["file"] == str(bad), f"not FILE:LINE:COL: {line!r}"
    where = {(int(ERROR_LINE.match(x)["line"]), ERROR_LINE.match(x)["msg"]) for x in lines}
    assert any(n == 4 and "bridge.instance" in msg for n, msg in where), err
    assert any(n == 11 and "links.down_after_ms" in msg for n, msg in where), err
    assert any(n == 12 and "unknown key 'links.forward_retries'" in msg
               for n, msg in where), err

    # A region the topology lacks, and a topology that is not there.
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text(GOOD.replace('region = "eu"', 'region = "ap"'))
    rc, _, err = check_config(elsewhere)
    assert rc == 2 and f"{elsewhere}:3:" in err and "no region 'ap'" in err, err
    lost = tmp_path / "lost.toml"
    lost.write_text(GOOD.replace('"topology.toml"', '"missing/topology.toml"'))
    rc, _, err = check_config(lost)
    assert rc == 2 and f"{lost}:3:" in err and "missing/topology.toml" in err, err

    rc, _, err = check_config(tmp_path / "nonexistent.toml")
    assert rc == 2 and "nonexistent.toml" in err, err
    # Not TOML at all.
    junk = tmp_path / "junk.toml"
    junk.write_bytes(b"[bridge\n\xff\xfe = = =\n")
    rc, _, err = check_config(junk)
    assert rc == 2 and ERROR_LINE.match(err.splitlines()[0]), err


def test_the_sample_configuration_checks(tmp_path):
    sample = SOURCE_DIR / "conf" / "bridge.toml"
    rc, out, err = check_config(sample)
    assert rc == 0, (out, err)
    # Without --config or --check-config: a usage error, not a start.
    p = subprocess.run([str(bridge_binary())], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, (p.stdout, p.stderr)


# ---------------------------------------------------------------------- admin listener
def test_admin_listener_answers_bad_requests_and_stays_up(running):
    _, bridge, _ = running
    port = bridge.admin_port
    assert http(port, "GET", "/healthz").status == 200
    assert http(port, "GET", "/healthz?probe=1").status == 200, "a query string is ignored"
    assert http(port, "GET", "/nope").status == 404
    assert http(port, "GET", "/admin/drain").status == 404
    assert http(port, "POST", "/healthz", body={"x": 1}).status == 405
    assert http(port, "DELETE", "/status").status == 405

    for line in (b"GARBAGE\r\n\r\n", b"GET /healthz\r\n\r\n", b"GET /healthz SMTP/1.0\r\n\r\n",
                 b"\r\n\r\n"):
        assert status_of(raw(port, line)) == 400, line

    # A head over the cap (8 KiB), in one header and in many.
    huge = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n"
    assert status_of(raw(port, huge)) == 431
    many = b"GET /healthz HTTP/1.1\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 60) for i in range(200)) + b"\r\n"
    assert status_of(raw(port, many)) == 431

    # A client that connects and says nothing does not hold up the others.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as silent:
        silent.sendall(b"GET /heal")
        assert http(port, "GET", "/healthz").status == 200
        r = http(port, "GET", "/status")
        assert r.status == 200 and json.loads(r.body)["region"] == REGION

    assert bridge.alive()
    assert http(port, "GET", "/healthz").status == 200
    assert http(port, "GET", "/readyz").status == 200
    assert "wsfleet_bridge_link_up" in http(port, "GET", "/metrics").body.decode()


# ----------------------------------------------------------------------------- NATS
def test_readyz_is_503_until_nats_is_reachable(nats_cluster_factory, bridge_factory):
    # The server's port is chosen but nobody listens on it yet.
    cluster = nats_cluster_factory(n=1, region=REGION, start=False)
    bridge = bridge_factory(cluster, overrides={"nats": {"reconnect_wait_ms": 100,
                                                         "reconnect_wait_max_ms": 300}},
                            start=False)
    bridge.start(wait=False)

    def answer():
        try:
            return http(bridge.admin_port, "GET", "/readyz", timeout=1.0)
        except OSError:
            return None  # not listening yet

    first = wait_until(answer, 15, what="the admin listener answers")
    assert first.status == 503, first
    # Still not ready a while later (it keeps trying, and keeps serving the admin).
    time.sleep(1.0)
    bridge.check_alive()
    assert http(bridge.admin_port, "GET", "/readyz").status == 503
    assert http(bridge.admin_port, "GET", "/healthz").status == 200
    assert bridge.status()["connected"] is False

    cluster.start()
    bridge.wait_ready(timeout=15)
    assert bridge.status()["connected"] is True
    assert http(bridge.admin_port, "GET", "/readyz").status == 200


def test_malformed_control_messages_are_counted_and_the_bridge_keeps_working(running):
    _, bridge, c = running
    interest = f"wsf.{REGION}.interest.node-1.w1"

    # Edge interest that is not JSON, lacks its source or its refresh, or whose channel
    # list is not [[owner, tail], ...].
    for body in (b"{not json", b"[]", json.dumps({"refresh_ms": 1000}).encode(),
                 json.dumps({"source": "n1/w1"}).encode(),
                 json.dumps({"source": "n1/w1", "refresh_ms": -5}).encode(),
                 json.dumps({"source": "n1/w1", "refresh_ms": 1000,
                             "add": [[OTHER]]}).encode(),
                 json.dumps({"source": "n1/w1", "refresh_ms": 1000,
                             "add": "us.acme.room"}).encode()):
        c.publish(interest, body)
    c.flush()
    wait_dropped(bridge, "malformed_interest", 7)

    # Heartbeats and interest from "other regions" that are broken or from nowhere.
    c.publish(f"wsfx.{REGION}.hb", json.dumps({"instance": "us-b1", "ttl_ms": 60000}))
    c.publish(f"wsfx.{REGION}.hb", b"\x00\x01")
    c.publish(f"wsf.{REGION}.bridge.hb", json.dumps({"ttl_ms": 60000}))
    c.publish(f"wsfx.{REGION}.interest",
              json.dumps({"region": OTHER, "instance": "us-b1", "add": ["acme.room"]}))
    c.publish(f"wsfx.{REGION}.interest",
              json.dumps({"region": OTHER, "instance": "us-b1", "ttl_ms": 6000,
                          "kind": "channel", "add": [1, 2]}))
    c.flush()
    wait_dropped(bridge, "malformed_control", 5)
    c.publish(f"wsfx.{REGION}.interest",
              json.dumps({"region": "mars", "instance": "m1", "ttl_ms": 6000,
                          "kind": "channel", "snapshot": True, "add": ["acme.room"]}))
    c.publish(f"wsfx.{REGION}.hb",
              json.dumps({"region": "mars", "instance": "m1", "ttl_ms": 60000}))
    c.flush()
    wait_dropped(bridge, "unknown_region", 2)
    st = bridge.status()
    assert st["interest"]["remote"] == 0, st
    assert st["links"][OTHER]["up"] is False, "a broken heartbeat brought the link up"
    assert "mars" not in st["links"], st

    # Requests on the forwarding subjects: only history reads of another region pass.
    for subject in (f"wsf.{REGION}.xapi.{OTHER}.STREAM.DELETE.X",
                    f"wsf.{REGION}.xapi.{OTHER}.STREAM.DELETE.WSF_HIST_{OTHER}",
                    f"wsf.{REGION}.xapi.{OTHER}.STREAM.PURGE.WSF_HIST_{OTHER}",
                    f"wsf.{REGION}.xapi.{OTHER}.STREAM.MSG.GET.WSF_HIST_{REGION}",
                    f"wsf.{REGION}.xapi.mars.STREAM.INFO.WSF_HIST_mars",
                    f"wsf.{REGION}.xapi.{OTHER}"):
        err = error_of(c.request(subject, b"{}", timeout=5))
        assert err["code"] == 400, (subject, err)
    wait_dropped(bridge, "api_refused", 6)
    # A proper read while the owner region is down: refused at once, not waited on.
    t0 = time.monotonic()
    err = error_of(c.request(f"wsf.{REGION}.xapi.{OTHER}.STREAM.INFO.WSF_HIST_{OTHER}",
                             b"", timeout=5))
    assert err["code"] == 503 and time.monotonic() - t0 < 1.0, err
    err = error_of(c.request(f"wsf.{REGION}.xpub.mars.hist.acme.room", b"x", timeout=5))
    assert err["code"] == 400, err
    err = error_of(c.request(f"wsf.{REGION}.xpub.{OTHER}.hist.acme.room", b"x", timeout=5))
    assert err["code"] == 503, err
    assert bridge.metric("wsfleet_bridge_publishes_total", region=OTHER,
                         result="refused") == 1
    # Without a reply subject nobody could be answered: dropped.
    c.publish(f"wsf.{REGION}.xpub.{OTHER}.hist.acme.room", b"x")
    c.publish(f"wsf.{REGION}.xapi.{OTHER}.STREAM.INFO.WSF_HIST_{OTHER}", b"")
    c.flush()
    wait_dropped(bridge, "malformed_publish", 1)
    wait_dropped(bridge, "malformed_api", 1)

    # Still working: it answers, takes valid interest and announces it to the owner
    # region, and hears that region's bridge.
    bridge.check_alive()
    assert http(bridge.admin_port, "GET", "/readyz").status == 200
    to_owner = c.subscribe(f"wsfx.{OTHER}.interest")
    c.flush()
    c.publish(interest, json.dumps({"source": "n1/w1", "refresh_ms": 1000,
                                    "add": [[OTHER, "acme.room"]]}))
    c.flush()
    deadline = time.monotonic() + 10
    announced = None
    while announced is None:
        try:
            msg = c.next_msg(timeout=max(0.1, deadline - time.monotonic()), sid=to_owner)
        except NatsTimeout:
            pytest.fail("the valid interest was never announced to the owner region")
        body = json.loads(msg.payload)
        if "acme.room" in body.get("add", []):
            announced = body
    assert announced["region"] == REGION and announced["instance"] == bridge.name, announced
    assert bridge.status()["interest"]["local"] == 1

    c.publish(f"wsfx.{REGION}.hb",
              json.dumps({"region": OTHER, "instance": "us-b1", "ttl_ms": 60000}))
    c.flush()
    wait_until(lambda: bridge.status()["links"][OTHER]["up"], 5, what="link to us up")
    assert bridge.status()["links"][OTHER]["bridges"] == ["us-b1"]
    assert bridge.metric("wsfleet_bridge_link_up", region=OTHER) == 1
    # Nothing above moved the counters of the earlier checks.
    for reason, count in (("malformed_interest", 7), ("malformed_control", 5),
                          ("unknown_region", 2), ("api_refused", 6)):
        assert dropped(bridge, reason) == count, reason


def test_remote_interest_in_wildcards_or_broken_names_forwards_nothing(running):
    """Interest is in channels, "<tenant>.<channel>" as subject tokens: a tail with a
    wildcard, an empty token, a space or a third token would make the owner's bridge
    subscribe to other (or all) channels and send them across the gateway. Such tails
    are dropped, the valid ones of the same announcement kept."""
    _, bridge, c = running
    c.publish(f"wsfx.{REGION}.hb",
              json.dumps({"region": OTHER, "instance": "us-b1", "ttl_ms": 60000}))
    c.flush()
    wait_until(lambda: bridge.status()["links"][OTHER]["up"], 5, what="link to us up")
    to_us = c.subscribe(f"wsfx.{OTHER}.b.>")
    bad = [">", "*.*", "acme.*", "*.room", "", "acme", "acme.", ".room", "acme..room",
           "acme.room.x", "acme.ro om", "acme.room\r\n", "ac>me.room"]
    c.publish(f"wsfx.{REGION}.interest",
              json.dumps({"region": OTHER, "instance": "us-b1", "ttl_ms": 60000,
                          "kind": "channel", "snapshot": True, "add": bad + ["acme.room"]}))
    c.flush()
    wait_dropped(bridge, "malformed_channel", 1)
    assert bridge.status()["interest"]["remote"] == 1, bridge.status()

    # The wanted channel crosses (once its subscription is in place: probe until then).
    deadline = time.monotonic() + 10
    n = 0
    while True:
        n += 1
        c.publish(f"wsf.{REGION}.ch.acme.room", f"probe-{n}")
        try:
            msg = c.next_msg(timeout=0.2, sid=to_us)
            break
        except NatsTimeout:
            assert time.monotonic() < deadline, "acme.room was never forwarded"
    assert msg.subject == f"wsfx.{OTHER}.b.us-b1.ch.acme.room", msg.subject

    # Then: a channel nobody wants, and a marker on the wanted one. Only the marker
    # crosses, once.
    c.publish(f"wsf.{REGION}.ch.acme.other", b"unwanted")
    c.publish(f"wsf.{REGION}.ch.other.room", b"unwanted")
    c.publish(f"wsf.{REGION}.ch.acme.room", b"marker")
    c.flush()
    seen = []
    while True:
        try:
            msg = c.next_msg(timeout=2.0, sid=to_us)
        except NatsTimeout:
            break
        seen.append((msg.subject, msg.payload))
    seen = [s for s in seen if not s[1].startswith(b"probe-")]
    assert seen == [(f"wsfx.{OTHER}.b.us-b1.ch.acme.room", b"marker")], seen

    # The same check on the other ways in: the region's edges' interest, a publish for
    # another region, a message forwarded to this bridge.
    c.publish(f"wsf.{REGION}.interest.node-1.w2",
              json.dumps({"source": "n1/w2", "refresh_ms": 1000,
                          "add": [[OTHER, "acme.>"], [OTHER, "acme.fine"], [OTHER, "x"]]}))
    c.flush()
    wait_dropped(bridge, "malformed_channel", 2)
    assert bridge.status()["interest"]["local"] == 1
    err = error_of(c.request(f"wsf.{REGION}.xpub.{OTHER}.hist.acme.room.extra", b"x", timeout=5))
    assert err["code"] == 400, err
    assert dropped(bridge, "malformed_publish") == 1
    republished = c.subscribe(f"wsf.{REGION}.ch.>")
    c.flush()
    into = f"wsfx.{REGION}.b.{bridge.name}.ch"
    c.publish(f"{into}.acme.room.x", b"bad", headers={"Wsf-Origin-Region": OTHER})
    c.publish(f"{into}.*.*", b"bad", headers={"Wsf-Origin-Region": OTHER})
    c.publish(f"{into}.acme.ok", b"good", headers={"Wsf-Origin-Region": OTHER})
    c.flush()
    msg = c.next_msg(timeout=5, sid=republished)
    assert (msg.subject, msg.payload) == (f"wsf.{REGION}.ch.acme.ok", b"good")
    wait_dropped(bridge, "malformed_forward", 2)
    bridge.check_alive()
