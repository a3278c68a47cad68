"""Token expiry on a live connection: refresh_required before exp, close 4001 at exp,
and a refresh in time keeps the connection."""

import time

import pytest

from harness import hs256


@pytest.fixture
def exp_edge(edge_factory):
    # leeway 0 so "at exp" means exp, whatever way the edge applies the leeway.
    return edge_factory({"websocket": {"refresh_notice_ms": 2000}, "auth": {"leeway_s": 0}})


def _connect_expiring(edge, cx, seconds=4):
    # Align to a second boundary: exp is in whole seconds.
    frac = time.time() % 1
    if frac > 0.5:
        time.sleep(1.05 - frac)
    exp = int(time.time()) + seconds
    return cx(edge, "alice", token=hs256("alice", exp_in=seconds)), exp


def test_refresh_required_then_4001(exp_edge, cx):
    c, exp = _connect_expiring(exp_edge, cx)
    notice = c.next_event("refresh_required", timeout=6)
    got_notice_at = time.time()
    assert notice["expires_at"] == exp * 1000, (notice, exp)
    assert got_notice_at <= exp - 1.0, f"notice only {exp - got_notice_at:.2f}s before exp"
    assert got_notice_at >= exp - 3.5, f"notice {exp - got_notice_at:.2f}s before exp (>2s)"
    code = c.expect_close(timeout=6)
    closed_at = time.time()
    assert code == 4001, code
    assert exp - 0.5 <= closed_at <= exp + 2.5, f"closed at exp{closed_at - exp:+.2f}s"
    exp_edge.assert_serving()


def test_refresh_in_time_keeps_connection(exp_edge, cx):
    c, exp = _connect_expiring(exp_edge, cx)
    c.next_event("refresh_required", timeout=6)
    r = c.ok({"type": "refresh", "token": hs256("alice", exp_in=3600)})
    assert r["expires_at"] > (exp + 3000) * 1000
    remaining = exp + 2.0 - time.time()
    c.pump(max(remaining, 0))
    c.ping()
    assert c.closed is None


def test_refresh_with_shorter_token_still_expires(exp_edge, cx):
    c = cx(exp_edge, "alice", token=hs256("alice", exp_in=3600))
    r = c.ok({"type": "refresh", "token": hs256("alice", exp_in=3)})
    assert r["expires_at"] <= (time.time() + 4) * 1000
    assert c.expect_close(timeout=8) == 4001


def test_forbidden_refresh_does_not_extend(exp_edge, cx):
    c, exp = _connect_expiring(exp_edge, cx)
    r = c.request({"type": "refresh", "token": hs256("mallory", exp_in=3600)})
    assert r["ok"] is False and r["error"]["code"] == "forbidden", r
    assert c.expect_close(timeout=8) == 4001
