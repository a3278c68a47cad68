"""node.max_connections_per_worker: each worker sets its own open-file limit to that plus a
reserve of 512 before libwebsockets sizes its descriptor table from it (Debian's
libwebsockets walks the whole table on every connect and close, so a table sized from a
service manager's LimitNOFILE of a million would cost most of a millisecond per connect).
A worker holding that many connections stops accepting for a moment
(wsfleet_accept_pauses_total{reason="max_connections"}), and so does one whose descriptors
run out (reason "error"); nothing else breaks: the connections wait in the listen queue and
are served once there is room again."""

import threading

import socket

from harness import wait_until

RESERVE = 512


def soft_nofile(pid):
    with open(f"/proc/{pid}/limits", encoding="utf-8") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise AssertionError(f"no open-file limit in /proc/{pid}/limits")


def test_each_worker_sets_its_descriptor_limit(edge_factory):
    e = edge_factory({"node": {"workers": 1, "max_connections_per_worker": 100}})
    assert soft_nofile(e.proc.pid) == 100 + RESERVE
    logged = e.log_events("descriptor_limit")
    assert logged and logged[-1]["to"] == 100 + RESERVE, logged
    c = e.connect("alice")
    c.close()


def test_at_the_limit_accepting_pauses_and_resumes(edge_factory):
    e = edge_factory({"node": {"workers": 1, "max_connections_per_worker": 16}})
    limit = soft_nofile(e.proc.pid)
    assert limit == 16 + RESERVE
    # Plain TCP connections: each takes a descriptor in the worker once accepted (lws then
    # waits for a handshake). More than the limit leaves some in the listen queue.
    held = []
    try:
        for _ in range(limit + 20):
            s = socket.create_connection(("127.0.0.1", e.ws_port), timeout=5)
            held.append(s)
        wait_until(lambda: e.metrics().value("wsfleet_accept_pauses_total", reason="error") > 0,
                   10,
                   what="an accept refused for want of descriptors")
        assert e.admin("GET", "/healthz").status == 200
    finally:
        for s in held:
            s.close()
    # Descriptors free again: a client is served (after the listener's short pause).
    def served():
        try:
            c = e.connect("bob", timeout=2)
        except (OSError, AssertionError):
            return False
        c.close()
        return True
    wait_until(served, 20, interval=0.2, what="a client served once descriptors are free")


def test_a_worker_holding_its_maximum_lets_the_next_connection_wait(edge_factory):
    e = edge_factory({"node": {"workers": 1, "max_connections_per_worker": 16}})
    clients = [e.connect(f"u{i}") for i in range(16)]
    late = {}

    def connect_late():
        try:
            late["client"] = e.connect("late", timeout=20)
        except Exception as err:  # noqa: BLE001 - reported below
            late["error"] = err

    t = threading.Thread(target=connect_late, daemon=True)
    try:
        t.start()
        wait_until(lambda: e.metrics().value("wsfleet_accept_pauses_total",
                                             reason="max_connections") > 0, 10,
                   what="accepting paused at 16 connections")
        assert "client" not in late and "error" not in late, late
        assert e.admin("GET", "/healthz").status == 200
        clients.pop().close()
        t.join(20)
        assert "client" in late, late
        r = late["client"].request({"type": "ping"}, timeout=5)
        assert r.get("type") == "pong", r
    finally:
        for c in clients:
            c.close()
        if "client" in late:
            late["client"].close()
