"""Restarts and crashes: durable acked messages survive SIGTERM and kill -9, the epoch
does not change, offsets keep increasing, and presence left behind by a crashed edge
expires within the TTL."""

import threading
import time

import pytest

from harness import uniq, wait_until
from resume_util import messages, publish_n, resubscribe
from wsclient import ConnectionClosed, WsError


def _gone(client):
    """The old connection ended (any way) once its edge stopped."""
    try:
        client.expect_close(timeout=10)
    except (ConnectionClosed, WsError, OSError):
        pass
    client.abort()


@pytest.mark.parametrize("hard", [False, True], ids=["sigterm", "kill9"])
def test_resume_across_restart(edge_factory, hard):
    e = edge_factory()
    ch = uniq()
    a = e.connect("alice")
    epoch = a.ok({"type": "subscribe", "channel": ch})["epoch"]
    pub = e.connect("bob")
    publish_n(pub, ch, 5, "before")
    last = messages(a, 5, ch)[-1]["offset"]
    missed = publish_n(pub, ch, 5, "acked-before-restart")
    api = e.api_publish(ch, {"tag": "api"})
    assert api.status == 200, api
    missed.append(api.json()["offset"])

    e.restart(hard=hard)
    _gone(a)
    _gone(pub)

    b = e.connect("alice")
    try:
        r = resubscribe(b, ch, epoch, last)
        assert r["recovered"] is True, r
        assert r["epoch"] == epoch, "the epoch changed although no history was lost"
        replay = messages(b, len(missed), ch)
        assert [m["offset"] for m in replay] == missed
        assert [m["data"] for m in replay[:5]] == [
            {"tag": "acked-before-restart", "i": i} for i in range(5)]
        assert replay[5]["data"] == {"tag": "api"} and replay[5]["from"] == ""
        newer = publish_n(b, ch, 1, "after")[0]
        assert newer > missed[-1], "offsets must keep increasing across a restart"
        assert b.next_event("message")["offset"] == newer
    finally:
        b.close()


def test_kill9_mid_stream_loses_no_acked_message(edge_factory):
    e = edge_factory()
    ch = uniq()
    watcher = e.connect("bob")
    sub = watcher.ok({"type": "subscribe", "channel": ch})
    watcher.close()

    acked = []
    stop = threading.Event()
    twenty = threading.Event()

    def backend():
        i = 0
        while not stop.is_set() and i < 90:  # stay inside history_size = 100
            try:
                r = e.api_publish(ch, {"i": i})
            except (OSError, WsError):
                return  # the edge is gone: that publish was never acked
            if r.status != 200:
                return
            acked.append(r.json()["offset"])
            if len(acked) >= 20:
                twenty.set()
            i += 1

    t = threading.Thread(target=backend)
    t.start()
    assert twenty.wait(20), "backend publishes never got going"
    e.kill()
    stop.set()
    t.join(30)
    assert not t.is_alive()
    e.start()

    c = e.connect("alice")
    try:
        r = resubscribe(c, ch, sub["epoch"], sub["offset"])
        assert r["recovered"] is True and r["epoch"] == sub["epoch"], r
        # Published-but-unacked messages may or may not be there; every acked one must.
        seen = []
        while True:
            try:
                seen.append(c.next_event("message", timeout=1.5)["offset"])
            except WsError:
                break
        assert seen == sorted(set(seen)), f"replay out of order or duplicated: {seen}"
        lost = sorted(set(acked) - set(seen))
        assert not lost, f"{len(lost)} acked messages lost after kill -9: {lost[:10]}"
    finally:
        c.close()


def test_presence_expires_after_crash(edge_factory):
    e = edge_factory({"presence": {"ttl_ms": 2000, "heartbeat_ms": 500}})
    ch = uniq()
    alice = e.connect("alice")
    alice.ok({"type": "subscribe", "channel": ch})

    def connections():
        r = e.admin("GET", "/api/v1/presence?tenant=demo&user=alice")
        assert r.status == 200, r
        body = r.json()
        assert body.get("user") == "alice", body
        return body.get("connections") or []

    wait_until(lambda: len(connections()) == 1, 5, what="alice present")
    # Heartbeats keep a live connection present well past the TTL.
    alice.pump(3.0)
    assert len(connections()) == 1, "a live connection's presence expired"

    e.kill()
    alice.abort()
    e.start()
    t0 = time.monotonic()
    wait_until(lambda: connections() == [], 10, interval=0.2,
               what="presence of the crashed edge's connection to expire")
    assert time.monotonic() - t0 < 10
    # The channel view agrees.
    r = e.admin("GET", f"/api/v1/presence?tenant=demo&channel={ch}")
    assert r.status == 200 and r.json()["members"] == [], r


def test_clean_restart_keeps_serving_and_counts_reset(edge_factory):
    e = edge_factory()
    c = e.connect("alice")
    c.ping()
    e.restart()
    _gone(c)
    m = e.metrics()
    assert m.value("wsfleet_connections_active") == 0
    e.assert_serving()


def test_repeated_kill9_restarts(edge_factory):
    """Stale LMDB reader slots and lock files from killed processes never block a start."""
    e = edge_factory()
    ch = uniq()
    offsets, epochs = [], set()
    for round_ in range(4):
        c = e.connect("alice")
        epoch = c.ok({"type": "subscribe", "channel": ch})["epoch"]
        if round_:  # from the second round on, the channel has history to keep
            epochs.add(epoch)
        offsets += publish_n(c, ch, 3, f"r{round_}")
        e.kill()
        c.abort()
        e.start()
    assert offsets == sorted(set(offsets)), offsets
    c = e.connect("alice")
    try:
        epochs.add(c.ok({"type": "subscribe", "channel": ch})["epoch"])
    finally:
        c.close()
    assert len(epochs) == 1, f"epoch changed across kill -9 restarts: {epochs}"
