"""Server pings (ping_interval_ms = 1000): answering clients stay, silent ones go."""

import time

import pytest

from harness import wait_until

INTERVAL_S = 1.0


@pytest.fixture
def fast_edge(edge_factory):
    return edge_factory({"websocket": {"ping_interval_ms": 1000}})


def test_welcome_announces_interval(fast_edge, cx):
    assert cx(fast_edge).welcome["ping_interval_ms"] == 1000


def test_client_answering_pings_stays_connected(fast_edge, cx):
    c = cx(fast_edge)
    c.pump(3.5 * INTERVAL_S)  # answers every ping while reading
    assert c.pings_received >= 2, f"only {c.pings_received} server pings in 3.5 intervals"
    c.ping()


def test_busy_client_stays_connected(fast_edge, cx):
    """Commands interleaved with server pings: both kinds of traffic keep working."""
    c = cx(fast_edge)
    deadline = time.monotonic() + 3.5 * INTERVAL_S
    while time.monotonic() < deadline:
        c.ping()
        c.pump(0.3)
    c.ping()


def test_client_never_answering_is_closed(fast_edge, cx):
    c = cx(fast_edge, auto_pong=False)
    t0 = time.monotonic()
    code = c.expect_close(timeout=3 * INTERVAL_S + 2.5)
    elapsed = time.monotonic() - t0
    assert c.pings_received >= 1, "closed without ever being pinged"
    assert elapsed >= 0.9 * INTERVAL_S, f"closed after {elapsed:.2f}s: too early"
    assert code in (None, 1000, 1001, 1006, 1008, 1011), code
    fast_edge.assert_serving()


def test_silent_raw_tcp_after_upgrade_is_closed(fast_edge, cx):
    """Reads nothing at all (no pongs, no reading): closed; the server does not hang."""
    c = cx(fast_edge, auto_pong=False)
    time.sleep(3 * INTERVAL_S + 1.5)
    code = c.expect_close(timeout=2)
    assert c.pings_received >= 1
    assert code in (None, 1000, 1001, 1006, 1008, 1011), code
    fast_edge.assert_serving()


def test_disconnect_metric_counts_ping_timeouts(fast_edge, cx):
    before = fast_edge.metrics().value("wsfleet_disconnects_total")
    c = cx(fast_edge, auto_pong=False)
    c.expect_close(timeout=3 * INTERVAL_S + 2.5)
    wait_until(lambda: fast_edge.metrics().value("wsfleet_disconnects_total") >= before + 1,
               3, what="wsfleet_disconnects_total moved")
