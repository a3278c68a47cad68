"""node.max_connections_per_worker: each worker sets its own open-file limit to that plus a
reserve of 512 before libwebsockets sizes its descriptor table from it (Debian's
libwebsockets walks the whole table on every connect and close, so a table sized from a
service manager's LimitNOFILE of a million would cost most of a millisecond per connect).
At the limit the worker stops accepting for a moment (wsfleet_accept_errors_total) and
nothing else breaks: the connections wait in the listen queue and are served once
descriptors are free again."""

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
        wait_until(lambda: e.metrics().value("wsfleet_accept_errors_total") > 0, 10,
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
