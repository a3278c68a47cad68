"""Resume on a running edge: the missed messages exactly once, in order, then live
ones; a wrong epoch, a future offset or a position beyond history: recovered:false and
never garbage."""

import threading

from harness import uniq
from resume_util import messages, publish_n, resubscribe


def test_resume_replays_exactly_the_missed(edge, cx):
    ch = uniq()
    a = edge.connect("alice")
    epoch = a.ok({"type": "subscribe", "channel": ch})["epoch"]
    pub = cx(edge, "bob")
    first = publish_n(pub, ch, 5, "first")
    got = messages(a, 5, ch)
    assert [m["offset"] for m in got] == first
    last = got[-1]["offset"]
    a.close()

    missed = publish_n(pub, ch, 5, "missed")
    b = cx(edge, "alice")
    r = resubscribe(b, ch, epoch, last)
    assert r["recovered"] is True, r
    assert r["epoch"] == epoch
    replay = messages(b, 5, ch)
    assert [m["offset"] for m in replay] == missed
    assert [m["data"] for m in replay] == [{"tag": "missed", "i": i} for i in range(5)]
    assert all(m["from"] == "bob" and m["epoch"] == epoch for m in replay)

    live = publish_n(pub, ch, 1, "live")
    m = b.next_event("message")
    assert m["offset"] == live[0] and m["data"] == {"tag": "live", "i": 0}, \
        "after the replay the next message must be the live one (nothing extra replayed)"


def test_resume_from_start_of_channel(edge, cx):
    ch = uniq()
    watcher = cx(edge, "bob")
    sub = watcher.ok({"type": "subscribe", "channel": ch})
    acked = publish_n(watcher, ch, 3, "h")
    c = cx(edge, "alice")
    r = resubscribe(c, ch, sub["epoch"], sub["offset"])
    assert r["recovered"] is True, r
    assert [m["offset"] for m in messages(c, 3, ch)] == acked


def test_resume_with_nothing_missed(edge, cx):
    ch = uniq()
    c = cx(edge, "alice")
    sub = c.ok({"type": "subscribe", "channel": ch})
    acked = publish_n(c, ch, 2, "x")
    got = messages(c, 2, ch)
    c2 = cx(edge, "alice")
    r = resubscribe(c2, ch, sub["epoch"], got[-1]["offset"])
    assert r["recovered"] is True
    c2.no_event("message", within=0.5)
    assert acked == [m["offset"] for m in got]


def _assert_no_replay(edge, cx, since_epoch, since_offset_fn):
    ch = uniq()
    pub = cx(edge, "bob")
    epoch = pub.ok({"type": "subscribe", "channel": ch})["epoch"]
    acked = publish_n(pub, ch, 3, "old")
    c = cx(edge, "alice")
    r = resubscribe(c, ch, since_epoch(epoch), since_offset_fn(acked))
    assert r["recovered"] is False, r
    live = publish_n(pub, ch, 1, "new")
    m = c.next_event("message")
    assert m["offset"] == live[0], f"replayed something after recovered:false: {m!r}"
    edge.assert_serving()


def test_wrong_epoch_is_not_recovered(edge, cx):
    _assert_no_replay(edge, cx, lambda e: "definitely-not-" + e, lambda acked: acked[0])


def test_empty_epoch_is_not_recovered(edge, cx):
    _assert_no_replay(edge, cx, lambda e: "", lambda acked: acked[0])


def test_future_offset_is_not_recovered(edge, cx):
    _assert_no_replay(edge, cx, lambda e: e, lambda acked: acked[-1] + 1000)


def test_max_offset_is_not_recovered(edge, cx):
    _assert_no_replay(edge, cx, lambda e: e, lambda acked: 18446744073709551615)


def test_bad_since_shapes(edge, cx):
    c = cx(edge)
    for since in ({"epoch": "x"}, {"offset": 1}, {"epoch": 1, "offset": 1},
                  {"epoch": "x", "offset": -1}, {"epoch": "x", "offset": "1"}):
        r = c.request({"type": "subscribe", "channel": uniq(), "since": since})
        assert r["ok"] is False and r["error"]["code"] == "bad_request", (since, r)
    c.ping()


def test_resume_beyond_history_is_never_a_silent_gap(edge_factory, cx):
    e = edge_factory({"tenants": {"demo": {"namespaces": {"chat": {"history_size": 5}}}}})
    ch = uniq()
    pub = cx(e, "bob")
    sub = pub.ok({"type": "subscribe", "channel": ch})
    acked = publish_n(pub, ch, 12, "h")
    c = cx(e, "alice")
    r = resubscribe(c, ch, sub["epoch"], acked[0])
    if r["recovered"]:
        got = [m["offset"] for m in messages(c, 11, ch)]
        assert got == acked[1:], "recovered:true must mean nothing missing"
    else:
        # Whatever is replayed must at least be in order and from the channel.
        live = publish_n(pub, ch, 1, "live")
        seen = []
        while True:
            m = c.next_event("message")
            seen.append(m["offset"])
            if m["offset"] == live[0]:
                break
        assert seen == sorted(set(seen)), seen


def test_resume_while_publishing_is_gap_free(edge, cx):
    """The hand-over from replay to live delivery loses and duplicates nothing while a
    backend publisher keeps going."""
    ch = uniq()
    a = edge.connect("alice")
    epoch = a.ok({"type": "subscribe", "channel": ch})["epoch"]
    pre = publish_n(a, ch, 3, "pre")
    last = messages(a, 3, ch)[-1]["offset"]
    assert last == pre[-1]
    a.close()

    acked, errors = [], []
    ten_acked = threading.Event()

    def backend():
        try:
            for i in range(60):
                r = edge.api_publish(ch, {"bg": i})
                assert r.status == 200, r
                acked.append(r.json()["offset"])
                if len(acked) == 10:
                    ten_acked.set()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
            ten_acked.set()

    t = threading.Thread(target=backend)
    t.start()
    try:
        assert ten_acked.wait(15)
        b = cx(edge, "alice")
        r = resubscribe(b, ch, epoch, last)
        assert r["recovered"] is True
    finally:
        t.join(60)
    assert not errors, errors
    assert len(acked) == 60
    got = []
    while not got or got[-1] < acked[-1]:
        got.append(b.next_event("message", timeout=5)["offset"])
    assert got == acked, f"missing {sorted(set(acked) - set(got))}, " \
        f"extra {sorted(set(got) - set(acked))}, order ok={got == sorted(got)}"
