"""wsfleet-bridge across regions (fleet.py): a channel crosses a gateway only when another
region has subscribers, once per message and interested region, in the owner's offset
order; publishes from other regions are stored and ordered by the owner; a partition
keeps local delivery going, refuses publishes across the cut and is caught up after
heal; a second bridge per region takes over from a killed one without loss, duplicate or
double forwarding.

Every region's namespace is pinned to it (fleet.region_namespaces): "us:room-1" is owned
by region us. Each test has its own supercluster and fleet (one nats-server per region).

Gateway counts (/gatewayz out_msgs, every region and direction) always include traffic
the test does not cause: nats-server's own (system account, the JetStream meta group,
about one message a second) and the bridges' control messages (a heartbeat per bridge
and remote region each heartbeat_interval_ms = 500, an interest snapshot each
interest_refresh_ms = 2000). So a count is compared with what the gateway message rate
of a quiet window (WINDOW_S, taken just before) predicts for the same length of time.
"""

import contextlib
import time

import pytest

import harness
from fleet import channel
from harness import wait_until
from nats_cluster import DeliveryOracle
from region_util import (FollowingSubscriber, RetryingPublisher, await_live_route,
                         drop_probes, messages_of, publish_cmd, wait_caught_up)

WINDOW_S = 6.0          # length of a gateway counting window (baseline and load)
CATCH_UP_S = 15.0       # a region cut off catches up within this after heal
FORWARDED = "wsfleet_bridge_forwarded_messages_total"


# ------------------------------------------------------------------------------ helpers
def sub(client, ch, **extra):
    return client.ok({"type": "subscribe", "channel": ch, **extra}, timeout=15)


def pub(client, ch, data, key=None):
    return client.ok(publish_cmd(ch, data, key), timeout=15)["offset"]


def gateway_total(fleet):
    """Messages sent over gateways by every region, in every direction."""
    return sum(fleet.sc.gateway_msgs_sent(r) for r in fleet.regions)


def forwarded(fleet, direction=None):
    """Every bridge's forwarded-message counter summed (one direction or both)."""
    labels = {} if direction is None else {"direction": direction}
    return sum(fleet.bridge_metric(r, FORWARDED, **labels) for r in fleet.regions)


def tolerance(noise):
    """How far a window's gateway count may stray by chance from the `noise` the baseline
    rate predicts for it. Periodic traffic (heartbeats, interest snapshots, nats-server's
    ~1/s) lands one tick more or fewer in a window depending on its phase, and the
    JetStream meta group may send a small burst: 10 messages plus half the expected
    noise covers that. A leak of the channel's messages (hundreds) cannot hide in it;
    the bridges' own counters, checked exactly, catch smaller ones."""
    return 10 + noise / 2


class Baseline:
    """The gateway message rate of a quiet fleet, over one WINDOW_S window."""

    def __init__(self, fleet):
        self.count, self.seconds = counting_window(fleet)

    def noise(self, seconds):
        return self.count * seconds / self.seconds


def counting_window(fleet, action=None, length=WINDOW_S):
    """(gateway messages, seconds) over a window of at least `length` seconds in which
    action() runs, and longer if the action does (everything it causes is counted)."""
    start = gateway_total(fleet)
    t0 = time.monotonic()
    if action is not None:
        action()
    elapsed = time.monotonic() - t0
    if elapsed < length:
        time.sleep(length - elapsed)  # the rest of a fixed-length measurement window
    count = gateway_total(fleet) - start
    return count, time.monotonic() - t0


def open_route(publisher, receivers, ch, timeout=20.0):
    """Until the channel's messages reach every receiver in another region: probes from
    the owner region until each receiver got one, then one last probe that every
    receiver must get, so that no probe (nor a history fetch for the first, dropped ones)
    is still under way when the caller starts counting. Returns the last probe's offset."""
    for r in receivers:
        await_live_route(lambda d: pub(publisher, ch, d), r, ch, timeout)
    last = pub(publisher, ch, {"probe": "last"})
    for r in receivers:
        r.recv_until(lambda f: f.get("type") == "message" and f.get("channel") == ch and
                     f.get("offset") == last, 10, what="the last probe")
        drop_probes(r)
    return last


def warm_up(client, ch, subscribers, oracle, timeout=20.0):
    """For FollowingSubscribers: publishes oracle-recorded probes ("probe", k) until every
    subscriber received one (the route to its region is live)."""
    deadline = time.monotonic() + timeout
    k = 0
    while True:
        off = pub(client, ch, {"p": "probe", "i": k})
        oracle.published("probe", k, offset=off)
        k += 1
        try:
            wait_until(lambda: all(s.last is not None and s.last >= off for s in subscribers),
                       0.5, what="probe at every subscriber")
            return off
        except AssertionError:
            if time.monotonic() >= deadline:
                behind = {s.sub_name: s.last for s in subscribers}
                raise AssertionError(f"no probe of {ch} reached every subscriber within "
                                     f"{timeout}s: {behind}") from None


@contextlib.contextmanager
def subscribers_running(subscribers):
    """Starts them and waits until each is subscribed; stops them if the block fails
    (run_load stops them otherwise)."""
    try:
        for s in subscribers:
            s.start()
        for s in subscribers:
            assert s.ready.wait(20), f"{s.sub_name} not subscribed"
            assert not s.failures, s.failures
        yield
    except BaseException:
        stop_subscribers(subscribers)
        raise


def stop_subscribers(subscribers):
    """Stops them (also after a failed assertion: no check here to mask it)."""
    for s in subscribers:
        s.stop_event.set()
    for s in subscribers:
        s.join(5.0)


def assert_subscribers_fine(subscribers):
    assert not [s.sub_name for s in subscribers if s.is_alive()], "subscribers did not stop"
    problems = [f"{s.sub_name}: {f}" for s in subscribers for f in s.failures]
    assert not problems, problems


def run_load(subscribers, publishers, fault=None, after_each=30, timeout=45):
    """Starts the publishers (subscribers already run); with a fault, runs it once every
    publisher has `after_each` acks; waits for the publishers, then for every subscriber
    to reach the last acknowledged offset. Stops everything, also on failure."""
    try:
        for p in publishers:
            p.start()
        if fault is not None:
            wait_until(lambda: all(len(p.acked) >= after_each or p.failures
                                   for p in publishers), 30,
                       what=f"{after_each} acks per publisher")
            fault()
        for p in publishers:
            p.join(timeout)
            assert not p.is_alive(), f"{p.pub_name} still publishing after {timeout}s"
        problems = [f"{p.pub_name}: {f}" for p in publishers for f in p.failures]
        assert not problems, problems
        wait_caught_up(subscribers, max(o for p in publishers for o in p.acked), timeout=20)
    finally:
        for p in publishers:
            p.stop_event.set()
        stop_subscribers(subscribers)
    assert_subscribers_fine(subscribers)


def assert_no_redelivery(oracle):
    """The same offset never reaches a subscriber twice (the oracle only counts it)."""
    again = {name: r["redelivered"] for name, r in oracle.classify().items() if r["redelivered"]}
    assert not again, f"offsets delivered twice: {again}"


def bridge_forwarded(bridge, remote, direction):
    return bridge.metric(FORWARDED, region=remote, direction=direction)


# ------------------------------------------------------------------ a: region-local only
def test_region_local_channel_sends_nothing_over_the_gateways(fleet_factory, cx):
    fleet = fleet_factory()
    fleet.wait_links()
    ch = channel("us")
    assert fleet.owner("demo", ch) == "us"
    local = cx(fleet.edge("us"), harness.user("local"))
    epoch = sub(local, ch)["epoch"]
    publisher = cx(fleet.edge("us"), harness.user("p"))
    pub(publisher, ch, {"warm": 1})   # the history stream and the channel exist now
    messages_of(local, ch, 1)

    fwd_before = forwarded(fleet)
    baseline = Baseline(fleet)
    acked = []
    n = 300

    def load():
        for i in range(n):
            acked.append(pub(publisher, ch, {"i": i}))
        got = messages_of(local, ch, n, timeout=20)
        assert [m["offset"] for m in got] == acked
        assert all(m["epoch"] == epoch for m in got)

    during, seconds = counting_window(fleet, load)
    assert baseline.count > 0, "no gateway traffic at all: are the counters read?"
    noise = baseline.noise(seconds)
    assert during <= noise + tolerance(noise), \
        f"{during} gateway messages in {seconds:.1f}s while publishing {n} region-local " \
        f"ones; the quiet rate predicts {noise:.0f}"
    assert forwarded(fleet) == fwd_before, "a bridge forwarded a region-local channel"
    # The bridges are alive and talking (their heartbeats are part of the baseline).
    assert fleet.links_up("us", "eu") == 1


# ------------------------------------------------------------------ b: a shared channel
def test_shared_channel_crosses_once_per_message_in_offset_order(fleet_factory, cx):
    fleet = fleet_factory()
    fleet.wait_links()
    ch = channel("us")
    remote = cx(fleet.edge("eu"), harness.user("remote"))
    local = cx(fleet.edge("us"), harness.user("local"))
    r_remote, r_local = sub(remote, ch), sub(local, ch)
    assert r_remote["epoch"] == r_local["epoch"], (r_remote, r_local)
    publisher = cx(fleet.edge("us"), harness.user("p"))
    open_route(publisher, [remote], ch)

    us_bridge = fleet.bridge("us")
    out_before = bridge_forwarded(us_bridge, "eu", "out")
    in_before = bridge_forwarded(fleet.bridge("eu"), "us", "in")
    baseline = Baseline(fleet)
    n = 300
    acked = []

    def load():
        for i in range(n):
            acked.append(pub(publisher, ch, {"i": i}))
        got = messages_of(remote, ch, n, timeout=20)
        assert [m["offset"] for m in got] == acked, "remote order is not the owner's"
        assert [m["data"]["i"] for m in got] == list(range(n))
        assert all(m["epoch"] == r_remote["epoch"] for m in got)

    during, seconds = counting_window(fleet, load)
    remote.no_event("message", within=0.3)
    noise = baseline.noise(seconds)
    assert abs(during - noise - n) <= tolerance(noise), \
        f"{during} gateway messages in {seconds:.1f}s for {n} messages to one region; " \
        f"the quiet rate predicts {noise:.0f} besides them"
    assert bridge_forwarded(us_bridge, "eu", "out") - out_before == n
    assert bridge_forwarded(fleet.bridge("eu"), "us", "in") - in_before == n
    # The owner region's own subscriber got them all too, in the same order.
    assert [m["offset"] for m in messages_of(local, ch, n, timeout=10)] == acked


# ---------------------------------------------------------------- c: three regions
def test_three_regions_publish_and_subscribe_one_sequence_nothing_lost(fleet_factory):
    fleet = fleet_factory(regions=("us", "eu", "ap"))
    fleet.wait_links()
    ch = channel("eu")
    oracle = DeliveryOracle()
    subs = [FollowingSubscriber(f"sub-{r}", [fleet.edge(r)], ch, oracle)
            for r in fleet.regions]
    with subscribers_running(subs):
        prober = fleet.edge("eu").connect(harness.user("prober"))
        try:
            warm_up(prober, ch, subs, oracle)
        finally:
            prober.close()
    pubs = [RetryingPublisher(f"pub-{r}", [fleet.edge(r)], ch, oracle, count=60,
                              interval=0.01)
            for r in fleet.regions]
    run_load(subs, pubs)
    # A healthy fleet: no publish needed a retry.
    assert all(not p.refusals for p in pubs), [p.refusals for p in pubs]
    oracle.assert_nothing_lost()
    assert_no_redelivery(oracle)
    # One sequence: every subscriber saw the same offsets carrying the same messages in
    # the same order (after the latest subscription point, which all of them must have).
    since = max(oracle.subscribers.values())
    seqs = {name: [(o, m) for o, m in got if o > since]
            for name, got in oracle.receptions.items()}
    first = seqs["sub-eu"]
    assert len(first) >= 3 * 60
    for name, seq in seqs.items():
        assert seq == first, f"{name} saw another sequence than sub-eu"


# ------------------------------------------------------------------- d: partition
def test_partition_local_delivery_goes_on_remote_publishes_refused_catch_up_after_heal(
        fleet_factory):
    # A third region keeps the JetStream meta group (one group across the supercluster)
    # with a majority while us and eu are cut from each other.
    fleet = fleet_factory(regions=("us", "eu", "ap"), partitionable=True)
    fleet.wait_links()
    a, b = channel("us", "a"), channel("eu", "b")
    oa, ob = DeliveryOracle(), DeliveryOracle()
    a_us = FollowingSubscriber("a@us", [fleet.edge("us")], a, oa)
    a_eu = FollowingSubscriber("a@eu", [fleet.edge("eu")], a, oa)
    b_eu = FollowingSubscriber("b@eu", [fleet.edge("eu")], b, ob)
    b_us = FollowingSubscriber("b@us", [fleet.edge("us")], b, ob)
    subs = [a_us, a_eu, b_eu, b_us]
    clients = []
    try:
        with subscribers_running(subs):
            # owner-side publishers, then publishers across the cut
            pa, pb, xa, xb = (fleet.edge(r).connect(harness.user(n)) for r, n in
                              (("us", "pa"), ("eu", "pb"), ("eu", "xa"), ("us", "xb")))
            clients = [pa, pb, xa, xb]
        warm_up(pa, a, [a_us, a_eu], oa)
        warm_up(pb, b, [b_eu, b_us], ob)

        def publish(client, ch, oracle, name, seqs):
            last = None
            for i in seqs:
                last = pub(client, ch, {"p": name, "i": i})
                oracle.published(name, i, offset=last)
            return last

        last_a = publish(pa, a, oa, "pa", range(0, 10))
        last_b = publish(pb, b, ob, "pb", range(0, 10))
        wait_caught_up([a_us, a_eu], last_a, timeout=10)
        wait_caught_up([b_eu, b_us], last_b, timeout=10)

        fleet.sc.cut("us", "eu")
        fleet.sc.wait_gateways("us", "eu", connected=False, timeout=10)
        # down_after_ms = 2000 without a heartbeat from the other side
        fleet.wait_links(up=False, pairs=[("us", "eu")], timeout=10)
        assert fleet.links_up("us", "ap") == 1 and fleet.links_up("eu", "ap") == 1

        # Local delivery goes on, on both sides.
        cut_a = publish(pa, a, oa, "pa", range(10, 40))
        cut_b = publish(pb, b, ob, "pb", range(10, 40))
        wait_caught_up([a_us], cut_a, timeout=10)
        wait_caught_up([b_eu], cut_b, timeout=10)
        # Nothing crossed.
        assert a_eu.last == last_a and b_us.last == last_b, (a_eu.last, b_us.last)

        # Publishes across the cut are refused, never acknowledged.
        refused_before = fleet.bridge_metric("eu", "wsfleet_bridge_publishes_total",
                                             region="us", result="refused")
        for client, ch, oracle, name in ((xa, a, oa, "xa"), (xb, b, ob, "xb")):
            for i in range(3):
                r = client.request(publish_cmd(ch, {"p": name, "i": i}, key=f"{name}-{i}"),
                                   timeout=15)
                assert r.get("ok") is False, f"publish across the cut acknowledged: {r}"
                assert r["error"]["code"] == "unavailable", r
                oracle.published(name, i, acked=False)
        assert fleet.bridge_metric("eu", "wsfleet_bridge_publishes_total", region="us",
                                   result="refused") >= refused_before + 3

        healed_at = time.monotonic()
        fleet.sc.heal("us", "eu")
        # Nothing new is published: the owner's bridges resend each shared channel's last
        # message after heal, and the edges fetch what they missed from the owner.
        wait_caught_up([a_eu], cut_a, timeout=CATCH_UP_S)
        wait_caught_up([b_us], cut_b, timeout=max(0.5, CATCH_UP_S -
                                                   (time.monotonic() - healed_at)))
        # Live again, and publishes across work again.
        fleet.wait_links(up=True, pairs=[("us", "eu")], timeout=10)
        after_a = publish(pa, a, oa, "pa", range(40, 45))
        after_b = publish(pb, b, ob, "pb", range(40, 45))
        ok_a = wait_until(lambda: _try_publish(xa, a, {"p": "xa-after", "i": 0}), 15,
                          interval=0.2, what="a publish from eu to a us channel")
        oa.published("xa-after", 0, offset=ok_a)
        wait_caught_up([a_us, a_eu], max(after_a, ok_a), timeout=10)
        wait_caught_up([b_eu, b_us], after_b, timeout=10)
    finally:
        for c in clients:
            c.close(timeout=0.5)
        stop_subscribers(subs)
    assert_subscribers_fine(subs)
    for oracle in (oa, ob):
        oracle.assert_nothing_lost()
        assert_no_redelivery(oracle)
        stored = {n: r["unacked_delivered"] for n, r in oracle.classify().items()
                  if r["unacked_delivered"]}
        assert not stored, f"refused publishes were stored and delivered: {stored}"


def _try_publish(client, ch, data):
    """The offset, or None when refused (the link is coming back)."""
    key = f"{data['p']}-{data['i']}"
    r = client.request(publish_cmd(ch, data, key=key), timeout=15)
    if r.get("ok") is True:
        return r["offset"]
    assert r["error"]["code"] == "unavailable", r
    return None


# -------------------------------------------------------- e: a bridge killed under load
@pytest.mark.parametrize("side", ["owner", "subscriber"])
def test_bridge_killed_under_load_nothing_lost_no_duplicate(fleet_factory, side):
    fleet = fleet_factory(bridges_per_region=2)
    fleet.wait_links()
    ch = channel("us")
    oracle = DeliveryOracle()
    remote = FollowingSubscriber("sub-eu", [fleet.edge("eu")], ch, oracle)
    local = FollowingSubscriber("sub-us", [fleet.edge("us")], ch, oracle)
    subs = [remote, local]
    region, other, direction = ("us", "eu", "out") if side == "owner" else ("eu", "us", "in")
    with subscribers_running(subs):
        # The bridge doing the work for this channel on the chosen side: its counter moves.
        before = [bridge_forwarded(b, other, direction) for b in fleet.bridges[region]]
        prober = fleet.edge("us").connect(harness.user("prober"))

        def moved_now():
            return [bridge_forwarded(b, other, direction) - x
                    for b, x in zip(fleet.bridges[region], before)]

        try:
            warm_up(prober, ch, [remote, local], oracle)
            # The first probes may reach the remote region from the history (the owner
            # resends a channel's tail when interest arrives) rather than live: probe
            # until one crossed live.
            for k in range(40):
                if any(moved_now()):
                    break
                off = pub(prober, ch, {"p": "probe", "i": 1000 + k})
                oracle.published("probe", 1000 + k, offset=off)
                time.sleep(0.05)
        finally:
            prober.close()
        moved = moved_now()
        assert sum(1 for m in moved if m) == 1, f"{side} bridges that forwarded: {moved}"
    victim = next(b for b, m in zip(fleet.bridges[region], moved) if m)
    survivor = next(b for b in fleet.bridges[region] if b is not victim)
    survivor_before = bridge_forwarded(survivor, other, direction)

    # Paced so that publishing goes on for seconds after the kill, longer than the
    # survivor needs to notice (down_after_ms = 2000): the take-over happens under load.
    pubs = [RetryingPublisher("pub-us", [fleet.edge("us")], ch, oracle, count=250,
                              interval=0.02),
            RetryingPublisher("pub-eu", [fleet.edge("eu")], ch, oracle, count=250,
                              interval=0.02)]
    run_load(subs, pubs, fault=victim.kill)
    oracle.assert_nothing_lost()
    assert_no_redelivery(oracle)
    assert bridge_forwarded(survivor, other, direction) > survivor_before, \
        f"the surviving {side} bridge {survivor.name} never took the channel over"
    survivor.check_alive()


# ---------------------------------------------------- f: two bridges, one crossing
def test_two_bridges_per_region_forward_each_message_once(fleet_factory, cx):
    fleet = fleet_factory(bridges_per_region=2)
    fleet.wait_links()
    ch = channel("us")
    remote = cx(fleet.edge("eu"), harness.user("remote"))
    sub(remote, ch)
    publisher = cx(fleet.edge("us"), harness.user("p"))
    open_route(publisher, [remote], ch)

    out_before = fleet.bridge_metric("us", FORWARDED, region="eu", direction="out")
    in_before = fleet.bridge_metric("eu", FORWARDED, region="us", direction="in")
    per_bridge_before = [bridge_forwarded(b, "eu", "out") for b in fleet.bridges["us"]]
    baseline = Baseline(fleet)
    n = 200
    acked = []

    def load():
        for i in range(n):
            acked.append(pub(publisher, ch, {"i": i}))
        got = messages_of(remote, ch, n, timeout=20)
        assert [m["offset"] for m in got] == acked

    during, seconds = counting_window(fleet, load)
    remote.no_event("message", within=0.3)
    assert fleet.bridge_metric("us", FORWARDED, region="eu", direction="out") - \
        out_before == n, "owner-side bridges forwarded some messages twice (or not at all)"
    assert fleet.bridge_metric("eu", FORWARDED, region="us", direction="in") - \
        in_before == n, "subscriber-side bridges republished some messages twice"
    noise = baseline.noise(seconds)
    assert abs(during - noise - n) <= tolerance(noise), \
        f"{during} gateway messages in {seconds:.1f}s for {n} messages; the quiet rate " \
        f"predicts {noise:.0f} besides them"
    # One channel, one elected owner-side bridge: the other forwarded none of it.
    per_bridge = [bridge_forwarded(b, "eu", "out") - x
                  for b, x in zip(fleet.bridges["us"], per_bridge_before)]
    assert sorted(per_bridge) == [0, n], per_bridge

