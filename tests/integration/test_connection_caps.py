"""Host-wide connection caps: limits.max_connections_per_ip (per IPv4 address) and
limits.max_connections_per_user (per tenant + user), counted over every worker process of
the host from the shared presence store. A handshake over a cap gets 429, reason
`too_many_connections`, with Retry-After; closing a connection frees its place, and so
does the death of the worker that held it once its records are swept.

Client addresses on loopback: 127.0.0.1 by default, 127.0.0.2 and 127.0.0.3 as others.
Where the workers must see each other's connections, the test waits until the backend
API's presence look-up (which reads the shared store) shows them.
"""

import json
import os
import signal
import socket

import pytest

import harness
from harness import free_port_block, user, wait_until
from wsclient import HandshakeRefused

IP2 = "127.0.0.2"
IP3 = "127.0.0.3"


def caps_edge(edge_factory, workers=1, **limits):
    e = edge_factory({"node": {"workers": workers}, "limits": limits}, start=False)
    if workers > 1:
        e.admin_port = free_port_block(workers)
        e.update_conf({"admin": {"listen": f"127.0.0.1:{e.admin_port}"}})
    e.start()
    for i in range(1, workers):
        # start() waits for worker 0; each worker serves its own admin port.
        wait_until(lambda i=i: _ready(e.admin_port + i), 15, what=f"worker {i} ready")
    return e


def _ready(port):
    try:
        return harness.http(port, "GET", "/readyz", timeout=1).status == 200
    except OSError:
        return False


def refusal(edge, name, **kw):
    with pytest.raises(HandshakeRefused) as info:
        c = edge.connect(name, **kw)
        c.abort()
    return info.value.response


def assert_capped(resp, cap):
    assert resp.status == 429, resp
    error = resp.json()["error"]
    assert error["reason"] == "too_many_connections", error
    assert ("address" if cap == "ip" else "user") in error["message"], error
    retry = resp.header("retry-after")
    assert retry is not None and retry.isdigit() and int(retry) >= 1, resp.headers


def connect_or_none(edge, name, cap, **kw):
    """A client, or None when the handshake hit `cap`."""
    try:
        return edge.connect(name, **kw)
    except HandshakeRefused as refused:
        assert_capped(refused.response, cap)
        return None


def port_metrics(port):
    r = harness.http(port, "GET", "/metrics")
    assert r.status == 200, r
    return harness.Metrics(r.body.decode("utf-8"))


def cap_refusals(port, cap):
    return port_metrics(port).value("wsfleet_connection_cap_refusals_total", cap=cap)


def stored_connections(edge, name):
    r = edge.admin("GET", f"/api/v1/presence?tenant=demo&user={name}")
    assert r.status == 200, r
    return len(r.json()["connections"])


def wait_stored(edge, name, count):
    """Until the host's shared store (what every worker counts) holds `count` of them."""
    wait_until(lambda: stored_connections(edge, name) == count, 5,
               what=f"{count} connection(s) of {name} in the shared store")


def close_all(clients):
    for c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001 - its worker may be gone
            c.abort()


# ------------------------------------------------------------------ one worker
def test_ip_cap_refuses_the_next_connection_until_one_closes(edge_factory):
    e = caps_edge(edge_factory, max_connections_per_ip=3, max_connections_per_user=0)
    clients = [e.connect(user("ip")) for _ in range(3)]
    assert_capped(refusal(e, user("ip")), "ip")
    # Another address is not affected.
    other = e.connect(user("ip"), source_ip=IP2)

    clients.pop(0).close()
    admitted = wait_until(lambda: connect_or_none(e, user("ip"), "ip"), 5,
                          what="a connection admitted after one closed")
    clients.append(admitted)
    assert_capped(refusal(e, user("ip")), "ip")

    m = e.metrics()
    refused = m.value("wsfleet_connection_cap_refusals_total", cap="ip")
    assert refused >= 2
    assert m.value("wsfleet_handshake_rejected_total", reason="too_many_connections") == refused
    assert m.value("wsfleet_connection_cap_refusals_total", cap="user") == 0
    assert m.value("wsfleet_connections_active") == 4
    for c in clients + [other]:
        c.ping()
    close_all(clients + [other])


def test_user_cap_spans_addresses_and_is_per_tenant(edge_factory):
    e = caps_edge(edge_factory, max_connections_per_ip=0, max_connections_per_user=2)
    bob = [e.connect("bob"), e.connect("bob", source_ip=IP2)]
    assert_capped(refusal(e, "bob", source_ip=IP3), "user")
    # Other users, and the same user name in another tenant, are not affected.
    carol = e.connect("carol", source_ip=IP3)
    other_bob = e.connect("bob", tenant="other", source_ip=IP3)

    bob.pop().close()
    bob.append(wait_until(lambda: connect_or_none(e, "bob", "user", source_ip=IP3), 5,
                          what="bob admitted again after closing one"))
    assert_capped(refusal(e, "bob"), "user")
    m = e.metrics()
    assert m.value("wsfleet_connection_cap_refusals_total", cap="user") >= 2
    assert m.value("wsfleet_connection_cap_refusals_total", cap="ip") == 0
    close_all(bob + [carol, other_bob])


def test_exempt_addresses_skip_the_ip_cap_only(edge_factory):
    e = caps_edge(edge_factory, max_connections_per_ip=1, max_connections_per_user=2,
                  exempt_ips=["127.0.0.1"])
    exempt = [e.connect(user("ex")) for _ in range(3)]
    capped = e.connect(user("ex"), source_ip=IP2)
    assert_capped(refusal(e, user("ex"), source_ip=IP2), "ip")
    dora = [e.connect("dora"), e.connect("dora")]
    assert_capped(refusal(e, "dora"), "user")
    close_all(exempt + dora + [capped])


def test_reload_applies_new_caps_to_new_handshakes(edge_factory):
    e = caps_edge(edge_factory, max_connections_per_ip=1)
    first = e.connect(user("rl"))
    assert_capped(refusal(e, user("rl")), "ip")

    before = e.metrics().value("wsfleet_config_reloads_total", result="ok")
    e.update_conf({"limits": {"max_connections_per_ip": 2}})
    e.send_signal(signal.SIGHUP)
    wait_until(lambda: e.metrics().value("wsfleet_config_reloads_total", result="ok") > before,
               5, what="reload counted")
    second = e.connect(user("rl"))
    assert_capped(refusal(e, user("rl")), "ip")
    first.ping()  # the lowered-then-raised cap never touched open connections
    close_all([first, second])


# ------------------------------------------------------------------ two workers
def worker_pids(edge):
    """worker index -> pid of its current process, from the supervisor's log."""
    pids = {}
    for line in edge.log_text().splitlines():
        if '"worker_started"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        pids[entry["worker"]] = entry["pid"]
    return pids


def active(edge, worker):
    return int(port_metrics(edge.admin_port + worker).value("wsfleet_connections_active"))


def open_on_both_workers(edge, count, name_of):
    """Opens `count` connections one at a time, each stored before the next, until both
    workers hold some (the kernel spreads connections over the workers' sockets by a hash
    of the addresses: a few retries make an all-on-one-worker draw vanishingly rare)."""
    for _ in range(8):
        clients = []
        for i in range(count):
            name = name_of(i)
            clients.append(edge.connect(name))
            wait_stored(edge, name, sum(1 for j in range(i + 1) if name_of(j) == name))
        split = [active(edge, 0), active(edge, 1)]
        assert sum(split) == count, split
        if min(split) > 0:
            return clients, split
        close_all(clients)
        wait_until(lambda: active(edge, 0) + active(edge, 1) == 0, 5, what="all closed")
        # Closed is not yet forgotten: the next draw counts what the store still holds.
        for name in {name_of(i) for i in range(count)}:
            wait_stored(edge, name, 0)
    raise AssertionError("every draw put all connections on one worker")


def refuse_on_both_workers(edge, name, cap):
    """Retries a capped handshake until both workers have refused it: every try must be
    refused, whichever worker takes it."""
    ports = [edge.admin_port, edge.admin_port + 1]
    before = [cap_refusals(p, cap) for p in ports]
    for _ in range(40):
        assert_capped(refusal(edge, name), cap)
        if all(cap_refusals(p, cap) > b for p, b in zip(ports, before)):
            return
    raise AssertionError("40 refused handshakes all went to one worker")


def test_ip_cap_holds_across_workers(edge_factory):
    e = caps_edge(edge_factory, workers=2, max_connections_per_ip=6, max_connections_per_user=0)
    names = [user("w") for _ in range(6)]
    clients, split = open_on_both_workers(e, 6, lambda i: names[i])
    refuse_on_both_workers(e, user("w"), "ip")
    assert active(e, 0) + active(e, 1) == 6
    # A close on either worker frees a place for a handshake on either worker.
    clients.pop().close()
    wait_until(lambda: stored_connections(e, names[5]) == 0, 5, what="the close stored")
    late = user("w")
    clients.append(wait_until(lambda: connect_or_none(e, late, "ip"), 5,
                              what="admitted after a close"))
    wait_stored(e, late, 1)  # seen by both workers before the next try
    refuse_on_both_workers(e, user("w"), "ip")
    close_all(clients)


def test_user_cap_holds_across_workers(edge_factory):
    e = caps_edge(edge_factory, workers=2, max_connections_per_ip=0, max_connections_per_user=4)
    clients, split = open_on_both_workers(e, 4, lambda i: "erin")
    refuse_on_both_workers(e, "erin", "user")
    assert active(e, 0) + active(e, 1) == 4
    close_all(clients)


def test_killed_workers_connections_stop_counting(edge_factory):
    e = caps_edge(edge_factory, workers=2, max_connections_per_ip=6, max_connections_per_user=0)
    names = [user("k") for _ in range(6)]
    clients, split = open_on_both_workers(e, 6, lambda i: names[i])
    assert_capped(refusal(e, user("k")), "ip")

    pids = worker_pids(e)
    assert set(pids) == {0, 1}, pids
    victim = 1
    lost = int(split[victim])
    os.kill(pids[victim], signal.SIGKILL)
    # The supervisor starts a new worker in the slot; it sweeps the records of the dead
    # one (its pid is gone) before it serves.
    wait_until(lambda: worker_pids(e).get(victim) not in (None, pids[victim]), 10,
               what="the worker restarted")
    wait_until(lambda: _ready(e.admin_port + victim), 15, what="the new worker ready")
    assert active(e, victim) == 0
    assert active(e, 1 - victim) == 6 - lost

    # Exactly the places the dead worker held are free again.
    fresh = []
    for _ in range(lost):
        name = user("k")
        fresh.append(e.connect(name))
        wait_stored(e, name, 1)
    assert_capped(refusal(e, user("k")), "ip")
    assert e.alive()
    for c in clients:
        c.abort()
    close_all(fresh)
