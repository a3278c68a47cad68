"""Drain: SIGTERM or POST /admin/drain turns readiness and new upgrades to 503, gives
every client one reconnect hint spread over the window, closes the clients that stay
with 1001, and exits 0 as soon as nobody is left. Clients that follow the hint to
another edge on the same host resume their durable channels with nothing lost."""

import signal
import threading
import time

import pytest

from harness import DEMO_API_KEY, uniq, wait_until
from resume_util import resubscribe
from wsclient import ConnectionClosed, HandshakeRefused, RecvTimeout

OPERATOR_TOKEN = "operator-token-0123456789abcdef"


def drain_conf(window_ms, grace_ms, **extra):
    conf = {"drain": {"window_ms": window_ms, "grace_ms": grace_ms}}
    conf["drain"].update(extra)
    return conf


class Watcher:
    """Reads one client until its connection ends, in a thread: when each reconnect hint
    arrived (seconds after t0), the hints themselves, and the close code and time."""

    def __init__(self, client, t0, timeout):
        self.client = client
        self.t0 = t0
        self.hints = []       # (seconds after t0, frame)
        self.close_code = "not closed"
        self.closed_at = None
        self.thread = threading.Thread(target=self._run, args=(timeout,), daemon=True)
        self.thread.start()

    def _run(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                frame = self.client.recv_json(timeout=max(deadline - time.monotonic(), 0.01))
            except ConnectionClosed as e:
                self.close_code = e.code
                self.closed_at = time.monotonic() - self.t0
                return
            except RecvTimeout:
                return
            if frame.get("type") == "reconnect":
                self.hints.append((time.monotonic() - self.t0, frame))

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "watcher still reading"


def assert_refuses_upgrades(edge):
    r = edge.admin("GET", "/readyz", api_key=None)
    assert r.status == 503 and r.body == b"draining\n", r
    with pytest.raises(HandshakeRefused) as refused:
        edge.connect("latecomer")
    resp = refused.value.response
    assert resp.status == 503, resp
    assert resp.json()["error"]["reason"] == "draining", resp
    assert int(resp.header("retry-after")) > 0, resp.headers


def test_sigterm_spreads_one_hint_per_client_then_closes_1001_and_exits_0(edge_factory):
    window_ms, grace_ms = 3000, 2000
    e = edge_factory(drain_conf(window_ms, grace_ms, reconnect_url="wss://failover.example:443/ws"))
    clients = [e.connect(f"stay{i}") for i in range(8)]
    assert e.metrics().value("wsfleet_draining") == 0

    t0 = time.monotonic()
    e.send_signal(signal.SIGTERM)
    watchers = [Watcher(c, t0, timeout=(window_ms + grace_ms) / 1000 + 8) for c in clients]
    wait_until(lambda: e.admin("GET", "/readyz", api_key=None).status == 503, 2,
               what="readiness 503")
    assert_refuses_upgrades(e)
    assert e.metrics().value("wsfleet_draining") == 1

    # Every hint is out by the end of the window; the edge still serves during the grace.
    wait_until(lambda: all(w.hints for w in watchers), window_ms / 1000 + 1.5,
               what="a hint for every client")
    m = e.metrics()
    assert m.value("wsfleet_drain_hints_sent_total") == len(clients)
    assert m.value("wsfleet_handshake_rejected_total", reason="draining") >= 1

    for w in watchers:
        w.join((window_ms + grace_ms) / 1000 + 10)
    for w in watchers:
        assert len(w.hints) == 1, f"expected exactly one reconnect hint, got {w.hints!r}"
        at, hint = w.hints[0]
        assert hint == {"type": "reconnect", "after_ms": hint["after_ms"],
                        "url": "wss://failover.example:443/ws", "reason": "drain"}, hint
        assert 0 <= hint["after_ms"] <= window_ms, hint
        assert at <= window_ms / 1000 + 0.5, f"hint {at:.2f}s after SIGTERM, past the window"
        # The clients ignored the hint: closed with 1001 once window and grace are over.
        assert w.close_code == 1001, w.close_code
        assert w.closed_at >= (window_ms + grace_ms) / 1000 - 0.3, w.closed_at
    times = sorted(w.hints[0][0] for w in watchers)
    # Stratified over the window: 8 slots of 375 ms, so first and last are >= 2.25 s apart.
    assert times[-1] - times[0] >= 0.6 * window_ms / 1000, f"hints not spread: {times}"
    assert len({w.hints[0][1]["after_ms"] for w in watchers}) > 1, "after_ms all equal"

    assert e.wait_exit(10) == 0
    assert "drain_started" in e.log_text()


def test_second_sigterm_stops_at_once(edge_factory):
    e = edge_factory(drain_conf(30000, 5000))
    c = e.connect("alice")
    e.send_signal(signal.SIGTERM)
    wait_until(lambda: e.admin("GET", "/readyz", api_key=None).status == 503, 2,
               what="readiness 503")
    t0 = time.monotonic()
    e.send_signal(signal.SIGTERM)
    assert c.expect_close(timeout=5) == 1001
    assert e.wait_exit(5) == 0
    assert time.monotonic() - t0 < 5, "the second SIGTERM must not wait for the window"


def test_sigint_stops_at_once(edge_factory):
    e = edge_factory(drain_conf(30000, 5000))
    c = e.connect("alice")
    e.send_signal(signal.SIGINT)
    assert c.expect_close(timeout=5) == 1001
    assert e.wait_exit(5) == 0


def test_admin_drain_needs_the_operator_token(edge_factory):
    e = edge_factory({"admin": {"operator_token": OPERATOR_TOKEN},
                      **drain_conf(2000, 5000)})
    bearer = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    for key, status, reason in [(None, 401, "operator_token_missing"),
                                (DEMO_API_KEY, 401, "operator_token_invalid"),
                                ("operator-token-0123456789abcdeX", 401, "operator_token_invalid")]:
        r = e.admin("POST", "/admin/drain", {}, api_key=key)
        assert r.status == status and r.json()["error"]["reason"] == reason, (key, r)
    assert e.admin("GET", "/readyz", api_key=None).status == 200, "refused calls must not drain"
    r = e.admin("POST", "/admin/drain?window_ms=abc", {}, api_key=None, headers=bearer)
    assert r.status == 400, r
    r = e.admin("POST", "/admin/drain", {"window_ms": -5}, api_key=None, headers=bearer)
    assert r.status == 400, r
    assert e.admin("GET", "/readyz", api_key=None).status == 200

    c = e.connect("alice")
    t0 = time.monotonic()
    r = e.admin("POST", "/admin/drain", {"window_ms": 1500}, api_key=None, headers=bearer)
    assert r.status == 202, r
    body = r.json()
    assert body["draining"] is True and body["started"] is True, body
    assert body["window_ms"] == 1500 and body["connections"] == 1, body
    assert body["url"] == e.url(), body  # no reconnect_url: the public URL
    again = e.admin("POST", "/admin/drain", {"window_ms": 60000}, api_key=None, headers=bearer)
    assert again.status == 200 and again.json()["started"] is False, again
    assert again.json()["window_ms"] == 1500, "a running drain keeps its window"
    assert_refuses_upgrades(e)

    hint = c.next_event("reconnect", timeout=3)
    assert hint["url"] == e.url() and 0 <= hint["after_ms"] <= 1500, hint
    c.close()
    # Empty: the edge exits now, not after window + grace (6.5 s).
    assert e.wait_exit(5) == 0
    assert time.monotonic() - t0 < 4.5


def test_admin_drain_without_token_is_loopback_only(edge_factory):
    # The tests reach the admin listener over loopback, which is what is allowed here.
    e = edge_factory(drain_conf(1000, 500))
    r = e.admin("POST", "/admin/drain", {}, api_key=None)
    assert r.status == 202, r
    assert e.wait_exit(5) == 0


def test_clients_follow_the_hint_to_another_edge_and_lose_nothing(edge_factory):
    window_ms = 2500
    target = edge_factory(start=False, name="target")
    source = edge_factory(
        {"storage": {"dir": str(target.storage_dir)},
         **drain_conf(window_ms, 5000, reconnect_url=target.url())}, name="source")
    target.start()
    ch = uniq()
    users = ["alice", "bob", "carol"]
    clients = {u: source.connect(u) for u in users}
    epochs = {u: c.ok({"type": "subscribe", "channel": ch})["epoch"] for u, c in clients.items()}
    assert len(set(epochs.values())) == 1

    def api_publish(edge, tag, i):
        r = edge.api_publish(ch, {"tag": tag, "i": i})
        assert r.status == 200, r
        return r.json()["offset"]

    acked = [api_publish(source, "before", i) for i in range(3)]
    r = source.admin("POST", "/admin/drain", {}, api_key=None)
    assert r.status == 202, r
    # While draining the edge still publishes and delivers to the clients it has.
    acked += [api_publish(source, "during", i) for i in range(3)]

    received = {u: [] for u in users}
    moved = {}
    for u, c in clients.items():
        hint = c.next_event("reconnect", timeout=window_ms / 1000 + 2)
        assert hint["url"] == target.url() and hint["reason"] == "drain", hint
        received[u] = [f["offset"] for f in c.backlog if f.get("type") == "message"]
        c.close()
        time.sleep(hint["after_ms"] / 1000)
        assert hint["url"] == target.url()
        moved[u] = target.connect(u)
    # Everyone left: the drained edge exits without waiting for the window's end.
    assert source.wait_exit(5) == 0

    acked += [api_publish(target, "after", i) for i in range(2)]
    for u, c in moved.items():
        last = received[u][-1] if received[u] else 0
        sub = resubscribe(c, ch, epochs[u], last)
        assert sub["recovered"] is True and sub["epoch"] == epochs[u], sub
        n = len(acked) - len(received[u])
        rest = [c.next_event("message", timeout=5)["offset"] for _ in range(n)]
        got = received[u] + rest
        assert got == acked, f"{u}: received {got}, acked {acked}"
        c.no_event("message", within=0.3)
        c.close()
