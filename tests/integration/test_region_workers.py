"""Region mode with several worker processes per edge: every worker has its own NATS
link, and what crosses workers goes over NATS (not the host bus as well), so each client
gets each message exactly once and durable channels stay in offset order."""

import pytest

from wsclient import RecvTimeout

import harness


@pytest.fixture
def two_edges(nats_cluster_factory, edge_factory):
    cluster = nats_cluster_factory(n=1)

    def conf(name, workers):
        # No inbox: a probe sent before the user's interest reached the server is dropped
        # rather than queued (a queued one would come back later, from the inbox).
        return {"node": {"name": f"edge-{name}", "region": "eu", "workers": workers},
                "nats": {"servers": cluster.urls, "history_replicas": 1},
                "tenants": {"demo": {"inbox_ttl_ms": 0}}}

    return edge_factory(conf("a", 1), name="a"), edge_factory(conf("b", 2), name="b")


def worker_of(client):
    return client.welcome["session"].rsplit("-", 3)[1]  # node-pid-serial-random


def spread_clients(edge, cx, n, user_prefix):
    """At least n clients of `edge`, some on each of its two workers (the kernel spreads
    connections over the SO_REUSEPORT sockets at random: connect until both have some)."""
    clients = []
    while len(clients) < n or len({worker_of(c) for c in clients}) < 2:
        clients.append(cx(edge, f"{user_prefix}{len(clients)}"))
        assert len(clients) < 40, "every connection went to one worker"
    return clients


def test_durable_and_live_messages_reach_each_client_once_in_order(two_edges, cx):
    a, b = two_edges
    durable = harness.uniq("chat")
    live = harness.uniq("live")
    readers = spread_clients(b, cx, 6, "reader")
    for r in readers:
        assert r.request({"type": "subscribe", "channel": durable})["ok"]
        assert r.request({"type": "subscribe", "channel": live})["ok"]
    publisher_a = cx(a, "pub-a")
    publisher_b = readers[0]
    # A subscription's interest reaches the NATS servers a moment after its reply (for
    # live channels): probe until every reader has had one.
    got_probe = set()
    for attempt in range(50):
        assert publisher_a.request({"type": "publish", "channel": live,
                                    "data": {"probe": attempt}})["ok"]
        for i, r in enumerate(readers):
            try:
                while True:
                    r.next_event("message", timeout=0.05)
                    got_probe.add(i)
            except RecvTimeout:
                pass
        if len(got_probe) == len(readers):
            break
    assert len(got_probe) == len(readers), "some readers never got a live message"
    for r in readers:  # late probes
        try:
            while True:
                r.next_event("message", timeout=0.2)
        except RecvTimeout:
            pass
    offsets = []
    for n in range(10):
        sender = publisher_a if n % 2 == 0 else publisher_b
        reply = sender.request({"type": "publish", "channel": durable, "data": {"n": n},
                                "idempotency_key": f"k{n}"})
        assert reply["ok"], reply
        offsets.append(reply["offset"])
        reply = sender.request({"type": "publish", "channel": live, "data": {"n": n}})
        assert reply["ok"], reply
    assert offsets == sorted(offsets)
    for r in readers:
        got = []
        while len(got) < 20:
            f = r.next_event("message", timeout=5)
            got.append(f)
        durable_got = [(f["offset"], f["data"]["n"]) for f in got if f["channel"] == durable]
        live_got = [f["data"]["n"] for f in got if f["channel"] == live]
        assert durable_got == list(zip(offsets, range(10))), durable_got
        # ordering = "none": exactly once, and in order per publisher only (two publishers
        # on two edges reach a worker over two NATS paths).
        assert sorted(live_got) == list(range(10)), live_got
        assert [n for n in live_got if n % 2 == 0] == [0, 2, 4, 6, 8], live_got
        assert [n for n in live_got if n % 2 == 1] == [1, 3, 5, 7, 9], live_got
        r.no_event("message", within=0.3)


def test_direct_messages_and_joins_cross_workers_once(two_edges, cx):
    a, b = two_edges
    channel = harness.uniq("chat")
    watchers = spread_clients(b, cx, 4, "watcher")
    for w in watchers:
        assert w.request({"type": "subscribe", "channel": channel})["ok"]
    for w in watchers:
        while True:  # joins of the watchers themselves, in any order
            try:
                w.next_event("join", timeout=0.3)
            except Exception:  # noqa: BLE001 - RecvTimeout: none left
                break
    newcomer = cx(a, "newcomer")
    assert newcomer.request({"type": "subscribe", "channel": channel})["ok"]
    for w in watchers:
        assert w.next_event("join", timeout=5)["user"] == "newcomer"
        w.no_event("join", within=0.2)

    # One user with a connection on each worker of b: a send from a reaches both, once.
    bobs = []
    while len({worker_of(c) for c in bobs}) < 2:
        bobs.append(cx(b, "bob"))
        assert len(bobs) < 20, "could not get bob onto both workers"
    # A connection's interest reaches the NATS servers a moment after it opened: probe
    # until every one of bob's connections has had a message, then the real one.
    probed = set()
    for attempt in range(50):
        reply = newcomer.request({"type": "send", "user": "bob", "data": {"probe": attempt}})
        # "dropped" while no worker's interest in bob has reached the server yet.
        assert reply["ok"] and reply["delivered"] in ("online", "dropped"), reply
        for i, c in enumerate(bobs):
            try:
                while True:
                    c.next_event("direct", timeout=0.05)
                    probed.add(i)
            except RecvTimeout:
                pass
        if len(probed) == len(bobs):
            break
    assert len(probed) == len(bobs), "some of bob's connections never got a message"
    reply = newcomer.request({"type": "send", "user": "bob", "data": {"hi": 1}})
    assert reply["ok"] and reply["delivered"] == "online", reply
    for c in bobs:
        while True:  # late probes first
            got = c.next_event("direct", timeout=5)["data"]
            if "probe" not in got:
                break
        assert got == {"hi": 1}
        c.no_event("direct", within=0.2)
