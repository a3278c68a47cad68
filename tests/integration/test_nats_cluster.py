"""The NATS region fixture itself, and what nats-server (2.9.10) answers in the cases the
edge depends on (the facts listed in nats_cluster.py's docstring)."""

import json
import os
import signal
import threading
import time

import pytest

from harness import wait_until
from nats_cluster import (NatsError, NatsFailure, NatsServer, NatsTimeout, NoResponders,
                          ServerError, nats_server_available)


def _ack_or_reason(client, subject, payload, timeout=1.0, **kw):
    """(PubAck dict, None) when acknowledged, else (None, why)."""
    try:
        r = client.js_publish(subject, payload, timeout=timeout, **kw)
    except (NatsTimeout, NoResponders) as e:
        return None, type(e).__name__
    if "error" in r:
        return None, json.dumps(r)
    return r, None


def _publish_acked(client, subject, payload, msg_id, timeout=15.0):
    """Retries (with one Nats-Msg-Id, so a retry cannot store twice) until acked."""
    return wait_until(lambda: _ack_or_reason(client, subject, payload, msg_id=msg_id)[0],
                      timeout, interval=0.1, what=f"ack of {msg_id}")


def _index_of(cluster, name):
    return [s.name for s in cluster.servers].index(name)


def _r3_stream(client, name="ORDERS", subjects=("orders.>",)):
    r = client.stream_create(name, subjects, num_replicas=3)
    assert "error" not in r, r
    assert r["config"]["num_replicas"] == 3
    return r


# ------------------------------------------------------------------------- the fixture
def test_three_servers_form_one_routed_region(nats_cluster):
    ids = {}
    for s in nats_cluster.servers:
        v = s.varz()
        assert v["server_name"] == s.name
        assert v["host"] == "127.0.0.1" and v["port"] == s.port
        assert v["cluster"]["name"] == "eu"
        assert v["cluster"]["addr"] == "127.0.0.1" and v["cluster"]["cluster_port"] == \
            s.cluster_port
        assert v["http_host"] == "127.0.0.1"
        ids[s.name] = v["server_id"]
    leaders = set()
    for s in nats_cluster.servers:
        routez = s.routez()
        assert routez["num_routes"] == 2, routez
        assert {r["remote_id"] for r in routez["routes"]} == \
            {i for name, i in ids.items() if name != s.name}
        meta = s.jsz()["meta_cluster"]
        assert meta["cluster_size"] == 3 and meta["name"] == "eu"
        leaders.add(meta["leader"])
    assert len(leaders) == 1 and leaders <= set(ids)

    # Core messages cross the routes: subscriber on server 3, publisher on server 1.
    with nats_cluster.connect(2) as sub, nats_cluster.connect(0) as pub:
        sid = sub.subscribe("greet.*")
        sub.flush()
        wait_until(lambda: _interest_seen(pub, sub, sid), 5, what="route interest")
        pub.publish("greet.a", b"hello", headers={"K": "v"})
        m = sub.next_msg(5, sid=sid)
        assert (m.subject, m.payload, m.headers.get("K")) == ("greet.a", b"hello", "v")


def _interest_seen(pub, sub, sid):
    """A probe message published on server 1 arrives on server 3 (route interest is
    propagated asynchronously)."""
    pub.publish("greet.probe", b"p")
    pub.flush()
    try:
        while True:
            m = sub.next_msg(0.2, sid=sid)
            if m.subject == "greet.probe":
                return True
    except NatsTimeout:
        return False


def test_request_reply_across_servers_and_no_responders(nats_cluster):
    with nats_cluster.connect(0) as a, nats_cluster.connect(1) as b:
        sid = b.subscribe("svc.echo", queue="workers")
        b.flush()
        stop = threading.Event()

        def serve():
            while not stop.is_set():
                try:
                    m = b.next_msg(0.2, sid=sid)
                except NatsTimeout:
                    continue
                b.publish(m.reply, m.payload.upper())

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        try:
            def echo():
                try:
                    return a.request("svc.echo", b"ping", timeout=1).payload
                except NoResponders:
                    return None  # the route has not carried the interest yet
            assert wait_until(echo, 5, what="echo over the route") == b"PING"
            assert a.request("svc.echo", b"again", timeout=2).payload == b"AGAIN"
        finally:
            stop.set()
            server.join(5)
        with pytest.raises(NoResponders):
            a.request("svc.nobody", b"x", timeout=2)


def test_r3_stream_publish_is_acked_and_readable(nats_cluster):
    with nats_cluster.connect(1) as c:
        info = _r3_stream(c)
        assert info["cluster"]["leader"] in {s.name for s in nats_cluster.servers}
        assert len(info["cluster"]["replicas"]) == 2
        ack = c.js_publish("orders.eu.1", b'{"n":1}', headers={"X-Trace": "t1"})
        assert ack == {"stream": "ORDERS", "seq": 1}, ack
        ack2 = c.js_publish("orders.eu.2", b"second")
        assert ack2["seq"] == 2
        assert "ORDERS" in c.stream_names()
        assert c.stream_info("ORDERS")["state"]["messages"] == 2
        assert c.account_info()["streams"] == 1
    # Read through another server: the API is cluster-wide.
    with nats_cluster.connect(2) as c:
        m = c.msg_get("ORDERS", seq=1)["message"]
        assert (m["subject"], m["seq"], m["data"]) == ("orders.eu.1", 1, b'{"n":1}')
        assert m["hdrs"] == {"X-Trace": "t1"}
        assert c.msg_get("ORDERS", last_by_subj="orders.eu.2")["message"]["seq"] == 2
        assert c.msg_get("ORDERS", seq=3)["error"]["err_code"] == 10037
        assert c.stream_purge("ORDERS", subject="orders.eu.1")["purged"] == 1
        assert c.stream_info("ORDERS")["state"]["messages"] == 1
        assert c.stream_delete("ORDERS")["success"] is True
        assert c.stream_info("ORDERS")["error"]["err_code"] == 10059


def test_one_of_three_killed_stream_still_acks(nats_cluster):
    with nats_cluster.connect(0) as c:
        _r3_stream(c)
        before = [c.js_publish("orders.x", f"m{i}".encode(), msg_id=f"b{i}")["seq"]
                  for i in range(5)]
        leader = c.stream_info("ORDERS")["cluster"]["leader"]
    # Kill the stream leader: the hardest single loss (a new leader must be elected).
    victim = _index_of(nats_cluster, leader)
    nats_cluster.kill(victim)
    survivor = next(i for i in range(3) if i != victim)
    with nats_cluster.connect(survivor) as c:
        ack = _publish_acked(c, "orders.x", b"after", msg_id="a0")
        assert ack["seq"] == 6, ack
        for seq in before + [6]:
            assert c.msg_get("ORDERS", seq=seq)["message"]["seq"] == seq
    # Restart keeps the store and ports: the member rejoins and catches up.
    nats_cluster.restart(victim)
    with nats_cluster.connect(victim) as c:
        wait_until(lambda: _stream_current(c, "ORDERS", 3), 15, what="replicas current")
        assert c.stream_info("ORDERS")["state"]["last_seq"] == 6


def _stream_current(client, name, replicas):
    info = client.stream_info(name)
    cl = info.get("cluster") or {}
    peers = cl.get("replicas") or []
    return cl.get("leader") and len(peers) == replicas - 1 and all(
        p.get("current") for p in peers)


def test_two_of_three_killed_publishes_are_never_acked(nats_cluster):
    with nats_cluster.connect(0) as c:
        _r3_stream(c)
        assert c.js_publish("orders.x", b"first")["seq"] == 1
    nats_cluster.kill(1)
    nats_cluster.kill(2)
    with nats_cluster.connect(0) as c:
        outcomes = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            ack, why = _ack_or_reason(c, "orders.x", b"lost?", timeout=0.5)
            assert ack is None, f"publish acknowledged without a quorum: {ack}"
            outcomes.append(why)
            time.sleep(0.05)  # no-responders answers come at once: do not spin
        assert outcomes
    # One member back gives a quorum again: the stream acks and kept its message.
    # Not acknowledged is not "not stored": the lone leader appended the proposals to its
    # log, and they commit once a quorum is back. Retries must reuse their Nats-Msg-Id.
    nats_cluster.start_member(1)
    with nats_cluster.connect(1) as c:
        ack = _publish_acked(c, "orders.x", b"back", msg_id="back-1", timeout=20)
        assert ack["seq"] >= 2, ack
        assert c.msg_get("ORDERS", seq=1)["message"]["data"] == b"first"
        for seq in range(2, ack["seq"]):
            assert c.msg_get("ORDERS", seq=seq)["message"]["data"] == b"lost?"
        assert c.msg_get("ORDERS", seq=ack["seq"])["message"]["data"] == b"back"
    nats_cluster.start_member(2)


def test_paused_member_is_survived_and_resumes(nats_cluster):
    with nats_cluster.connect(0) as c:
        _r3_stream(c)
        leaders = {c.stream_info("ORDERS")["cluster"]["leader"], nats_cluster.meta_leader()}
    # A follower of both the stream and the meta group: no election, so the test stays
    # short (losing a leader is covered by the kill test).
    paused = next(i for i, s in enumerate(nats_cluster.servers) if s.name not in leaders)
    other = (paused + 1) % 3
    nats_cluster[paused].pause()
    try:
        with nats_cluster.connect(other) as c:
            ack = _publish_acked(c, "orders.p", b"while paused", msg_id="p1")
            assert ack["seq"] == 1
        with pytest.raises((NatsTimeout, OSError)):
            nats_cluster.connect(paused, timeout=1)
    finally:
        nats_cluster[paused].resume()
    nats_cluster.wait_ready()
    with nats_cluster.connect(paused) as c:
        c.flush(5)
        wait_until(lambda: _stream_current(c, "ORDERS", 3), 15, what="replicas current")
        assert c.msg_get("ORDERS", seq=1)["message"]["data"] == b"while paused"


def test_token_auth_refuses_a_wrong_token(nats_cluster_factory):
    region = nats_cluster_factory(n=1, token="s3cret-token")
    with pytest.raises(ServerError, match="Authorization Violation"):
        region.connect(0, token="wrong")
    with pytest.raises(ServerError, match="Authorization Violation"):
        region.connect(0, token=None)
    with region.connect(0) as c:
        c.flush()
        assert c.info.get("auth_required") is True


def test_user_password_auth(nats_cluster_factory):
    region = nats_cluster_factory(n=3, user="edge", password="pw-1")
    with pytest.raises(ServerError, match="Authorization Violation"):
        region.connect(1, password="nope")
    with region.connect(1) as c:
        _r3_stream(c, "AUTH", ["auth.>"])
        assert c.js_publish("auth.x", b"1")["seq"] == 1


def test_self_routed_single_server_waits_for_a_meta_leader(nats_cluster_factory):
    # nats-server drops a route to itself as a duplicate: with no gateway or leafnode, the
    # meta group never elects, so a lone region must run standalone (n=1 default).
    region = nats_cluster_factory(n=1, self_route=True)
    s = region[0]
    assert s.lonely
    status, body = s.healthz()
    assert status == 503 and "meta leader" in body.get("error", ""), body
    assert not s.meta_leader()
    standalone = nats_cluster_factory(n=1)
    assert standalone[0].healthz()[0] == 200
    with standalone.connect(0) as c:
        assert c.stream_create("ONE", ["one.>"])["config"]["num_replicas"] == 1


# ------------------------------------------------------------------------ facts (a)-(d)
def test_fact_a_server_store_full(nats_cluster_factory):
    small = 128 * 1024
    for n in (1, 3):
        region = nats_cluster_factory(n=n, max_file_store=small)
        with region.connect(0) as c:
            # A stream reserving more than the servers have is refused at creation.
            r = c.stream_create("BIGGER", ["bigger.>"], num_replicas=n, max_bytes=1 << 20)
            assert r["error"] == ({"code": 500, "err_code": 10047,
                                   "description": "insufficient storage resources available"}
                                  if n == 1 else
                                  {"code": 400, "err_code": 10005, "description":
                                   "no suitable peers for placement, insufficient storage"}), r
            assert "error" not in c.stream_create("FULL", ["full.>"], num_replicas=n)
            err = None
            for _ in range(100):
                r = c.js_publish("full.x", b"x" * 4000)
                if "error" in r:
                    err = r
                    break
            assert err == {"error": {"code": 503, "err_code": 10023,
                                     "description": "insufficient resources"},
                           "stream": "FULL", "seq": 0}, err
            # Not acknowledged afterwards either (R3: the stream leader steps down).
            ack, why = _ack_or_reason(c, "full.x", b"x" * 4000, timeout=1)
            assert ack is None, ack
            if n == 1:
                assert "10023" in why
        assert "JetStream resource limits exceeded for server" in "".join(
            s.log_text() for s in region.servers)


def test_fact_a_account_limit(nats_cluster_factory):
    acct = ("accounts { APP: { jetstream: { max_file: 65536, max_mem: 65536 }, "
            "users: [{user: app, password: pw}] } }")
    region = nats_cluster_factory(n=1, extra_conf=acct)
    with region.connect(0, user="app", password="pw") as c:
        assert c.account_info()["limits"]["max_storage"] == 65536
        assert "error" not in c.stream_create("ACC", ["acc.>"])
        err = None
        for _ in range(100):
            r = c.js_publish("acc.x", b"x" * 4000)
            if "error" in r:
                err = r
                break
        assert err == {"error": {"code": 400, "err_code": 10002,
                                 "description": "resource limits exceeded for account"},
                       "stream": "ACC", "seq": 0}, err


def test_fact_a_stream_max_bytes_discard_new(nats_cluster_factory):
    region = nats_cluster_factory(n=3)
    with region.connect(0) as c:
        assert "error" not in c.stream_create("MB", ["mb.>"], num_replicas=3,
                                              max_bytes=1000, discard="new")
        assert c.js_publish("mb.x", b"y" * 600)["seq"] == 1
        r = c.js_publish("mb.x", b"y" * 600)
        assert r == {"error": {"code": 503, "err_code": 10077,
                               "description": "maximum bytes exceeded"},
                     "stream": "MB", "seq": 0}, r
        # 2.9.10 file store: the check adds the payload size, not the stored record size
        # (payload + subject + ~20 bytes), so a message that fits by payload but not by
        # record is ACKED and the OLDEST message is silently dropped instead.
        assert "error" not in c.stream_create("MB2", ["mb2.>"], num_replicas=3,
                                              max_bytes=1000, discard="new")
        acks = [c.js_publish("mb2.x", b"z" * 300) for _ in range(4)]
        assert [a.get("seq") for a in acks] == [1, 2, 3, 4], acks
        state = c.stream_info("MB2")["state"]
        assert (state["first_seq"], state["messages"]) == (3, 2), state
        assert c.msg_get("MB2", seq=1)["error"]["err_code"] == 10037
        # max_msgs with discard new refuses exactly.
        assert "error" not in c.stream_create("MM", ["mm.>"], num_replicas=3, max_msgs=2,
                                              discard="new")
        assert [c.js_publish("mm.x", b"1")["seq"] for _ in range(2)] == [1, 2]
        assert c.js_publish("mm.x", b"1")["error"] == {
            "code": 503, "err_code": 10077, "description": "maximum messages exceeded"}


def test_fact_b_republish(nats_cluster):
    with nats_cluster.connect(0) as c:
        r = c.stream_create("RP", ["rp.>"], num_replicas=3,
                            republish={"src": "rp.>", "dest": "out.>"})
        assert r["config"]["republish"] == {"src": "rp.>", "dest": "out.>"}, r
        r = c.stream_create("RH", ["rh.>"], num_replicas=3,
                            republish={"src": "rh.>", "dest": "outh.>",
                                       "headers_only": True})
        assert r["config"]["republish"]["headers_only"] is True, r
        r = c.stream_create("LOOP", ["ry.>"], num_replicas=3,
                            republish={"src": ">", "dest": "ry.>"})
        assert r["error"]["err_code"] == 10052, r
        sid = c.subscribe("out.>")
        sid_h = c.subscribe("outh.>")
        c.flush()
        assert c.js_publish("rp.a", b"one", headers={"X-Foo": "bar"}, msg_id="m1")["seq"] == 1
        assert c.js_publish("rp.b", b"two")["seq"] == 2
        assert c.js_publish("rp.a", b"three")["seq"] == 3
        got = [c.next_msg(5, sid=sid) for _ in range(3)]
        assert [(m.subject, m.payload) for m in got] == \
            [("out.a", b"one"), ("out.b", b"two"), ("out.a", b"three")]
        assert got[0].headers == {"X-Foo": "bar", "Nats-Msg-Id": "m1", "Nats-Stream": "RP",
                                  "Nats-Subject": "rp.a", "Nats-Sequence": "1",
                                  "Nats-Last-Sequence": "0"}, got[0].headers
        # Nats-Last-Sequence is the previous message on the same subject; no time stamp.
        assert got[2].headers == {"Nats-Stream": "RP", "Nats-Subject": "rp.a",
                                  "Nats-Sequence": "3", "Nats-Last-Sequence": "1"}
        assert c.js_publish("rh.a", b"payload")["seq"] == 1
        m = c.next_msg(5, sid=sid_h)
        assert (m.subject, m.payload) == ("outh.a", b"")
        assert m.headers == {"Nats-Stream": "RH", "Nats-Subject": "rh.a",
                             "Nats-Sequence": "1", "Nats-Last-Sequence": "0",
                             "Nats-Msg-Size": "7"}, m.headers


def test_fact_c_msg_get_next_by_subj(nats_cluster):
    with nats_cluster.connect(0) as c:
        _r3_stream(c, "NB", ["nb.>"])
        for subj, data in (("nb.a", b"1"), ("nb.b", b"2"), ("nb.a", b"3")):
            c.js_publish(subj, data)
        m = c.msg_get("NB", seq=2, next_by_subj="nb.a")["message"]
        assert (m["seq"], m["subject"], m["data"]) == (3, "nb.a", b"3")
        assert c.msg_get("NB", seq=1, next_by_subj="nb.a")["message"]["seq"] == 1
        assert c.msg_get("NB", next_by_subj="nb.b")["message"]["seq"] == 2
        assert c.msg_get("NB", seq=2, next_by_subj="nb.*")["message"]["seq"] == 2
        assert c.msg_get("NB", seq=4, next_by_subj="nb.a") == {
            "type": "io.nats.jetstream.api.v1.stream_msg_get_response",
            "error": {"code": 404, "err_code": 10037, "description": "no message found"}}
        assert c.msg_get("NOPE", seq=1)["error"] == {
            "code": 404, "err_code": 10059, "description": "stream not found"}


def test_fact_d_duplicate_msg_id(nats_cluster):
    with nats_cluster.connect(0) as c:
        r = _r3_stream(c, "DUP", ["dup.>"])
        assert r["config"]["duplicate_window"] == 120 * 10**9  # 2 min default, in ns
        assert c.js_publish("dup.a", b"one", msg_id="id-1") == {"stream": "DUP", "seq": 1}
        assert c.js_publish("dup.a", b"two") == {"stream": "DUP", "seq": 2}
        # Same id again, even with another payload and subject: the original seq.
        assert c.js_publish("dup.a", b"one", msg_id="id-1") == \
            {"stream": "DUP", "seq": 1, "duplicate": True}
        assert c.js_publish("dup.zzz", b"other", msg_id="id-1") == \
            {"stream": "DUP", "seq": 1, "duplicate": True}
        assert c.stream_info("DUP")["state"]["messages"] == 2


def test_closed_client_refuses_to_send(nats_cluster):
    c = nats_cluster.connect(0)
    c.close()
    with pytest.raises(NatsError):
        c.publish("x", b"y")


def test_unexpected_death_is_recorded(tmp_path):
    if not nats_server_available():
        pytest.skip("nats-server not installed")
    s = NatsServer(tmp_path, "solo", standalone=True).start()
    os.kill(s.proc.pid, signal.SIGKILL)  # not through s.kill(): a crash
    s.proc.wait(5)
    with pytest.raises(NatsFailure, match="died unexpectedly"):
        s.check_alive()
    s.stop()
    assert len(s.problems) == 1 and "signal 9" in s.problems[0], s.problems
    # A SIGTERM stop is clean (nats-server exits 1 after its shutdown): no problem.
    s2 = NatsServer(tmp_path, "solo2", standalone=True).start()
    s2.stop()
    assert s2.problems == [] and "Server Exiting" in s2.log_text()
