"""Region presence and the offline inbox: edges on a three-server NATS cluster (JetStream
on, R3 streams).

Each host's LMDB holds the region's presence (replicated between edges); queries and
join/leave events are region-wide; a killed edge disappears within the presence TTL, a
stopped one at once; direct messages to a user offline in the whole region wait in the
inbox and are delivered on the user's next connect.
"""

import time

import pytest

import harness

TTL_MS = 3000


@pytest.fixture
def region(nats_cluster_factory, edge_factory):
    """region(names=("a", "b"), workers=1, tenants=None) -> list of edges on one region."""
    cluster = nats_cluster_factory(n=3)

    def make(names=("a", "b"), workers=1, extra=None):
        edges = []
        for name in names:
            over = {
                "node": {"name": f"edge-{name}", "region": "eu", "workers": workers},
                "nats": {"servers": cluster.urls, "history_replicas": 3,
                         "reconnect_wait_ms": 50},
                "presence": {"ttl_ms": TTL_MS, "heartbeat_ms": 300},
            }
            if extra:
                harness.deep_merge(over, extra)
            edges.append(edge_factory(over, name=name))
        return edges

    make.cluster = cluster
    return make


def members(client, channel):
    reply = client.request({"type": "presence", "channel": channel})
    assert reply["ok"], reply
    return {m["user"]: m["connections"] for m in reply["members"]}


def test_presence_queries_and_join_leave_are_region_wide(region, cx):
    a, b = region()
    channel = harness.uniq("chat")
    alice = cx(a, "alice")
    bob = cx(b, "bob")
    assert alice.request({"type": "subscribe", "channel": channel})["ok"]
    assert bob.request({"type": "subscribe", "channel": channel})["ok"]
    assert alice.next_event("join")["user"] == "bob"
    harness.wait_until(lambda: members(bob, channel) == {"alice": 1, "bob": 1}, 5,
                       what="edge b to see alice")
    harness.wait_until(lambda: members(alice, channel) == {"alice": 1, "bob": 1}, 5,
                       what="edge a to see bob")

    # The backend API of either edge answers for the whole region.
    r = b.admin("GET", f"/api/v1/presence?tenant=demo&user=alice")
    assert r.status == 200, r.body
    assert len(r.json()["connections"]) == 1

    # A second device of alice on edge b counts as a second connection.
    alice2 = cx(b, "alice")
    assert alice2.request({"type": "subscribe", "channel": channel})["ok"]
    harness.wait_until(lambda: members(alice, channel) == {"alice": 2, "bob": 1}, 5,
                       what="edge a to count both of alice's connections")

    alice.close()
    alice2.close()
    assert bob.next_event("leave")["user"] == "alice"
    harness.wait_until(lambda: members(bob, channel) == {"bob": 1}, 5,
                       what="alice gone from edge b's view")


def test_a_killed_edge_is_swept_within_the_ttl(region, cx):
    a, b = region()
    channel = harness.uniq("chat")
    alice = cx(a, "alice")
    bob = cx(b, "bob")
    assert alice.request({"type": "subscribe", "channel": channel})["ok"]
    assert bob.request({"type": "subscribe", "channel": channel})["ok"]
    harness.wait_until(lambda: "alice" in members(bob, channel), 5, what="alice replicated")

    a.kill()
    started = time.monotonic()
    leave = bob.next_event("leave", timeout=TTL_MS / 1000 + 5)
    waited = time.monotonic() - started
    assert leave["user"] == "alice"
    assert waited < TTL_MS / 1000 + 3, f"swept after {waited:.1f}s, TTL {TTL_MS} ms"
    assert members(bob, channel) == {"bob": 1}
    m = b.metrics()
    assert m.value("wsfleet_presence_swept_connections_total") >= 1


def test_a_stopped_edge_says_goodbye(region, cx):
    a, b = region()
    channel = harness.uniq("chat")
    alice = cx(a, "alice")
    bob = cx(b, "bob")
    assert alice.request({"type": "subscribe", "channel": channel})["ok"]
    assert bob.request({"type": "subscribe", "channel": channel})["ok"]
    harness.wait_until(lambda: "alice" in members(bob, channel), 5, what="alice replicated")
    started = time.monotonic()
    a.stop()
    assert bob.next_event("leave", timeout=5)["user"] == "alice"
    harness.wait_until(lambda: members(bob, channel) == {"bob": 1}, 5, what="alice removed")
    # Well before the TTL would have removed her.
    assert time.monotonic() - started < TTL_MS / 1000


def test_a_restarted_edge_rebuilds_its_view_from_snapshots(region, cx):
    a, b = region()
    channel = harness.uniq("chat")
    users = [f"u{i}" for i in range(20)]
    clients = [cx(a, u) for u in users]
    for c in clients:
        assert c.request({"type": "subscribe", "channel": channel})["ok"]
    probe = cx(b, "probe")
    harness.wait_until(lambda: len(members(probe, channel)) == len(users), 5,
                       what="edge b to see every user")
    probe.close()
    # A hard restart loses the replica's state: it must take a snapshot of edge a.
    b.restart(hard=True)
    probe = cx(b, "probe")
    harness.wait_until(lambda: set(members(probe, channel)) == set(users), 5,
                       what="edge b's view rebuilt after its restart")
    # And changes after the snapshot keep flowing.
    clients[0].close()
    harness.wait_until(lambda: users[0] not in members(probe, channel), 5,
                       what="a leave after the snapshot")


def test_presence_of_a_multi_worker_edge_is_seen_by_every_worker_elsewhere(region, cx):
    a, = region(names=("a",), workers=1)
    b, = region(names=("b",), workers=2)
    channel = harness.uniq("chat")
    alice = cx(a, "alice")
    assert alice.request({"type": "subscribe", "channel": channel})["ok"]

    def seen_by_worker(i):
        r = b.worker_admin(i, "GET", f"/api/v1/presence?tenant=demo&channel={channel}")
        return r.status == 200 and [m["user"] for m in r.json()["members"]] == ["alice"]

    harness.wait_until(lambda: seen_by_worker(0) and seen_by_worker(1), 5,
                       what="both workers of edge b to see alice")
    # And edge a sees connections on either worker of b.
    bobs = [cx(b, "bob") for _ in range(4)]  # SO_REUSEPORT spreads them
    for c in bobs:
        assert c.request({"type": "subscribe", "channel": channel})["ok"]
    harness.wait_until(lambda: members(alice, channel).get("bob") == 4, 5,
                       what="edge a to count bob's four connections")


def test_direct_messages_to_offline_users_wait_in_the_inbox(region, cx):
    a, b = region()
    bob = cx(b, "bob")
    for n in range(3):
        reply = bob.request({"type": "send", "user": "carol", "data": {"n": n}})
        assert reply["ok"] and reply["delivered"] == "queued", reply
    r = b.admin("POST", "/api/v1/send",
                body={"tenant": "demo", "user": "carol", "data": {"n": 3}})
    assert r.status == 200 and r.json()["delivered"] == "queued", r.body

    carol = cx(a, "carol")
    got = [carol.next_event("direct")["data"]["n"] for _ in range(4)]
    assert got == [0, 1, 2, 3]
    carol.close()
    harness.wait_until(lambda: a.metrics().value("wsfleet_inbox_delivered_total") == 4, 5,
                       what="inbox delivery counted")
    # Removed from the inbox once delivered (the purge follows the last delivery).
    with region.cluster.connect() as nc:
        def inbox_empty():
            got = nc.msg_get("WSF_INBOX_eu", seq=1, next_by_subj="wsf.eu.inbox.demo.carol")
            return got.get("error", {}).get("err_code") == 10037
        harness.wait_until(inbox_empty, 5, what="carol's inbox purged")

    # Delivered once: the next connect finds the inbox empty (it was purged).
    carol = cx(b, "carol")
    assert carol.request({"type": "ping"})["type"] == "pong"
    with pytest.raises(Exception):
        carol.next_event("direct", timeout=1.0)
    # Online now: straight through once carol's interest has reached the server (a send
    # in the moment before is queued and delivered by the inbox's second look).
    harness.wait_until(
        lambda: bob.request({"type": "send", "user": "carol",
                             "data": {"n": 4}})["delivered"] == "online", 5,
        what="carol online for senders")
    seen = set()
    while 4 not in seen:
        seen.add(carol.next_event("direct", timeout=5)["data"]["n"])
    assert seen == {4}, seen


def test_inbox_keeps_at_most_its_cap_and_can_be_off(region, cx):
    a, b = region(extra={"tenants": {"demo": {"inbox_max_messages": 2},
                                     "other": {"inbox_ttl_ms": 0}}})
    bob = cx(b, "bob")
    for n in range(4):
        assert bob.request({"type": "send", "user": "dora", "data": {"n": n}})["ok"]
    dora = cx(a, "dora")
    assert [dora.next_event("direct")["data"]["n"] for _ in range(2)] == [2, 3]

    # A tenant without an inbox drops direct messages to offline users, as standalone does.
    olga_sender = cx(a, "olga", tenant="other")
    reply = olga_sender.request({"type": "send", "user": "nobody", "data": {}})
    assert reply["ok"] and reply["delivered"] == "dropped", reply


def test_resume_from_offset_zero_is_not_claimed_when_history_ages(region, cx):
    """With an age limit on the region's history, a channel's first messages may have
    aged out unnoticed: a resume from offset 0 is answered recovered:false (never a silent
    gap), while a resume from a stored offset still recovers."""
    a, b = region()
    channel = harness.uniq("chat")  # history_ttl_ms = 300000 in the test conf
    p = cx(a, "p")
    epoch = p.request({"type": "subscribe", "channel": channel})["epoch"]
    offsets = [p.request({"type": "publish", "channel": channel, "data": {"i": i}})["offset"]
               for i in range(3)]
    c = cx(b, "c")
    r = c.request({"type": "subscribe", "channel": channel,
                   "since": {"epoch": epoch, "offset": 0}})
    assert r["ok"] and r["recovered"] is False, r
    c2 = cx(b, "c2")
    r = c2.request({"type": "subscribe", "channel": channel,
                    "since": {"epoch": epoch, "offset": offsets[0]}})
    assert r["ok"] and r["recovered"] is True, r
    assert [c2.next_event("message")["offset"] for _ in range(2)] == offsets[1:]


def test_subscribes_waiting_for_the_region_count_and_can_be_called_off(region, cx):
    a, b = region()
    alice = cx(a, "alice")
    channel = harness.uniq("chat")
    # Two subscribes to one channel in a row: the second is refused while the first waits
    # (or answered as already subscribed once it is done), never a second replay.
    alice.send_json({"type": "subscribe", "channel": channel, "id": 1})
    alice.send_json({"type": "subscribe", "channel": channel, "id": 2})
    replies = {}
    while len(replies) < 2:
        f = alice.recv_json(timeout=5)
        if f.get("type") == "reply":
            replies[f["id"]] = f
    assert replies[1]["ok"], replies
    assert (not replies[2]["ok"] and replies[2]["error"]["code"] == "bad_request") or \
        (replies[2]["ok"] and replies[2]["recovered"] is False), replies

    # Subscribe then unsubscribe at once: both answered, and no messages afterwards.
    other = harness.uniq("chat")
    alice.send_json({"type": "subscribe", "channel": other, "id": 3})
    alice.send_json({"type": "unsubscribe", "channel": other, "id": 4})
    replies = {}
    while len(replies) < 2:
        f = alice.recv_json(timeout=5)
        if f.get("type") == "reply":
            replies[f["id"]] = f
    assert replies[4]["ok"], replies
    bob = cx(b, "bob")
    assert bob.request({"type": "publish", "channel": other, "data": {}})["ok"]
    alice.no_event("message", within=0.5)
