"""`wsfleetctl region drain`: a drained region's channels move to their next owners with
the fenced per-channel move (common/owner_records.h) — the channels with subscribers at
once, under traffic, losing nothing; the others on first use; `undrain` clears the mark.
Helpers are test_ownership_move.py's."""

import subprocess
import time

import harness
from fleet import channel
from harness import wait_until
from nats_cluster import DeliveryOracle
from region_util import RetryingPublisher, publish_cmd
from test_ownership_move import (edge_metric, generation, listening, owner_of, position,
                                 publishers_done, stop_load)


def region_cmd(fleet, *args, via="eu"):
    cmd = [str(harness.ctl_binary()), "region", *args, "--topology", str(fleet.topology_path),
           "--nats", fleet.sc.region(via).urls[0]]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_a_drained_regions_channels_move_under_traffic_and_on_first_use(fleet_factory):
    fleet = fleet_factory()
    fleet.wait_links()
    ch = channel("us", "busy")
    cold = channel("us", "cold")
    assert owner_of(fleet, ch)["owner"] == "us" and owner_of(fleet, cold)["owner"] == "us"
    oracle = DeliveryOracle()
    listeners = listening(fleet, ch, oracle)
    pubs = [RetryingPublisher(f"pub-{r}", [fleet.edge(r)], ch, oracle, count=300,
                              interval=0.02, position=position)
            for r in fleet.regions]
    extra = []
    try:
        for p in pubs:
            p.start()
        wait_until(lambda: all(len(p.acked) >= 30 or p.failures for p in pubs), 30,
                   what="30 acks per publisher")
        watcher = fleet.edge("us").connect("watcher")
        extra.append(watcher)
        drained = region_cmd(fleet, "drain", "us", "--replicas", "1", "--window", "1")
        assert drained.returncode == 0, drained.stderr
        # The region's clients are sent to its failover region (here: the other one).
        hint = watcher.recv_until(lambda f: f.get("type") == "reconnect", 10, what="a hint")
        assert hint["url"] == fleet.edge("eu").url() and hint["reason"] == "drain", hint
        assert fleet.edge("us").admin("GET", "/readyz").status == 503
        # The busy channel moves by the edges that have its subscribers.
        wait_until(lambda: owner_of(fleet, ch)["state"] == "owned" and
                   owner_of(fleet, ch)["owner"] == "eu", 20, what="the busy channel in eu")
        publishers_done(pubs, listeners)
    finally:
        stop_load(pubs, listeners, extra)
    assert not [f for s in listeners for f in s.failures], [s.failures for s in listeners]
    oracle.assert_nothing_lost()
    assert {o[0] for p in pubs for o in p.acked} == {0, 1}
    for s in listeners:
        assert [generation(e) for e in s.epochs] == [0, 1], (s.sub_name, s.epochs)
    listed = region_cmd(fleet, "list")
    assert listed.returncode == 0 and "us  drained" in listed.stdout, listed.stdout
    # geo-DNS rendered from the fleet's marks sends us's clients (here: everyone's default
    # answer, us being first of equal weights) to eu.
    dns_dir = fleet.workdir / "dns"
    rendered = subprocess.run(
        [str(harness.ctl_binary()), "topology", "render-dns", str(fleet.topology_path),
         "--format", "bind", "--zone", "ws.test", "--out", str(dns_dir),
         "--nats", fleet.sc.region("eu").urls[0]], capture_output=True, text=True, timeout=60)
    assert rendered.returncode == 0, rendered.stderr
    assert "answered by region eu (us is drained)" in (dns_dir / "default.zone").read_text()

    # A channel nobody used: still the region's until first used, then moved.
    client = fleet.edge("eu").connect("late")
    try:
        r = client.ok(publish_cmd(cold, {"i": 0}, "c0"), timeout=15)
        assert generation(r["epoch"]) in (0, 1), r
        wait_until(lambda: owner_of(fleet, cold)["owner"] == "eu" and
                   owner_of(fleet, cold)["state"] == "owned", 20, what="the cold channel in eu")

        def stored_in_eu():
            got = client.request(publish_cmd(cold, {"i": 1}), timeout=15)
            return got.get("ok") is True and generation(got["epoch"]) == 1

        wait_until(stored_in_eu, 10, what="a publish stored by eu")
    finally:
        client.close()
    assert sum(edge_metric(fleet.edge(r), "wsfleet_ownership_moves_total")
               for r in fleet.regions) >= 2

    # Undrained: the mark is gone; what moved stays moved.
    undrained = region_cmd(fleet, "undrain", "us")
    assert undrained.returncode == 0, undrained.stderr
    listed = region_cmd(fleet, "list")
    assert "us  active" in listed.stdout, listed.stdout
    wait_until(lambda: fleet.edge("us").admin("GET", "/readyz").status == 200, 10,
               what="the region's edge ready again")
    assert owner_of(fleet, ch)["owner"] == "eu"
    bad = region_cmd(fleet, "drain", "mars")
    assert bad.returncode == 2 and "'mars' is not a region" in bad.stderr, bad.stderr
