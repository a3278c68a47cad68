"""A multi-worker edge (node.workers = 2): a supervisor forks two workers that share the
WebSocket port (SO_REUSEPORT), serve the admin API on admin port + index, share the
host's LMDB (presence, history) and exchange deliveries over the host bus. Clients land
on either worker; what one worker's client does must reach the other worker's clients as
if there were one process, and the supervisor restarts, reloads, drains and stops the
workers as one edge."""

import os
import signal
import socket
import threading
import time

import pytest

from harness import hs256, session_pid, uniq, user, wait_until
from resume_util import messages, publish_n, resubscribe
from wsclient import ConnectionClosed, HandshakeRefused, RecvTimeout, WsError

TWO = {"node": {"workers": 2}}
NEW_SECRET = "rotated-secret-0123456789-0123456789-abcdef"


# ----------------------------------------------------------------------------- helpers
def slot_of(edge, client):
    """The worker index serving `client`."""
    by_pid = {pid: i for i, pid in edge.worker_pids().items()}
    pid = session_pid(client)
    assert pid in by_pid, f"session pid {pid} is not a worker of {by_pid}"
    return by_pid[pid]


def connect_on(edge, index, name, attempts=60, **kw):
    """A client of `name` that the kernel placed on worker `index` (placement is by
    hash of the connection's addresses: new source ports until one lands there)."""
    target = edge.worker_pids()[index]
    for _ in range(attempts):
        c = edge.connect(name, **kw)
        c.user_name = name
        if session_pid(c) == target:
            return c
        c.close(timeout=0.5)
    raise AssertionError(f"no connection landed on worker {index} in {attempts} attempts")


def spread(edge, stem, per_worker):
    """{worker index: [clients]} with `per_worker` clients (distinct users) on each."""
    pids = {pid: i for i, pid in edge.worker_pids().items()}
    placed = {i: [] for i in pids.values()}
    for _ in range(60 * per_worker):
        if all(len(v) >= per_worker for v in placed.values()):
            return placed
        name = user(stem)
        c = edge.connect(name)
        c.user_name = name
        where = pids[session_pid(c)]
        if len(placed[where]) < per_worker:
            placed[where].append(c)
        else:
            c.close(timeout=0.5)
    raise AssertionError(f"could not place {per_worker} clients on every worker: {placed}")


def everyone(placed):
    return [c for clients in placed.values() for c in clients]


def close_all(clients):
    for c in clients:
        c.close(timeout=0.5)


def worker_ready(edge, index):
    try:
        return edge.worker_admin(index, "GET", "/readyz", api_key=None).status == 200
    except OSError:
        return False  # not listening yet


def user_connections(edge, index, name):
    r = edge.worker_admin(index, "GET", f"/api/v1/presence?tenant=demo&user={name}")
    assert r.status == 200, r
    return r.json().get("connections") or []


def channel_members(edge, index, channel):
    r = edge.worker_admin(index, "GET", f"/api/v1/presence?tenant=demo&channel={channel}")
    assert r.status == 200, r
    return {m["user"]: m["connections"] for m in r.json()["members"]}


def gone(client):
    """The connection ended (any way: its worker died or stopped)."""
    try:
        client.expect_close(timeout=10)
    except (ConnectionClosed, WsError, OSError):
        pass
    client.abort()


def channel_messages(client, channel, n, timeout=10):
    return messages(client, n, channel, timeout=timeout)


# ------------------------------------------------------------------------------- tests
def test_both_workers_serve_the_shared_port(edge_factory):
    e = edge_factory(TWO)
    pids = e.worker_pids()
    assert sorted(pids) == [0, 1] and len(set(pids.values())) == 2, pids
    assert e.proc.pid not in pids.values()
    for i in (0, 1):
        r = e.worker_admin(i, "GET", "/readyz", api_key=None)
        assert r.status == 200, (i, r)

    clients = [e.connect(user("spread")) for _ in range(40)]
    try:
        by_slot = {0: 0, 1: 0}
        for c in clients:
            by_slot[slot_of(e, c)] += 1
        assert by_slot[0] > 0 and by_slot[1] > 0, f"one worker got every connection: {by_slot}"
        for i in (0, 1):
            # Each worker counts exactly the connections it serves.
            assert e.worker_metrics(i).value("wsfleet_connections_active") == by_slot[i], \
                (i, by_slot)
    finally:
        close_all(clients)
    wait_until(lambda: all(e.worker_metrics(i).value("wsfleet_connections_active") == 0
                           for i in (0, 1)), 5, what="connections closed on both workers")


def test_durable_fan_out_across_workers_is_complete_and_in_offset_order(edge_factory):
    e = edge_factory(TWO)
    ch = uniq()
    subs = spread(e, "sub", per_worker=3)
    pubs = spread(e, "pub", per_worker=2)
    try:
        for c in everyone(subs):
            c.ok({"type": "subscribe", "channel": ch})

        per_publisher = 20
        acked = {}  # offset -> (publisher, seq)
        errors = []
        lock = threading.Lock()
        start = threading.Barrier(len(everyone(pubs)))

        def publisher(client):
            try:
                start.wait(10)
                for seq in range(per_publisher):
                    offset = client.ok({"type": "publish", "channel": ch,
                                        "data": {"seq": seq}}, timeout=10)["offset"]
                    with lock:
                        assert offset not in acked, f"offset {offset} acked twice"
                        acked[offset] = (client.user_name, seq)
            except Exception as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(repr(exc))

        threads = [threading.Thread(target=publisher, args=(c,)) for c in everyone(pubs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert len(acked) == per_publisher * len(everyone(pubs))
        # The backend API of either worker publishes into the same stream.
        for i in (0, 1):
            r = e.worker_admin(i, "POST", "/api/v1/publish",
                               {"tenant": "demo", "channel": ch, "data": {"api": i}})
            assert r.status == 200, r
            acked[r.json()["offset"]] = ("api", i)

        expected = sorted(acked)
        for c in everyone(subs):
            got = channel_messages(c, ch, len(expected))
            offsets = [m["offset"] for m in got]
            assert offsets == expected, \
                f"{c.welcome['session']} (worker {slot_of(e, c)}) got {offsets}, acked {expected}"
            for m in got:
                who, seq = acked[m["offset"]]
                if who == "api":
                    assert m["data"] == {"api": seq} and m["from"] == "", m
                else:
                    assert m["from"] == who and m["data"] == {"seq": seq}, m
            assert len({m["epoch"] for m in got}) == 1, "one epoch for one stream"
            c.no_event("message", within=0.2)
        # Each publisher's messages are in the order it sent them.
        for name in {who for who, _ in acked.values() if who != "api"}:
            seqs = [seq for _, (who, seq) in sorted(acked.items()) if who == name]
            assert seqs == list(range(per_publisher)), (name, seqs)
        for i in (0, 1):
            m = e.worker_metrics(i)
            assert m.value("wsfleet_messages_dropped_total", reason="sequence_gap") == 0
            assert m.value("wsfleet_messages_dropped_total", reason="bus_peer_full") == 0
    finally:
        close_all(everyone(subs) + everyone(pubs))


def test_resume_while_another_worker_publishes_has_no_duplicate(edge_factory):
    """A client resumes (`since`) on a worker that already has subscribers of the channel
    while another worker publishes: messages committed but still crossing the bus when it
    subscribes are in its replay, and must not reach it a second time (or out of order)."""
    fast = {"commands_per_s": 100000, "commands_burst": 100000,
            "user_publishes_per_s": 100000, "user_publishes_burst": 100000,
            "channel_publishes_per_s": 100000, "channel_publishes_burst": 100000}
    e = edge_factory({**TWO, "limits": fast,
                      "tenants": {"demo": {"namespaces": {"chat": {"history_size": 100000}}}}})
    ch = uniq()
    pub = connect_on(e, 1, user("pub"))
    acked = []
    stop = threading.Event()
    errors = []

    def publisher():
        try:
            while not stop.is_set():
                acked.append(pub.ok({"type": "publish", "channel": ch, "data": 1})["offset"])
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(repr(exc))

    previous = connect_on(e, 0, user("first"))
    epoch = previous.ok({"type": "subscribe", "channel": ch})["epoch"]
    thread = threading.Thread(target=publisher)
    thread.start()
    streams = []
    try:
        wait_until(lambda: len(acked) > 50, 10, what="publishes under way")
        for _ in range(10):
            since = acked[-1] - 3
            c = connect_on(e, 0, user("resumer"))
            r = c.ok({"type": "subscribe", "channel": ch,
                      "since": {"epoch": epoch, "offset": since}}, timeout=10)
            assert r["recovered"] is True, r
            # An older subscriber of this worker leaves only now: there is always one.
            previous.close(timeout=0.5)
            previous = c
            got = []
            deadline = time.monotonic() + 0.25
            while time.monotonic() < deadline:
                got.append(c.next_event("message", timeout=5)["offset"])
            streams.append((since, got))
    finally:
        stop.set()
        thread.join(10)
        previous.close(timeout=0.5)
    assert not errors, errors
    every = sorted(acked)
    for since, got in streams:
        expected = [o for o in every if since < o <= got[-1]]
        assert got == expected, \
            f"resumed after {since}: duplicates or disorder, got {got[:40]}..., " \
            f"expected {expected[:40]}..."


def test_non_durable_messages_reach_the_other_worker(edge_factory):
    e = edge_factory(TWO)
    live = uniq("live")
    subs = spread(e, "lsub", per_worker=2)
    try:
        for c in everyone(subs):
            c.ok({"type": "subscribe", "channel": live})
        sent = []
        for i in (0, 1):
            publisher = subs[i][0]
            r = publisher.ok({"type": "publish", "channel": live, "data": {"from_worker": i}})
            assert r["offset"] == 0, r
            sent.append({"from_worker": i})
        r = e.worker_admin(1, "POST", "/api/v1/publish",
                           {"tenant": "demo", "channel": live, "data": {"api": 1}})
        assert r.status == 200, r
        sent.append({"api": 1})
        for c in everyone(subs):
            got = channel_messages(c, live, len(sent))
            assert sorted(map(repr, (m["data"] for m in got))) == sorted(map(repr, sent)), got
            assert all(m["offset"] == 0 and m["epoch"] == "" for m in got), got
            c.no_event("message", within=0.2)
    finally:
        close_all(everyone(subs))


def test_direct_send_reaches_a_user_on_the_other_worker(edge_factory):
    e = edge_factory(TWO)
    target = user("dm")
    on1 = connect_on(e, 1, target)
    sender = connect_on(e, 0, user("sender"))
    try:
        # Presence is what tells worker 0 that the user is online elsewhere.
        wait_until(lambda: len(user_connections(e, 0, target)) == 1, 5,
                   what="the target's connection in the host's presence")
        r = sender.ok({"type": "send", "user": target, "data": {"hello": 1}})
        assert r["delivered"] == "online", r
        dm = on1.next_event("direct")
        assert dm["from"] == sender.user_name and dm["data"] == {"hello": 1}, dm

        # A second connection of the same user on worker 0: both get the message once.
        on0 = connect_on(e, 0, target)
        r = sender.ok({"type": "send", "user": target, "data": {"hello": 2}})
        assert r["delivered"] == "online", r
        for c in (on0, on1):
            assert c.next_event("direct")["data"] == {"hello": 2}
            c.no_event("direct", within=0.2)
        on0.close()

        # The backend API of worker 0 reaches the connection on worker 1.
        r = e.worker_admin(0, "POST", "/api/v1/send",
                           {"tenant": "demo", "user": target, "data": {"api": 3}})
        assert r.status == 200 and r.json()["delivered"] == "online", r
        assert on1.next_event("direct")["data"] == {"api": 3}

        nobody = user("offline")
        r = sender.ok({"type": "send", "user": nobody, "data": 1})
        assert r["delivered"] == "dropped", r
        r = e.worker_admin(1, "POST", "/api/v1/send",
                           {"tenant": "demo", "user": nobody, "data": 1})
        assert r.status == 200 and r.json()["delivered"] == "dropped", r
    finally:
        close_all([on1, sender])


def test_presence_and_join_leave_are_host_wide(edge_factory):
    e = edge_factory(TWO)
    ch = uniq()
    alice_name, bob_name = user("alice"), user("bob")
    alice = connect_on(e, 0, alice_name)
    bob = connect_on(e, 1, bob_name)
    try:
        alice.ok({"type": "subscribe", "channel": ch})
        bob.ok({"type": "subscribe", "channel": ch})
        join = alice.next_event("join")
        assert join == {"type": "join", "channel": ch, "user": bob_name}, join
        # (bob may or may not get alice's join: it crosses the bus while bob subscribes.)

        def both_listed(client):
            r = client.ok({"type": "presence", "channel": ch})
            users = {m["user"] for m in r["members"]}
            return users == {alice_name, bob_name} and r

        # Either worker's clients and admin API see the members of both workers.
        wait_until(lambda: both_listed(alice), 5, what="both members from worker 0")
        wait_until(lambda: both_listed(bob), 5, what="both members from worker 1")
        for i in (0, 1):
            assert channel_members(e, i, ch) == {alice_name: 1, bob_name: 1}

        bob.ok({"type": "unsubscribe", "channel": ch})
        leave = alice.next_event("leave")
        assert leave == {"type": "leave", "channel": ch, "user": bob_name}, leave
        wait_until(lambda: channel_members(e, 0, ch) == {alice_name: 1}, 5,
                   what="bob gone from the channel's presence")
        # A closed connection leaves too (worker 1 tells worker 0's subscriber).
        bob.ok({"type": "subscribe", "channel": ch})
        assert alice.next_event("join")["user"] == bob_name
        bob.close()
        assert alice.next_event("leave")["user"] == bob_name
        wait_until(lambda: user_connections(e, 0, bob_name) == [], 5,
                   what="bob's connection gone from presence")
    finally:
        close_all([alice, bob])


def test_killed_worker_is_restarted_swept_and_its_clients_resume(edge_factory):
    e = edge_factory(TWO)
    pids = e.worker_pids()
    ch = uniq()
    live = uniq("live")
    victims = [user("victim"), user("victim")]
    doomed = [connect_on(e, 1, name) for name in victims]
    pub = connect_on(e, 0, user("pub"))
    watcher = connect_on(e, 0, user("watch"))
    epoch = None
    for c in doomed + [watcher]:
        epoch = c.ok({"type": "subscribe", "channel": ch})["epoch"]
    before = publish_n(pub, ch, 3, "before")
    last = {}
    for name, c in zip(victims, doomed):
        last[name] = [m["offset"] for m in channel_messages(c, ch, 3)][-1]
        assert last[name] == before[-1]
    for name in victims:
        wait_until(lambda name=name: len(user_connections(e, 0, name)) == 1, 5,
                   what="the victims in the host's presence")

    os.kill(pids[1], signal.SIGKILL)
    for c in doomed:
        gone(c)
    # The survivor keeps publishing (and serving) during the outage.
    missed = publish_n(pub, ch, 5, "outage")

    def restarted():
        now = e.worker_pids()
        return now.get(1) not in (None, pids[1]) and now
    now = wait_until(restarted, 10, what="worker 1 restarted")
    assert now[0] == pids[0], "the surviving worker must not be restarted"
    wait_until(lambda: worker_ready(e, 1), 10,
               what="the restarted worker's admin port ready")
    died = [d for d in e.log_events("worker_died") if d.get("worker") == 1]
    assert died and died[-1]["signal"] == "SIGKILL" and died[-1]["pid"] == pids[1], died
    assert [s["restarts"] for s in e.log_events("worker_started") if s["worker"] == 1] == [0, 1]

    # The dead worker's presence records are swept (its pid is gone), from both views.
    for name in victims:
        wait_until(lambda name=name: user_connections(e, 0, name) == [], 5,
                   what=f"{name}'s dead connection swept")
    for i in (0, 1):
        assert channel_members(e, i, ch) == {watcher.user_name: 1}
    e.check_alive()
    assert [m["offset"] for m in channel_messages(watcher, ch, 8)] == before + missed

    # The clients come back, one on each worker, and resume with nothing lost.
    back = [connect_on(e, 1, victims[0]), connect_on(e, 0, victims[1])]
    try:
        for name, c in zip(victims, back):
            r = resubscribe(c, ch, epoch, last[name])
            assert r["recovered"] is True and r["epoch"] == epoch, r
            assert [m["offset"] for m in channel_messages(c, ch, len(missed))] == missed
            c.ok({"type": "subscribe", "channel": live})
        watcher.ok({"type": "subscribe", "channel": live})
        # Live traffic from the surviving worker reaches the restarted one: the host bus
        # links to the dead process were replaced.
        after = publish_n(pub, ch, 1, "after")
        pub.ok({"type": "publish", "channel": live, "data": "live-after"})
        for c in back + [watcher]:
            assert c.next_event("message", timeout=5)["offset"] == after[0]
            m = c.next_event("message", timeout=5)
            assert m["channel"] == live and m["data"] == "live-after", m
        # And the other way round, from the restarted worker to the survivor.
        back[0].ok({"type": "publish", "channel": live, "data": "from-restarted"})
        for c in back + [watcher]:
            assert c.next_event("message", timeout=5)["data"] == "from-restarted"
    finally:
        close_all(back + [pub, watcher])


def test_subscribers_of_a_killed_worker_leave_for_the_others(edge_factory):
    e = edge_factory(TWO)
    pids = e.worker_pids()
    ch = uniq()
    watcher = connect_on(e, 0, user("watch"))
    victim = connect_on(e, 1, user("victim"))
    try:
        watcher.ok({"type": "subscribe", "channel": ch})
        victim.ok({"type": "subscribe", "channel": ch})
        assert watcher.next_event("join")["user"] == victim.user_name
        # Killed once its membership is stored: a worker that dies within its presence
        # flush interval leaves nothing behind to sweep (and so no leave to send).
        wait_until(lambda: channel_members(e, 0, ch) == {watcher.user_name: 1,
                                                         victim.user_name: 1}, 5,
                   what="the victim stored in presence")
        os.kill(pids[1], signal.SIGKILL)
        gone(victim)
        wait_until(lambda: channel_members(e, 0, ch) == {watcher.user_name: 1}, 5,
                   what="the victim swept from presence")
        leave = watcher.next_event("leave", timeout=3)
        assert leave == {"type": "leave", "channel": ch, "user": victim.user_name}, leave
    finally:
        close_all([watcher])


def test_first_message_after_a_quiet_restart_is_not_lost(edge_factory):
    """Nothing crosses the bus while worker 1 is down and restarting: the first message
    afterwards must still reach it (its old link must not swallow it)."""
    e = edge_factory(TWO)
    pids = e.worker_pids()
    live = uniq("live")
    pub = connect_on(e, 0, user("pub"))
    first = connect_on(e, 1, user("early"))
    first.ok({"type": "subscribe", "channel": live})
    pub.ok({"type": "publish", "channel": live, "data": "warm-up"})  # opens the bus link
    assert first.next_event("message")["data"] == "warm-up"

    os.kill(pids[1], signal.SIGKILL)
    gone(first)
    wait_until(lambda: e.worker_pids().get(1) not in (None, pids[1]), 10,
               what="worker 1 restarted")
    wait_until(lambda: worker_ready(e, 1), 10,
               what="the restarted worker ready")
    target = user("dm")
    sub = connect_on(e, 1, target)
    try:
        sub.ok({"type": "subscribe", "channel": live})
        pub.ok({"type": "publish", "channel": live, "data": "first-after-restart"})
        assert sub.next_event("message", timeout=3)["data"] == "first-after-restart"
        wait_until(lambda: len(user_connections(e, 0, target)) == 1, 5,
                   what="the new connection in presence")
        r = pub.ok({"type": "send", "user": target, "data": "dm"})
        assert r["delivered"] == "online", r
        assert sub.next_event("direct", timeout=3)["data"] == "dm"
    finally:
        close_all([pub, sub])


def test_sigterm_to_the_supervisor_drains_every_worker_and_exits_0(edge_factory):
    e = edge_factory({**TWO, "drain": {"window_ms": 1000, "grace_ms": 3000}})
    pids = e.worker_pids()
    clients = [connect_on(e, i, user("drainee")) for i in (0, 1)]
    e.send_signal(signal.SIGTERM)
    for i, c in enumerate(clients):
        hint = c.next_event("reconnect", timeout=5)
        assert hint["reason"] == "drain" and 0 <= hint["after_ms"] <= 1000, (i, hint)
    for i in (0, 1):
        wait_until(lambda i=i: e.worker_admin(i, "GET", "/readyz", api_key=None).status == 503,
                   3, what=f"worker {i} not ready while draining")
    # The clients follow the hint: with nobody left the workers exit before the grace.
    t0 = time.monotonic()
    close_all(clients)
    assert e.wait_exit(10) == 0
    assert time.monotonic() - t0 < 3, "the drain waited for the grace with nobody left"
    for pid in pids.values():
        assert not os.path.exists(f"/proc/{pid}"), f"worker {pid} outlived the supervisor"
    drains = [d for d in e.log_events("drain_started")]
    assert sorted(d["proc"] for d in drains) == ["worker-0", "worker-1"], drains
    stopped = e.log_events("supervisor_stopped")
    assert stopped and stopped[-1]["start_failed"] is False, stopped


def test_sighup_to_the_supervisor_reloads_every_worker(edge_factory):
    e = edge_factory(TWO)
    new_token = lambda name: hs256(name, kid="k3", secret=NEW_SECRET)  # noqa: E731
    with pytest.raises(HandshakeRefused):
        e.connect("bob", token=new_token("bob"))
    keep = [connect_on(e, i, user("keeper")) for i in (0, 1)]
    try:
        before = [e.worker_metrics(i).value("wsfleet_config_reloads_total", result="ok")
                  for i in (0, 1)]
        keys = e.conf["tenants"]["demo"]["keys"]
        e.conf["tenants"]["demo"]["keys"] = [{"kid": "k3", "alg": "HS256",
                                              "secret": NEW_SECRET}] + keys
        e.write_conf()
        e.send_signal(signal.SIGHUP)
        for i in (0, 1):
            wait_until(lambda i=i: e.worker_metrics(i).value(
                "wsfleet_config_reloads_total", result="ok") > before[i], 5,
                what=f"worker {i} reloaded")
        e.check_alive()
        # New handshakes with the new key succeed on both workers.
        fresh = [connect_on(e, i, "bob", token=new_token("bob")) for i in (0, 1)]
        close_all(fresh)
        for c in keep:
            c.ping()  # nobody was dropped by the reload
    finally:
        close_all(keep)


def test_admin_drain_on_worker_0_drains_worker_1_too(edge_factory):
    e = edge_factory({**TWO, "drain": {"window_ms": 1000, "grace_ms": 3000}})
    on1 = connect_on(e, 1, user("far"))
    on0 = connect_on(e, 0, user("near"))
    r = e.worker_admin(0, "POST", "/admin/drain", {"window_ms": 500}, api_key=None)
    assert r.status == 202 and r.json()["started"] is True, r
    for c in (on0, on1):
        hint = c.next_event("reconnect", timeout=5)
        assert hint["reason"] == "drain", hint
    wait_until(lambda: e.worker_admin(1, "GET", "/readyz", api_key=None).status == 503, 3,
               what="worker 1 draining")
    with pytest.raises(HandshakeRefused) as refused:
        e.connect("latecomer")
    assert refused.value.response.status == 503
    assert e.log_events("host_drain_requested"), "the supervisor was not asked to drain"
    close_all([on0, on1])
    assert e.wait_exit(10) == 0


def test_worker_that_cannot_start_stops_the_edge_with_exit_1(edge_factory):
    e = edge_factory(TWO, start=False)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        blocker.bind(("127.0.0.1", e.admin_port + 1))
        blocker.listen(1)
        e.start(wait=False)
        rc = e.wait_exit(15)
    finally:
        blocker.close()
    assert rc == 1, e.log_tail()
    e.problems.clear()  # the exit status was the point
    failed = e.log_events("worker_start_failed")
    assert failed and failed[0]["worker"] == 1 and failed[0]["proc"] == "supervisor", failed
    why = [x for x in e.log_events("edge_start_failed") if x.get("proc") == "worker-1"]
    assert why and f"127.0.0.1:{e.admin_port + 1}" in why[0]["error"], why
    stopped = e.log_events("supervisor_stopped")
    assert stopped and stopped[-1]["start_failed"] is True, stopped
    # Not restarted: one attempt, then the whole edge stopped.
    assert len([s for s in e.log_events("worker_started") if s["worker"] == 1]) == 1
