"""The supercluster fixture (NatsSupercluster): regions joined by gateways, and what the
/gatewayz counters show about messages crossing between regions.

Counting tests run without JetStream and without the system account so that the only
gateway traffic is the test's own (see NatsSupercluster)."""

import time

import pytest

import harness
import nats_cluster as natsc

QUIET = {"jetstream": False, "system_account": False}
PROBE_TIMEOUT_S = 15.0


def _assert_counter_stays(read, expected, what, samples=5, interval=0.05):
    """The counter is updated while the server handles the PUB, before the PONG of the
    publisher's flush; a few samples over a short window catch a late increment."""
    for _ in range(samples):
        got = read()
        assert got == expected, f"{what}: {got} messages crossed, expected {expected}"
        time.sleep(interval)


def _await_interest(sc, pub, sub, src, subject, crossing=True):
    """Publishes probes on `subject` from region `src` until `sub` receives one (its
    interest has reached `src` over the gateway), then drains every probe that crossed
    (the counter says how many) so that the next counts start clean. crossing=False:
    `sub` is in `src` too (interest over routes); drains until quiet."""
    start = sc.gateway_msgs_sent(src)
    deadline = time.monotonic() + PROBE_TIMEOUT_S
    while True:
        pub.publish(subject, b"probe")
        pub.flush()
        try:
            sub.next_msg(timeout=0.1)
            break
        except natsc.NatsTimeout:
            if time.monotonic() >= deadline:
                pytest.fail(f"interest on {subject} never reached region {src}")
    pub.flush()
    if not crossing:
        while True:
            try:
                sub.next_msg(timeout=0.2)
            except natsc.NatsTimeout:
                return
    crossed = sc.gateway_msgs_sent(src) - start
    assert crossed >= 1
    for _ in range(crossed - 1):
        sub.next_msg(timeout=2.0)
    with pytest.raises(natsc.NatsTimeout):
        sub.next_msg(timeout=0.1)  # more probes delivered than crossed the gateway


def _no_interest_then_interest(sc, pub_at, sub_at, n=25):
    """Region us publishes; nothing crosses while eu has no subscriber (a local us
    subscriber gets everything), then exactly n cross once eu subscribes."""
    pub = sc.connect("us", pub_at)
    local = sc.connect("us", 0)
    local_sid = local.subscribe("orders.>")
    local.flush()
    eu = sc.connect("eu", sub_at)
    eu.subscribe("audit.>")  # interest in another subject does not pull orders over
    eu.flush()
    try:
        if len(sc.region("us")) > 1:
            _await_interest(sc, pub, local, "us", "orders.local-probe", crossing=False)
        base_sent = sc.gateway_msgs_sent("us")
        base_received = sc.gateway_msgs_received("eu")
        for i in range(n):
            pub.publish(f"orders.{i}", f"before-{i}".encode())
        pub.flush()
        got = [local.next_msg(timeout=2.0, sid=local_sid).payload for _ in range(n)]
        assert got == [f"before-{i}".encode() for i in range(n)]
        _assert_counter_stays(lambda: sc.gateway_msgs_sent("us"), base_sent,
                              "us -> eu without interest")
        assert sc.gateway_msgs_received("eu") == base_received

        sid = eu.subscribe("orders.>")
        eu.flush()
        _await_interest(sc, pub, eu, "us", "orders.probe")
        # the us subscriber got the probes too
        while True:
            try:
                local.next_msg(timeout=0.1, sid=local_sid)
            except natsc.NatsTimeout:
                break
        base_sent = sc.gateway_msgs_sent("us")
        base_received = sc.gateway_msgs_received("eu")
        for i in range(n):
            pub.publish(f"orders.{i}", f"after-{i}".encode())
        pub.flush()
        got = [eu.next_msg(timeout=5.0, sid=sid).payload for _ in range(n)]
        assert got == [f"after-{i}".encode() for i in range(n)]
        with pytest.raises(natsc.NatsTimeout):
            eu.next_msg(timeout=0.2)
        _assert_counter_stays(lambda: sc.gateway_msgs_sent("us"), base_sent + n,
                              "us -> eu with one interested region")
        assert sc.gateway_msgs_received("eu") == base_received + n
        assert sc.gateway_msgs_sent("eu") == 0, "eu published nothing"
    finally:
        for c in (pub, local, eu):
            c.close()


def test_two_regions_ready_with_gateways_both_ways(nats_supercluster_factory):
    sc = nats_supercluster_factory(**QUIET)
    for region, other in (("us", "eu"), ("eu", "us")):
        gz = sc.gatewayz(region)
        assert gz["name"] == region
        assert set(gz["outbound_gateways"]) == {other}
        assert gz["outbound_gateways"][other]["connection"]["out_msgs"] == 0
        assert set(gz["inbound_gateways"]) == {other}
    assert sc.region("us").region == "us" and len(sc.region("eu")) == 1


def test_message_crosses_only_with_remote_interest(nats_supercluster_factory):
    _no_interest_then_interest(nats_supercluster_factory(**QUIET), pub_at=0, sub_at=0)


def test_three_servers_per_region_count_each_message_once(nats_supercluster_factory):
    sc = nats_supercluster_factory(servers_per_region=3, **QUIET)
    for s in sc.servers:
        assert len(s.gatewayz()["outbound_gateways"]) == 1
    # publisher and subscriber on servers other than the ones the gateways may pick
    _no_interest_then_interest(sc, pub_at=1, sub_at=2)


def test_three_regions_message_goes_only_where_interest_is(nats_supercluster_factory):
    sc = nats_supercluster_factory(regions=("us", "eu", "ap"), **QUIET)
    pub = sc.connect("us")
    eu = sc.connect("eu")
    ap = sc.connect("ap")
    try:
        eu_sid = eu.subscribe("orders.>")
        eu.flush()
        ap.subscribe("audit.>")
        ap.flush()
        _await_interest(sc, pub, eu, "us", "orders.probe")
        _await_interest(sc, pub, ap, "us", "audit.probe")
        to_eu = sc.gateway_msgs_sent("us", to="eu")
        to_ap = sc.gateway_msgs_sent("us", to="ap")
        n = 30
        for i in range(n):
            pub.publish(f"orders.{i}", str(i).encode())
        pub.flush()
        got = [eu.next_msg(timeout=5.0, sid=eu_sid).payload for _ in range(n)]
        assert got == [str(i).encode() for i in range(n)]
        _assert_counter_stays(lambda: sc.gateway_msgs_sent("us", to="eu"), to_eu + n,
                              "us -> eu")
        _assert_counter_stays(lambda: sc.gateway_msgs_sent("us", to="ap"), to_ap,
                              "us -> ap (no interest in orders)")
        assert sc.gateway_msgs_received("ap") == to_ap
        with pytest.raises(natsc.NatsTimeout):
            ap.next_msg(timeout=0.2)
        # one message both regions want crosses twice, once to each
        pub.publish("audit.x", b"a")
        pub.flush()
        sent = sc.gateway_msgs_sent("us")
        assert sent == to_eu + n + to_ap + 1, sent  # eu has no audit interest
        assert ap.next_msg(timeout=5.0).payload == b"a"
    finally:
        for c in (pub, eu, ap):
            c.close()


def test_jetstream_meta_group_spans_regions(nats_supercluster_factory):
    sc = nats_supercluster_factory()
    leader = sc.meta_leader()
    assert leader in {s.name for s in sc.servers}
    assert {s.meta_leader() for s in sc.servers} == {leader}
    c = sc.connect("us")
    try:
        # a stream placed in each region, created from us (the API crosses the gateway)
        for region in ("us", "eu"):
            r = c.stream_create(f"S_{region}", [f"s.{region}"],
                                placement={"cluster": region})
            assert "error" not in r, r
            assert r["cluster"]["name"] == region, r
            # The new stream's interest crosses the gateway a moment after it exists.
            ack = harness.wait_until(lambda region=region: _stored(c, f"s.{region}"), 10,
                                     what=f"a publish on s.{region} stored")
            assert ack.get("seq") == 1, ack
    finally:
        c.close()


def _stored(client, subject):
    """The PubAck, or None while nobody in the supercluster stores the subject yet."""
    try:
        return client.js_publish(subject, b"x")
    except natsc.NoResponders:
        return None


# ------------------------------------------------------------------------- partitions
def _exactly(sub, sid, want, what):
    got = [sub.next_msg(timeout=5.0, sid=sid).payload for _ in range(len(want))]
    assert got == want, what
    with pytest.raises(natsc.NatsTimeout):
        sub.next_msg(timeout=0.2, sid=sid)


def _send(pub, prefix, tag, n=20):
    payloads = [f"{tag}-{i}".encode() for i in range(n)]
    for i, p in enumerate(payloads):
        pub.publish(f"{prefix}.{i}", p)
    pub.flush()
    return payloads


def test_gateways_go_through_the_proxies_gossip_included(nats_supercluster_factory):
    sc = nats_supercluster_factory(regions=("us", "eu", "ap"), servers_per_region=2,
                                   partitionable=True, **QUIET)
    proxy_ports = {p.port for p in sc.proxies.values()}
    real_ports = {s.gateway_port for s in sc.servers}
    assert not proxy_ports & real_ports
    for s in sc.servers:
        gz = s.gatewayz()
        # What the server gossips about itself to other regions is its proxy.
        assert gz["port"] == sc.proxies[s.name].port, gz
        for remote, gw in gz["outbound_gateways"].items():
            assert gw["connection"]["port"] in proxy_ports, (s.name, remote, gw)
    # Every outbound connection of every server is a live relay of some proxy.
    assert sum(p.live_links() for p in sc.proxies.values()) == len(sc.servers) * 2


def test_cut_stops_messages_both_ways_heal_restores_them_third_region_unaffected(
        nats_supercluster_factory):
    sc = nats_supercluster_factory(regions=("us", "eu", "ap"), partitionable=True, **QUIET)
    us, eu, ap = sc.connect("us"), sc.connect("eu"), sc.connect("ap")
    try:
        to_us, to_eu, to_ap = us.subscribe("to-us.>"), eu.subscribe("to-eu.>"), \
            ap.subscribe("to-ap.>")
        for c in (us, eu, ap):
            c.flush()
        for pub, src, sub, dst in ((us, "us", eu, "eu"), (eu, "eu", us, "us"),
                                   (us, "us", ap, "ap"), (ap, "ap", us, "us"),
                                   (eu, "eu", ap, "ap"), (ap, "ap", eu, "eu")):
            _await_interest(sc, pub, sub, src, f"to-{dst}.probe-{src}")
        _exactly(eu, to_eu, _send(us, "to-eu", "before"), "us -> eu before the cut")

        sc.cut("us", "eu")
        sc.wait_gateways("us", "eu", connected=False, timeout=10)
        # Both sides keep dialling (about once a second) and the proxy keeps refusing.
        harness.wait_until(lambda: sc.partitions.refusals("us", "eu") >= 2 and
                           sc.partitions.refusals("eu", "us") >= 2, 15,
                           what="reconnects refused both ways")
        assert sc.gateway_links("us", "eu") == {"us->eu": 0, "eu->us": 0}
        assert all(sc.gateway_links("us", "ap").values()), sc.gateway_links("us", "ap")
        assert all(sc.gateway_links("eu", "ap").values()), sc.gateway_links("eu", "ap")

        _send(us, "to-eu", "cut")
        _send(eu, "to-us", "cut")
        # The third region still talks to both sides, both ways.
        _exactly(ap, to_ap, _send(us, "to-ap", "us-during"), "us -> ap during the cut")
        _exactly(ap, to_ap, _send(eu, "to-ap", "eu-during"), "eu -> ap during the cut")
        _exactly(us, to_us, _send(ap, "to-us", "ap-during"), "ap -> us during the cut")
        _exactly(eu, to_eu, _send(ap, "to-eu", "ap-during"), "ap -> eu during the cut")
        # The messages of the cut-off side (sent first, on the same subscriptions) would
        # have shown up in the _exactly calls above: none crossed.
        assert sc.gateway_links("us", "eu") == {"us->eu": 0, "eu->us": 0}

        sc.heal("us", "eu")
        sc.wait_gateways("us", "eu", connected=True, timeout=15)
        _await_interest(sc, us, eu, "us", "to-eu.probe-healed")
        _exactly(eu, to_eu, _send(us, "to-eu", "after"), "us -> eu after heal")
        _await_interest(sc, eu, us, "eu", "to-us.probe-healed")
        _exactly(us, to_us, _send(eu, "to-us", "after"), "eu -> us after heal")
    finally:
        for c in (us, eu, ap):
            c.close()

