"""Region mode on a healthy region: three edges on one three-server NATS cluster (region
"eu", history stream WSF_HIST_eu with three replicas). Durable and live channels, join /
leave, direct messages and the backend API across edges, idempotent retries on another
edge, resume on another edge, and subjects that client-chosen names cannot bend.

The cluster and the edges are shared by the tests of this file (nothing here breaks
them); every test uses its own channels and users. Faults are in test_region_faults.py.
"""

import re
from types import SimpleNamespace

import pytest

import harness
import nats_cluster as natsc
from harness import uniq, user, wait_until
from region_util import (STREAM, await_live_route, connected_server, directs, drop_probes,
                         epoch_of, messages_of, metric, publish_cmd, region_conf)
from wsclient import RecvTimeout

REGION = "eu"
HIST = STREAM.format(REGION)


@pytest.fixture(scope="module")
def _region(tmp_path_factory):
    if not natsc.nats_server_available():
        pytest.skip(f"{natsc.NATS_SERVER} not installed (Debian package nats-server)")
    base = tmp_path_factory.mktemp("region")
    cluster = natsc.NatsCluster(base / "nats", n=3, region=REGION)
    edges = []
    try:
        cluster.start()
        # A durable namespace without an age limit makes the region's history unlimited in
        # age (the stream takes the widest limits), so a resume from offset 0 can be
        # proven complete (test_resume_from_the_start_on_another_edge).
        forever = {"tenants": {"demo": {"namespaces": {"log": {
            "history_size": 100, "history_ttl_ms": 0, "ordering": "owner"}}}}}
        for name in ("edge-a", "edge-b", "edge-c"):
            e = harness.Edge(base, region_conf(cluster, name, **forever), name=name)
            edges.append(e)
            e.start()
        yield SimpleNamespace(cluster=cluster, a=edges[0], b=edges[1], c=edges[2],
                              edges=edges)
    finally:
        problems = []
        for e in edges:
            e.stop()
            problems += e.problems
        for s in cluster.servers:
            s.stop()
            problems += s.problems
        assert not problems, problems


@pytest.fixture
def rg(_region):
    yield _region
    for e in _region.edges:
        e.check_alive()
    for s in _region.cluster.servers:
        s.check_alive()


def sub(client, channel, **extra):
    return client.ok({"type": "subscribe", "channel": channel, **extra}, timeout=10)


def pub(client, channel, data, key=None):
    return client.ok(publish_cmd(channel, data, key), timeout=10)["offset"]


# ------------------------------------------------------------------- the history stream
def test_history_stream_is_replicated_and_its_creation_time_is_the_epoch(rg, cx):
    with rg.cluster.connect(1) as nc:
        info = nc.stream_info(HIST)
    cfg = info["config"]
    assert cfg["subjects"] == [f"wsf.{REGION}.hist.>"], cfg
    assert cfg["num_replicas"] == 3, cfg
    assert cfg["republish"]["dest"] == f"wsf.{REGION}.ch.>", cfg
    assert cfg["storage"] == "file" and cfg["discard"] == "old", cfg
    # The de-duplication window is the resume window (120 s in the test conf).
    assert cfg["duplicate_window"] == 120000 * 10**6, cfg
    assert len(info["cluster"]["replicas"]) == 2, info["cluster"]
    expected = epoch_of(HIST, info["created"])
    ch = uniq()
    epochs = {e.name: sub(cx(e, user()), ch)["epoch"] for e in rg.edges}
    assert set(epochs.values()) == {expected}, (epochs, expected)
    for e in rg.edges:
        m = e.metrics()
        assert m.value("wsfleet_nats_connected", worker="0") == 1, e.name
        assert m.has("wsfleet_nats_pending_bytes") and m.has("wsfleet_nats_reconnects_total")
        assert harness.http(e.admin_port, "GET", "/readyz").status == 200


# --------------------------------------------------------------------- durable channels
def test_durable_fan_out_across_three_edges(rg, cx):
    ch = uniq()
    subs = {e.name: cx(e, user("s")) for e in rg.edges}
    first = {name: sub(c, ch) for name, c in subs.items()}
    assert len({(r["epoch"], r["offset"]) for r in first.values()}) == 1, first
    epoch = first["edge-a"]["epoch"]
    # Publishers on two edges, interleaved; each waits for its ack.
    pa, pb = cx(rg.a, "pa"), cx(rg.b, "pb")
    acked = []
    for i in range(10):
        acked.append(("pa", i, pub(pa, ch, {"p": "pa", "i": i})))
        acked.append(("pb", i, pub(pb, ch, {"p": "pb", "i": i})))
    offsets = [o for _, _, o in acked]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets), offsets
    assert offsets[0] > first["edge-a"]["offset"]
    seen = {}
    for name, c in subs.items():
        got = messages_of(c, ch, len(acked))
        seen[name] = [(m["offset"], m["from"], m["data"]["i"], m["epoch"]) for m in got]
        c.no_event("message", within=0.3)
    want = [(o, p, i, epoch) for p, i, o in acked]
    for name, got in seen.items():
        assert got == want, f"{name} received {got}, acked {want}"


def test_new_subscriber_on_another_edge_starts_at_the_channel_position(rg, cx):
    ch = uniq()
    p = cx(rg.a, user("p"))
    offsets = [pub(p, ch, {"i": i}) for i in range(3)]
    r = sub(cx(rg.c, user("late")), ch)
    assert r["offset"] == offsets[-1] and r["recovered"] is False, r


# ------------------------------------------------------------------------ live channels
def test_live_channel_across_edges_exactly_once(rg, cx):
    ch = uniq("live")
    on_a, on_b, also_b = cx(rg.a, user("la")), cx(rg.b, user("lb")), cx(rg.b, user("lb2"))
    for c in (on_a, on_b, also_b):
        sub(c, ch)
    p = cx(rg.b, user("lp"))
    await_live_route(lambda d: pub(p, ch, d), on_a, ch)
    sent = []
    for i in range(10):
        r = p.ok(publish_cmd(ch, {"i": i}))
        assert r["offset"] == 0, r  # not sequenced
        sent.append(i)
    # Backend API on a third edge, into the same live channel.
    await_live_route(lambda d: rg.c.api_publish(ch, d), on_a, ch)
    r = rg.c.api_publish(ch, {"i": 10})
    assert r.status == 200 and r.json()["offset"] == 0, r
    sent.append(10)
    for c in (on_a, on_b, also_b):
        got = messages_of(c, ch, len(sent))
        # Each publisher's messages in its order, each once; nothing orders two publishers
        # of a live channel (the client's publishes may still be on their way to the
        # servers when the backend's arrive elsewhere).
        seen = [m["data"]["i"] for m in got]
        assert [i for i in seen if i < 10] == sent[:10] and sorted(seen) == sent, seen
        assert all(m["epoch"] == "" and m["offset"] == 0 for m in got), got
        drop_probes(c)
        c.no_event("message", within=0.3)


# ------------------------------------------------------------------------- join / leave
def test_join_and_leave_cross_edges(rg, cx):
    ch = uniq()
    alice = cx(rg.a, user("alice"))
    sub(alice, ch)
    bob_name, carol_name = user("bob"), user("carol")
    bob, carol = cx(rg.b, bob_name), cx(rg.c, carol_name)
    sub(bob, ch)
    assert alice.next_event("join", timeout=5) == {"type": "join", "channel": ch,
                                                    "user": bob_name}
    sub(carol, ch)
    assert alice.next_event("join", timeout=5) == {"type": "join", "channel": ch,
                                                    "user": carol_name}
    # bob may also see alice's join late (it crossed the region while he subscribed).
    j = bob.recv_until(lambda f: f.get("type") == "join" and f.get("user") == carol_name, 5,
                       what="carol's join")
    assert j["channel"] == ch, j
    bob.ok({"type": "unsubscribe", "channel": ch})
    carol.close()
    got = [alice.next_event("leave", timeout=5) for _ in range(2)]
    assert sorted(g["user"] for g in got) == sorted([bob_name, carol_name]), got
    assert all(g["channel"] == ch for g in got)
    alice.no_event(pred=_membership, within=1.0)


def _membership(frame):
    return frame.get("type") in ("join", "leave")


def test_second_connection_on_another_edge_is_not_a_second_join(rg, cx):
    ch = uniq()
    alice = cx(rg.a, user("alice"))
    sub(alice, ch)
    bob_name = user("bob")
    bob = cx(rg.b, bob_name)
    sub(bob, ch)
    assert alice.next_event("join", timeout=5)["user"] == bob_name
    # join/leave follow the region's presence view, which is eventually consistent: wait
    # until the edges know of bob's other connection before each step.
    def bobs_connections(edge):
        r = edge.admin("GET", f"/api/v1/presence?tenant=demo&channel={ch}")
        return {m["user"]: m["connections"] for m in r.json()["members"]}.get(bob_name, 0)

    harness.wait_until(lambda: bobs_connections(rg.c) == 1, 5, what="edge c to see bob")
    bob2 = cx(rg.c, bob_name)
    sub(bob2, ch)
    harness.wait_until(lambda: bobs_connections(rg.b) == 2, 5, what="edge b to see bob twice")
    bob.ok({"type": "unsubscribe", "channel": ch})
    # bob is still in the channel (on edge c): nothing to tell alice.
    alice.no_event(pred=_membership, within=1.0)
    bob2.close()
    assert alice.next_event("leave", timeout=5)["user"] == bob_name


# ------------------------------------------------------------------------------ direct
def _send(client, to, data):
    return client.ok({"type": "send", "user": to, "data": data})["delivered"]


def _send_until_online(client, to, tag, timeout=10):
    """A user's interest takes a moment to cross the cluster: sends (each with its own
    data) until one is online; returns the data of the online one."""
    n = [0]

    def attempt():
        n[0] += 1
        d = {"probe": n[0], "tag": tag}
        return d if _send(client, to, d) == "online" else None
    return wait_until(attempt, timeout, interval=0.05, what=f"{to} online")


def test_direct_send_to_another_edge_and_to_nobody(rg, cx):
    bob_name = user("bob")
    bob = cx(rg.b, bob_name)
    alice_name = user("alice")
    alice = cx(rg.a, alice_name)
    first = _send_until_online(alice, bob_name, "probe")
    assert _send(alice, bob_name, {"hello": 1}) == "online"
    got = [bob.next_event("direct", timeout=5) for _ in range(2)]
    assert [g["data"] for g in got] == [first, {"hello": 1}], got
    assert all(g["from"] == alice_name for g in got), got
    bob.no_event("direct", within=0.3)

    # Nobody holds the user anywhere: the demo tenant keeps an inbox (test_region_presence.py
    # covers delivery from it and tenants without one, which answer "dropped").
    before = metric(rg.a, "wsfleet_inbox_queued_total")
    assert _send(alice, user("nobody"), {"x": 1}) == "queued"
    assert metric(rg.a, "wsfleet_inbox_queued_total") == before + 1

    # Backend API send on edge c to bob on edge b.
    r = rg.c.admin("POST", "/api/v1/send", {"tenant": "demo", "user": bob_name,
                                           "data": {"api": 1}})
    assert r.status == 200 and r.json() == {"delivered": "online"}, r
    d = bob.next_event("direct", timeout=5)
    assert d["data"] == {"api": 1} and d["from"] == "", d
    r = rg.c.admin("POST", "/api/v1/send", {"tenant": "demo", "user": user("nobody"),
                                           "data": {}})
    assert r.status == 200 and r.json() == {"delivered": "queued"}, r


def test_direct_send_reaches_every_connection_of_the_user_once(rg, cx):
    name = user("multi")
    on_b, on_c, on_a = cx(rg.b, name), cx(rg.c, name), cx(rg.a, name)
    sender = cx(rg.a, user("sender"))
    # Delivered on a locally; wait until b and c both listen.
    wait_until(lambda: _probe_both(sender, name, on_b, on_c), 10, what="both edges listen")
    assert _send(sender, name, {"once": True}) == "online"
    for c in (on_a, on_b, on_c):
        assert directs(c) == [{"once": True}]


def _probe_both(sender, name, *clients):
    _send(sender, name, {"probe": True})
    got = 0
    for c in clients:
        try:
            c.next_event("direct", timeout=0.3)
            got += 1
        except RecvTimeout:
            pass
    return got == len(clients)


# ------------------------------------------------------------------------ backend API
def test_backend_publish_on_one_edge_reaches_another_with_its_offset(rg, cx):
    ch = uniq()
    watcher = cx(rg.b, user("w"))
    epoch = sub(watcher, ch)["epoch"]
    r = rg.a.api_publish(ch, {"api": 1})
    assert r.status == 200, r
    body = r.json()
    assert body["epoch"] == epoch and body["offset"] > 0, body
    m = watcher.next_event("message", timeout=5)
    assert (m["offset"], m["epoch"], m["from"], m["data"]) == \
        (body["offset"], epoch, "", {"api": 1}), m


# ---------------------------------------------------------------------- idempotency
def test_idempotency_key_retried_on_another_edge_is_stored_once(rg, cx):
    ch = uniq()
    watchers = [cx(e, user("w")) for e in rg.edges]
    for w in watchers:
        sub(w, ch)
    name = user("idem")
    on_a, on_b = cx(rg.a, name), cx(rg.b, name)
    first = pub(on_a, ch, {"v": 1}, key="k-1")
    assert pub(on_b, ch, {"v": 1}, key="k-1") == first  # the retry after a lost reply
    assert pub(on_a, ch, {"v": 1}, key="k-1") == first
    # Keys are per publisher: another user's k-1 is another message.
    other = pub(cx(rg.c, user("other")), ch, {"v": 1}, key="k-1")
    assert other > first
    # The backend API's keys, retried on another edge.
    r1 = rg.b.api_publish(ch, {"v": "api"}, idempotency_key="api-k")
    r2 = rg.c.api_publish(ch, {"v": "api"}, idempotency_key="api-k")
    assert r1.status == r2.status == 200, (r1, r2)
    assert r1.json()["offset"] == r2.json()["offset"] > other, (r1.json(), r2.json())
    last = pub(on_b, ch, {"v": "last"})
    want = [first, other, r1.json()["offset"], last]
    for w in watchers:
        assert [m["offset"] for m in messages_of(w, ch, 4)] == want
        w.no_event("message", within=0.3)
    with rg.cluster.connect(0) as nc:
        subject = f"wsf.{REGION}.hist.demo.{ch}"
        stored = []
        seq = 1
        while True:
            got = nc.msg_get(HIST, seq=seq, next_by_subj=subject)
            if "error" in got:
                break
            stored.append(got["message"]["seq"])
            seq = got["message"]["seq"] + 1
        assert stored == want, f"stored in the stream: {stored}"


# ---------------------------------------------------------------------------- resume
def test_resume_on_another_edge_replays_exactly_the_missed(rg, cx):
    ch = uniq()
    name = user("roam")
    a = rg.a.connect(name)
    epoch = sub(a, ch)["epoch"]
    p = cx(rg.c, user("p"))
    early = [pub(p, ch, {"phase": "early", "i": i}) for i in range(3)]
    got = messages_of(a, ch, 3)
    assert [m["offset"] for m in got] == early
    a.close()
    missed = [pub(p, ch, {"phase": "missed", "i": i}) for i in range(4)]
    r = rg.c.api_publish(ch, {"phase": "missed", "i": 4})
    assert r.status == 200
    missed.append(r.json()["offset"])
    b = cx(rg.b, name)
    r = sub(b, ch, since={"epoch": epoch, "offset": early[-1]})
    assert r["recovered"] is True and r["epoch"] == epoch and r["offset"] == missed[-1], r
    replay = messages_of(b, ch, 5)
    assert [m["offset"] for m in replay] == missed
    assert [m["data"]["i"] for m in replay] == list(range(5))
    live = pub(p, ch, {"phase": "live"})
    m = b.next_event("message", timeout=5)
    assert m["offset"] == live, f"after the replay the live message must come next: {m}"
    b.no_event("message", within=0.3)


def test_resume_from_the_start_on_another_edge(rg, cx):
    ch = uniq()
    p = cx(rg.a, user("p"))
    epoch = sub(p, ch)["epoch"]
    acked = [pub(p, ch, {"i": i}) for i in range(3)]
    c = cx(rg.b, user("new"))
    r = sub(c, ch, since={"epoch": epoch, "offset": 0})
    assert r["recovered"] is True, r
    assert [m["offset"] for m in messages_of(c, ch, 3)] == acked


@pytest.mark.parametrize("case", ["wrong_epoch", "future_offset", "later_offset_of_the_stream"])
def test_resume_that_cannot_be_recovered(rg, cx, case):
    ch = uniq()
    p = cx(rg.a, user("p"))
    epoch = sub(p, ch)["epoch"]
    acked = [pub(p, ch, {"i": i}) for i in range(3)]
    since = {"epoch": epoch, "offset": acked[0]}
    if case == "wrong_epoch":
        since["epoch"] = "0000000000000000" if epoch != "0000000000000000" else "1"
    elif case == "future_offset":
        since["offset"] = acked[-1] + 1000000
    else:
        # Beyond this channel's position but an offset the stream has (another channel's).
        other = uniq()
        since["offset"] = pub(p, other, {"x": 1})
        assert since["offset"] > acked[-1]
    c = cx(rg.b, user("r"))
    r = sub(c, ch, since=since)
    assert r["recovered"] is False and r["offset"] == acked[-1] and r["epoch"] == epoch, r
    live = pub(p, ch, {"live": 1})
    m = c.next_event("message", timeout=5)
    assert m["offset"] == live, f"replayed after recovered:false: {m}"


# ------------------------------------------------------------- names and NATS subjects
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-@=+,:%]+$")

BAD_CHANNELS = ("chat:a.b", "chat:a*", "chat:>", "live:a.>", "chat:a b", "chat:a%2Eb",
                "chat:a\r\nPUB x 1", "chat:a\u0000b")
TRICKY_USERS = ["x", "x.y", "x.*", "x.>", "*", ">", "x%2Ey", "x\u00e9y",
                "a.b.c.d.e"]


def _escaped(name):
    out = []
    for b in name.encode("utf-8"):
        c = chr(b)
        out.append(c if re.match(r"[A-Za-z0-9_\-@=+,:]", c) else f"%{b:02X}")
    return "".join(out)


def test_names_cannot_inject_subject_syntax(rg, cx):
    tag = user("t")
    targets = {u: cx(rg.b, f"{tag}{u}") for u in TRICKY_USERS}
    for u, c in targets.items():
        assert c.welcome["type"] == "welcome", (u, c.welcome)
    sender = cx(rg.a, user("sender"))
    # The last user to connect listens once a send to it is online (interest of the
    # earlier ones travelled the same routes first).
    last = TRICKY_USERS[-1]
    _send_until_online(sender, f"{tag}{last}", "probe")
    # The spy listens only now: a listener on a user's subject is a responder, so with it
    # a send to a user not yet listening would wait for its timeout, not be "dropped".
    # On edge a's server, where the sends start, its interest is there after the flush.
    with rg.cluster.connect(connected_server(rg.cluster, rg.a)) as spy:
        sid = spy.subscribe(f"wsf.{REGION}.>")
        spy.flush()
        for u in TRICKY_USERS:
            assert _send(sender, f"{tag}{u}", {"to": u}) == "online", u
        for u, c in targets.items():
            frames = directs(c)
            assert frames == [{"to": u}], f"{u!r} received {frames}"

        # Channel names with subject syntax never get that far.
        for bad in BAD_CHANNELS:
            r = sender.request({"type": "subscribe", "channel": bad})
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
            r = sender.request(publish_cmd(bad, {"x": 1}))
            assert r["ok"] is False and r["error"]["code"] == "bad_request", (bad, r)
            r = rg.a.api_publish(bad, {"x": 1})
            assert r.status == 400, (bad, r)
        # A valid channel with every allowed odd character passes through readably.
        odd = "chat:A-z_0@=+,x"
        sub(sender, odd)
        pub(sender, odd, {"odd": 1})
        sender.next_event("message", timeout=5)

        subjects = []
        while True:
            try:
                subjects.append(spy.next_msg(0.5, sid=sid).subject)
            except natsc.NatsTimeout:
                break
    assert subjects
    # Every kind of subject edges use (presence and psync name the node and the worker).
    KINDS = ("ch", "user", "hist", "inbox", "presence", "psync")
    for s in subjects:
        tokens = s.split(".")
        assert len(tokens) == 5, f"{s!r} has {len(tokens)} tokens"
        assert tokens[:2] == ["wsf", REGION] and tokens[2] in KINDS, s
        assert all(TOKEN_RE.match(t) for t in tokens), s
    seen = set(subjects)
    for u in TRICKY_USERS:
        assert f"wsf.{REGION}.user.demo.{_escaped(tag + u)}" in seen, (u, sorted(seen))
    assert f"wsf.{REGION}.hist.demo.{odd}" in seen and f"wsf.{REGION}.ch.demo.{odd}" in seen
    for bad in BAD_CHANNELS:
        assert not any(s.split(".", 4)[-1] in (bad, _escaped(bad)) for s in seen), bad


def test_tenants_do_not_share_channels_across_edges(rg, cx):
    """Tenants do not share channels across edges either: the same channel name in another
    tenant is another subject and another history."""
    ch = uniq()
    demo, other = cx(rg.a, user("d")), cx(rg.b, user("o"), tenant="other")
    sub(demo, ch)
    sub(other, ch)
    off_other = pub(cx(rg.c, user("po"), tenant="other"), ch, {"t": "other"})
    m = other.next_event("message", timeout=5)
    assert m["offset"] == off_other and m["data"] == {"t": "other"}
    demo.no_event("message", within=0.5)
    with rg.cluster.connect(0) as nc:
        got = nc.msg_get(HIST, last_by_subj=f"wsf.{REGION}.hist.other.{ch}")["message"]
        assert got["seq"] == off_other
        assert "error" in nc.msg_get(HIST, last_by_subj=f"wsf.{REGION}.hist.demo.{ch}")
