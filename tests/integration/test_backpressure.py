"""Outbound backpressure: the high-water mark, the slow-consumer grace period and
low-priority coalescing. A client made to lag by a tiny receive window that it stops
reading: once the kernel buffers between it and the edge are full, every further frame
waits in the edge's queue for it, which is what the edge's limits are about."""

import socket
import time

from harness import uniq, wait_until

# The lagging reader is first made to stall for good: large frames are published until
# more than the kernel can buffer on loopback (the edge's send buffer grows to
# net.ipv4.tcp_wmem's maximum, 4 MiB by default; the reader's socket holds a few MiB more)
# has gone its way, while its queue stays under the marks. Only then is it pushed over
# the high-water mark, so that it stays there: nothing drains it any more.
BIG = 60000
SATURATE_BYTES = 12 << 20
HIGH_WATER_MESSAGES = 400  # above the frames saturation leaves queued (< 220)
CROSS_LIMIT = 1000


def conf(grace_ms):
    return {"websocket": {"outbound_max_bytes": 64 << 20, "outbound_max_messages": 100000,
                          "outbound_high_water_bytes": 32 << 20,
                          "outbound_high_water_messages": HIGH_WATER_MESSAGES,
                          "slow_consumer_grace_ms": grace_ms}}


def crossings(e):
    return e.metrics().value("wsfleet_outbound_high_water_crossings_total")


def slow_disconnects(e, trigger=None):
    labels = {} if trigger is None else {"trigger": trigger}
    return e.metrics().value("wsfleet_slow_consumer_disconnects_total", **labels)


def dropped(e, reason):
    return e.metrics().value("wsfleet_messages_dropped_total", reason=reason)


def publish_seen(e, channel, data, healthy):
    """Publishes; `healthy` (subscribed) reads it at once, so it never lags."""
    r = e.api_publish(channel, data)
    assert r.status == 200, r
    m = healthy.next_event("message", timeout=10)
    assert m["channel"] == channel and m["data"] == data, m


def saturate(e, channel, healthy):
    """Stalls the non-reading subscribers of `channel` below the high-water mark. Returns
    the number of messages published ({"i": 0..n-1})."""
    n = SATURATE_BYTES // BIG
    for i in range(n):
        publish_seen(e, channel, {"i": i, "p": "s" * BIG}, healthy)
    assert crossings(e) == 0, "behind before saturation ended: raise HIGH_WATER_MESSAGES"
    return n


def push_over(e, channel, healthy, start):
    """Publishes small messages {"i": start..} until a queue crosses the high-water mark;
    returns the next index."""
    before = crossings(e)
    i = start
    while crossings(e) == before:
        assert i - start < CROSS_LIMIT, "the stalled reader never crossed the mark"
        publish_seen(e, channel, {"i": i}, healthy)
        i += 1
    return i


def open_window(client):
    """Lets a reader that stopped reading read again at full speed."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)


def messages(client, channel, count, timeout=20):
    """The data of the next `count` messages of `channel` (other frames are kept)."""
    out = []
    while len(out) < count:
        f = client.recv_until(lambda f: f.get("type") == "message" and f["channel"] == channel,
                              timeout, what=f"message {len(out)} of {channel}")
        out.append(f["data"])
    return out


def test_reader_that_never_reads_is_closed_after_the_grace_period(edge_factory):
    grace_s = 1.5
    e = edge_factory(conf(int(grace_s * 1000)))
    ch = uniq()
    lazy = e.connect("lazy", rcvbuf=4096)
    lazy.ok({"type": "subscribe", "channel": ch})
    healthy = e.connect("healthy")
    healthy.ok({"type": "subscribe", "channel": ch})

    n = saturate(e, ch, healthy)
    n = push_over(e, ch, healthy, n)
    behind_at = time.monotonic()
    # Behind, but far under the hard cap: only the grace period can close it.
    assert slow_disconnects(e) == 0
    # Others keep being served while it waits.
    for i in range(n, n + 5):
        publish_seen(e, ch, {"i": i}, healthy)
    wait_until(lambda: slow_disconnects(e, "grace_expired") >= 1, grace_s + 10,
               what="the lagging reader closed as a slow consumer")
    elapsed = time.monotonic() - behind_at
    assert elapsed >= grace_s * 0.8, f"closed {elapsed:.2f}s after falling behind"
    assert slow_disconnects(e, "hard_cap") == 0
    assert dropped(e, "slow_consumer") >= 1  # its queue was released
    # It reads nothing within the close grace either, so the edge resets the connection
    # (freeing the megabytes the kernel holds for it) instead of waiting for it to crawl
    # through them to the 4009 close frame.
    code = lazy.expect_close(timeout=20)
    assert code is None, f"expected a reset, got close code {code}"
    wait_until(lambda: e.metrics().value("wsfleet_disconnects_total", code="4009") == 1, 10,
               what="the 4009 disconnect counted")
    publish_seen(e, ch, {"i": n + 5}, healthy)
    e.assert_serving()


def test_reader_that_catches_up_within_the_grace_period_stays(edge_factory):
    grace_s = 4.0
    e = edge_factory(conf(int(grace_s * 1000)))
    ch = uniq("live", "feed")  # no join/leave events in the way
    # A normal receive buffer: one shrunk before connecting keeps the TCP window at a few
    # KiB for good (the window clamp is fixed at the handshake), and the peer then crawls
    # through what the kernel holds at one window per persist-timer tick.
    lagging = e.connect("lagging")
    lagging.ok({"type": "subscribe", "channel": ch})
    healthy = e.connect("healthy")
    healthy.ok({"type": "subscribe", "channel": ch})

    n = saturate(e, ch, healthy)
    n = push_over(e, ch, healthy, n)
    behind_at = time.monotonic()
    open_window(lagging)
    got = [d["i"] for d in messages(lagging, ch, n)]
    assert got == list(range(n)), "messages lost or reordered while catching up"
    caught_up = time.monotonic() - behind_at
    assert caught_up < grace_s, f"catching up took {caught_up:.2f}s, the test needs less"
    # Past the deadline set when it fell behind: still open, still served.
    lagging.pump(grace_s - caught_up + 1.0)
    assert not lagging.backlog, list(lagging.backlog)[:3]
    lagging.ping()
    publish_seen(e, ch, {"i": n}, healthy)
    assert messages(lagging, ch, 1, timeout=5) == [{"i": n}]
    m = e.metrics()
    assert m.value("wsfleet_slow_consumer_disconnects_total") == 0
    assert m.value("wsfleet_disconnects_total", code="4009") == 0


def test_lagging_reader_gets_low_priority_coalesced_and_every_normal_message(edge_factory):
    e = edge_factory(conf(30000))  # the grace is not what this test is about
    live = uniq("live", "cursor")  # priority = "low", no history
    quiet = uniq("live", "quiet")  # low too, with nothing queued when the lag starts
    chat = uniq("chat")            # normal priority
    lagging = e.connect("lagging")  # a normal buffer, so that it can catch up (see above)
    healthy = e.connect("healthy")
    for c in (lagging, healthy):
        for ch in (live, quiet, chat):
            c.ok({"type": "subscribe", "channel": ch})

    n = saturate(e, chat, healthy)
    # Stalled but not behind: a low frame is queued like any other, and stays queued.
    publish_seen(e, live, {"i": 0}, healthy)
    n = push_over(e, chat, healthy, n)
    coalesced0 = dropped(e, "low_priority_coalesced")
    dropped0 = dropped(e, "low_priority_dropped")

    rounds = 30
    for k in range(1, rounds + 1):
        # The healthy reader is never behind: it gets every frame, low or not, in order.
        publish_seen(e, live, {"i": k}, healthy)
        publish_seen(e, quiet, {"k": k}, healthy)
        publish_seen(e, chat, {"k": k}, healthy)
    assert dropped(e, "low_priority_coalesced") - coalesced0 == rounds
    assert dropped(e, "low_priority_dropped") - dropped0 == rounds
    assert slow_disconnects(e) == 0

    open_window(lagging)
    got_chat = messages(lagging, chat, n + rounds)
    assert [d["i"] for d in got_chat[:n]] == list(range(n))
    assert got_chat[n:] == [{"k": k} for k in range(1, rounds + 1)]
    lagging.pump(0.5)
    low = [(f["channel"], f["data"]) for f in lagging.backlog if f.get("type") == "message"]
    # The cursor's queued frame carries its latest state; the channel that had nothing
    # queued got nothing.
    assert low == [(live, {"i": rounds})], low
    lagging.ping()


def test_join_leave_events_are_low_priority(edge_factory):
    e = edge_factory(conf(30000))
    room = uniq()  # chat: join/leave events, normal-priority messages
    lagging = e.connect("watcher")  # a normal buffer, so that it can catch up (see above)
    lagging.ok({"type": "subscribe", "channel": room})
    healthy = e.connect("healthy")
    healthy.ok({"type": "subscribe", "channel": room})
    assert lagging.next_event("join", timeout=5)["user"] == "healthy"

    def visit(name, leave=True):
        v = e.connect(name)
        v.ok({"type": "subscribe", "channel": room})
        assert healthy.next_event("join", timeout=5)["user"] == name
        if leave:
            v.close()
            assert healthy.next_event("leave", timeout=5)["user"] == name
        return v

    n = saturate(e, room, healthy)
    early = visit("early", leave=False)  # its join is queued for the watcher, stalled
    push_over(e, room, healthy, n)
    coalesced0 = dropped(e, "low_priority_coalesced")
    dropped0 = dropped(e, "low_priority_dropped")
    early.close()  # the leave replaces the queued join
    assert healthy.next_event("leave", timeout=5)["user"] == "early"
    visit("late")  # nothing queued for this user: both events dropped
    assert dropped(e, "low_priority_coalesced") - coalesced0 == 1
    assert dropped(e, "low_priority_dropped") - dropped0 == 2

    open_window(lagging)
    messages(lagging, room, n)
    lagging.pump(1.0)
    events = [(f["type"], f["user"]) for f in lagging.backlog if f.get("type") in ("join", "leave")]
    assert events == [("leave", "early")], events
    lagging.ping()
