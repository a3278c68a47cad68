"""wsfleetctl's fleet commands over the control plane (common/control_subjects.h), against a
real two-region fleet (one edge and one bridge per region), always through region us's
NATS: status, edge list / drain / undrain, presence user / channel, conn kick, bridge
links / pause / resume, top --once, --json output, and the exit codes of bad inputs.
"""

import json
import subprocess

import harness
from fleet import channel
from harness import wait_until
from region_util import publish_cmd
from wsclient import ConnectionClosed, RecvTimeout


def ctl(fleet, *args, via="us", timeout_ms=1500):
    cmd = [str(harness.ctl_binary()), *args, "--topology", str(fleet.topology_path),
           "--nats", fleet.sc.region(via).urls[0], "--timeout-ms", str(timeout_ms)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def ctl_json(fleet, *args, rc=0, **kw):
    p = ctl(fleet, *args, "--json", **kw)
    assert p.returncode == rc, f"{args}: rc={p.returncode} stdout={p.stdout} stderr={p.stderr}"
    return json.loads(p.stdout)


def readyz(edge):
    return edge.admin("GET", "/readyz", api_key=None).status


def try_cross_publish(client, ch, i):
    """True when the owner region acknowledged the publish, False when it was refused."""
    r = client.request(publish_cmd(ch, {"i": i}, key=f"x-{i}"), timeout=15)
    if r.get("ok") is True:
        return True
    assert r["error"]["code"] == "unavailable", r
    return False


def test_fleet_commands(fleet_factory):
    fleet = fleet_factory()
    fleet.wait_links(up=True)
    us, eu = fleet.edge("us"), fleet.edge("eu")
    us_node, eu_node = us.conf["node"]["name"], eu.conf["node"]["name"]
    wait_until(lambda: readyz(us) == 200 and readyz(eu) == 200, 15, what="edges ready")
    clients = []
    try:
        # ---- status: both regions, their edges and bridges, links up
        status = ctl_json(fleet, "status")
        assert status["regions"] == ["us", "eu"]
        assert {(e["region"], e["node"]) for e in status["edges"]} == {
            ("us", us_node), ("eu", eu_node)}, status
        assert all(e["ready"] and not e["draining"] for e in status["edges"]), status
        assert {(b["region"], b["instance"]) for b in status["bridges"]} == {
            ("us", "us-b1"), ("eu", "eu-b1")}, status
        for b in status["bridges"]:
            assert [(l["region"], l["up"], l["paused"]) for l in b["links"]] == [
                ("eu" if b["region"] == "us" else "us", True, False)], b
        assert status["partial"] is False and status["moves"] == []
        human = ctl(fleet, "status")
        assert human.returncode == 0, human.stderr
        for word in (us_node, eu_node, "us-b1", "eu-b1", "us -> eu", "OWNERSHIP MOVES"):
            assert word in human.stdout, human.stdout

        # ---- edge list
        listed = ctl_json(fleet, "edge", "list")
        assert sorted(e["node"] for e in listed["edges"]) == sorted([us_node, eu_node])
        assert listed["silent_regions"] == []

        # ---- presence: one user connected in both regions, a channel member in eu
        a_us = us.connect("alice")
        a_eu = eu.connect("alice")
        ch = channel("us")
        bob = eu.connect("bob")
        clients += [a_us, a_eu, bob]
        bob.ok({"type": "subscribe", "channel": ch}, timeout=15)
        found = ctl_json(fleet, "presence", "user", "demo", "alice")
        assert found["connections"] == 2, found
        assert sorted(e["region"] for e in found["edges"] if e["connections"]) == ["eu", "us"]
        members = ctl_json(fleet, "presence", "channel", "demo", ch)
        rows = [(e["region"], c["user"]) for e in members["edges"] for c in e["connections"]]
        assert rows == [("eu", "bob")], members
        nobody = ctl(fleet, "presence", "user", "demo", "nobody")
        assert nobody.returncode == 1 and "no connection found" in nobody.stdout

        # ---- conn kick: closed with 4011 in both regions
        kicked = ctl_json(fleet, "conn", "kick", "demo", "alice", "--reason", "abuse report")
        assert kicked["kicked"] == 2, kicked
        assert a_us.expect_close(timeout=5) == 4011
        assert a_eu.expect_close(timeout=5) == 4011
        wait_until(lambda: ctl(fleet, "presence", "user", "demo", "alice").returncode == 1, 10,
                   what="alice gone from presence")
        bob.ping()  # somebody else's connection stays

        # ---- bridge pause: eu cut off, a cross-region publish refused; resume restores
        writer = eu.connect("writer")
        clients.append(writer)
        wait_until(lambda: try_cross_publish(writer, ch, 0), 15, interval=0.2,
                   what="a publish from eu to a us channel")
        paused = ctl_json(fleet, "bridge", "pause", "eu")
        assert {b["region"] for b in paused["bridges"]} == {"us", "eu"}, paused
        for b in paused["bridges"]:
            assert all(l["paused"] and not l["up"] for l in b["links"]), b
        assert fleet.links_up("us", "eu") == 0
        assert fleet.bridge(
            "us").metrics().value("wsfleet_bridge_link_paused", region="eu") == 1
        assert try_cross_publish(writer, ch, 1) is False
        links = ctl_json(fleet, "bridge", "links")
        assert all(l["paused"] for b in links["bridges"] for l in b["links"]), links
        ctl_json(fleet, "bridge", "resume", "eu")
        fleet.wait_links(up=True, timeout=10)
        assert fleet.bridge(
            "us").metrics().value("wsfleet_bridge_link_paused", region="eu") == 0
        wait_until(lambda: try_cross_publish(writer, ch, 2), 15, interval=0.2,
                   what="a cross-region publish after resume")

        # ---- edge drain: a reconnect hint, readiness 503; undrain restores
        drained = ctl_json(fleet, "edge", "drain", eu_node, "--window", "0.5")
        assert [w["draining"] for w in drained["workers_answered"]] == [True], drained
        hint = bob.next_event("reconnect", timeout=5)
        assert hint["type"] == "reconnect", hint
        assert readyz(eu) == 503
        assert readyz(us) == 200
        listed = ctl_json(fleet, "edge", "list")
        assert {e["node"]: e["draining"] for e in listed["edges"]} == {
            us_node: False, eu_node: True}, listed
        undrained = ctl_json(fleet, "edge", "undrain", eu_node)
        assert [w["draining"] for w in undrained["workers_answered"]] == [False], undrained
        assert readyz(eu) == 200
        fresh = eu.connect("carol")  # upgrades accepted again
        clients.append(fresh)
        fresh.ping()

        # ---- top --once: one frame of the table
        top = ctl(fleet, "top", "--once")
        assert top.returncode == 0, top.stderr
        for word in ("REGION", "CONN/S", "IN/S", "OUT/S", "DROPS/S", us_node, eu_node, "us-b1"):
            assert word in top.stdout, top.stdout
        frame = ctl_json(fleet, "top", "--once")
        assert len(frame["edges"]) == 2 and len(frame["bridges"]) == 2, frame

        # ---- bad inputs: exit 2 with a clear message
        for args, words in (
                (("edge", "drain", "no-such-node"), "no edge node 'no-such-node'"),
                (("edge", "drain", "bad.node"), "node name"),
                (("edge", "drain", eu_node, "--window", "-1"), "window"),
                (("presence", "user", "Bad Tenant!", "alice"), "tenant name"),
                (("presence", "user", "nosuchtenant", "alice"), "unknown_tenant"),
                (("presence", "channel", "demo", "no-namespace"), "channel"),
                (("conn", "kick", "demo", "has space"), "user id"),
                (("conn", "kick", "demo", "alice", "--reason", "x" * 200), "reason"),
                (("bridge", "pause", "mars"), "'mars' is not a region"),
                (("edge",), "")):
            p = ctl(fleet, *args)
            assert p.returncode == 2, f"{args}: rc={p.returncode} {p.stdout} {p.stderr}"
            assert words in p.stderr, f"{args}: {p.stderr}"
        p = subprocess.run([str(harness.ctl_binary()), "edge", "list", "--topology",
                            str(fleet.topology_path), "--timeout-ms", "0"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--timeout-ms" in p.stderr, (p.returncode, p.stderr)
    finally:
        for c in clients:
            try:
                c.close(timeout=0.5)
            except (ConnectionClosed, RecvTimeout, OSError):
                pass


def test_every_fleet_command_has_help():
    for args in (("status",), ("edge", "list"), ("edge", "drain"), ("edge", "undrain"),
                 ("presence", "user"), ("presence", "channel"), ("conn", "kick"),
                 ("bridge", "links"), ("bridge", "pause"), ("bridge", "resume"), ("top",)):
        p = subprocess.run([str(harness.ctl_binary()), *args, "--help"], capture_output=True,
                           text=True, timeout=10)
        assert p.returncode == 0 and "--json" in p.stdout, (args, p.stdout, p.stderr)
