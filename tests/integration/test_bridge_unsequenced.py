"""Unsequenced channels (ordering = "none") across regions: no history and no offsets,
but a publish made in any region reaches the channel's subscribers in every region,
once, through the owner region's bridges (an edge hands a publish for a channel owned
elsewhere to its bridges, which relay it to the owner; the owner's bridges deliver it
there and send it on to every other interested region, never back).
"""

import harness
from fleet import default_pins
from harness import wait_until
from nats_cluster import NatsTimeout
from wsclient import RecvTimeout

REGIONS = ("us", "eu", "ap")
LIVE = {"live": {"ordering": "none", "presence": False}}


def live_fleet(fleet_factory, bridges=1):
    pins = default_pins(REGIONS) + [("demo", "live", "us")]
    fleet = fleet_factory(regions=REGIONS, pins=pins, bridges_per_region=bridges,
                          edge_overrides={"tenants": {"demo": {"namespaces": LIVE}}})
    fleet.wait_links()
    return fleet


def messages(client, ch, within=0.5):
    out = []
    while True:
        try:
            f = client.next_event("message", timeout=within)
        except RecvTimeout:
            return out
        if f.get("channel") == ch:
            out.append(f["data"])


def test_unsequenced_publish_in_any_region_reaches_every_region_once(fleet_factory, cx):
    # Two bridges per region: each channel still takes one path (the chosen bridges).
    fleet = live_fleet(fleet_factory, bridges=2)
    ch = f"live:{harness.uniq()}"
    assert fleet.owner("demo", ch) == "us"
    subs = {r: cx(fleet.edge(r), harness.user(f"s-{r}")) for r in REGIONS}
    for c in subs.values():
        c.ok({"type": "subscribe", "channel": ch})
    pubs = {r: cx(fleet.edge(r), harness.user(f"p-{r}")) for r in REGIONS}

    # Interest takes a moment to reach the owner's bridges: probe from a non-owner region
    # until every subscriber got one.
    n = [0]

    def all_reached():
        n[0] += 1
        pubs["eu"].ok({"type": "publish", "channel": ch, "data": {"probe": n[0]}})
        got = [messages(c, ch, within=0.3) for c in subs.values()]
        return all(got)

    wait_until(all_reached, 20, what="probes in every region")
    for c in subs.values():
        messages(c, ch, within=0.5)  # late probes

    for origin in REGIONS:
        for i in range(5):
            pubs[origin].ok({"type": "publish", "channel": ch, "data": {"from": origin, "i": i}})
    want = sorted((o, i) for o in REGIONS for i in range(5))
    for region, c in subs.items():
        got = [(d["from"], d["i"]) for d in messages(c, ch, within=1.5)]
        assert sorted(got) == want, f"{region}: {got}"
        # Per publisher, in order (one path per channel).
        for o in REGIONS:
            assert [i for f, i in got if f == o] == list(range(5)), (region, got)


def test_trace_context_travels_with_the_message(fleet_factory, cx):
    """The W3C traceparent an edge puts on what it hands to the bridges arrives unchanged
    with the delivery in another region (edge -> bridge -> bridge -> edge)."""
    fleet = live_fleet(fleet_factory)
    ch = f"live:{harness.uniq()}"
    sub = cx(fleet.edge("ap"), harness.user("s-ap"))
    sub.ok({"type": "subscribe", "channel": ch})
    pub = cx(fleet.edge("eu"), harness.user("p-eu"))
    handed = fleet.sc.connect("eu")
    delivered = fleet.sc.connect("ap")
    try:
        h_sid = handed.subscribe("wsf.eu.xlive.>")
        d_sid = delivered.subscribe("wsf.ap.ch.>")
        handed.flush()
        delivered.flush()
        n = [0]

        def crossed():
            n[0] += 1
            pub.ok({"type": "publish", "channel": ch, "data": {"probe": n[0]}})
            return bool(messages(sub, ch, within=0.3))

        wait_until(crossed, 20, what="a message from eu at ap")
        # The last probe: its hand-over in eu and its delivery in ap.
        last = None
        while True:
            try:
                last = handed.next_msg(timeout=0.5, sid=h_sid)
            except NatsTimeout:
                break
        assert last is not None
        trace = last.headers.get("traceparent", "")
        parts = trace.split("-")
        assert len(parts) == 4 and parts[0] == "00" and len(parts[1]) == 32 and \
            len(parts[2]) == 16, trace
        seen = set()
        while True:
            try:
                m = delivered.next_msg(timeout=0.5, sid=d_sid)
            except NatsTimeout:
                break
            seen.add(m.headers.get("traceparent"))
        assert trace in seen, (trace, seen)
    finally:
        handed.close()
        delivered.close()
