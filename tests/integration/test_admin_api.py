"""The backend HTTP API and operational endpoints on the admin listener."""


import pytest

import harness
from harness import DEMO_API_KEY, OTHER_API_KEY, uniq, wait_until


def error_of(resp, status):
    assert resp.status == status, resp
    body = resp.json()
    assert isinstance(body.get("error"), dict), body
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str), body
    return body["error"]


def test_healthz_and_readyz(edge):
    assert edge.admin("GET", "/healthz", api_key=None).status == 200
    assert edge.admin("GET", "/readyz", api_key=None).status == 200


def test_api_publish_delivers_with_empty_from(edge, cx):
    ch = uniq()
    c = cx(edge)
    sub = c.ok({"type": "subscribe", "channel": ch})
    r = edge.api_publish(ch, {"k": "v"})
    assert r.status == 200, r
    offset = r.json()["offset"]
    assert isinstance(offset, int)
    m = c.next_event("message")
    assert m == {"type": "message", "channel": ch, "epoch": sub["epoch"], "offset": offset,
                 "from": "", "data": {"k": "v"}, "ts": m["ts"]}


def test_api_publish_from_field_ignored(edge, cx):
    ch = uniq()
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    r = edge.api_publish(ch, 1, **{"from": "mallory"})
    assert r.status == 200, r
    assert c.next_event("message")["from"] == ""


def test_api_publish_offsets_interleave_with_clients(edge, cx):
    ch = uniq()
    c = cx(edge)
    offs = [c.ok({"type": "publish", "channel": ch, "data": 0})["offset"],
            edge.api_publish(ch, 1).json()["offset"],
            c.ok({"type": "publish", "channel": ch, "data": 2})["offset"]]
    assert offs[0] < offs[1] < offs[2], offs


def test_api_publish_idempotency(edge, cx):
    ch = uniq()
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    r1 = edge.api_publish(ch, {"n": 1}, idempotency_key="order-42")
    r2 = edge.api_publish(ch, {"n": 1}, idempotency_key="order-42")
    assert r1.status == 200 and r2.status == 200, (r1, r2)
    assert r1.json()["offset"] == r2.json()["offset"]
    marker = edge.api_publish(ch, "marker").json()["offset"]
    m = c.next_event("message")
    assert m["offset"] == r1.json()["offset"] and m["data"] == {"n": 1}
    m = c.next_event("message")
    assert m["offset"] == marker, f"second delivery of an idempotent publish: {m!r}"


def test_client_publish_idempotency(edge, cx):
    ch = uniq()
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    a = c.ok({"type": "publish", "channel": ch, "data": 1, "idempotency_key": "k-1"})
    b = c.ok({"type": "publish", "channel": ch, "data": 1, "idempotency_key": "k-1"})
    assert a["offset"] == b["offset"]
    marker = c.ok({"type": "publish", "channel": ch, "data": "m"})["offset"]
    assert c.next_event("message")["offset"] == a["offset"]
    assert c.next_event("message")["offset"] == marker


def test_api_publish_live_channel(edge, cx):
    ch = uniq("live")
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    r = edge.api_publish(ch, "x")
    assert r.status == 200 and r.json()["offset"] == 0, r
    m = c.next_event("message")
    assert m["epoch"] == "" and m["offset"] == 0 and m["from"] == ""


def test_api_send(edge, cx):
    u = harness.user("api")
    c1, c2 = cx(edge, u), cx(edge, u)
    r = edge.admin("POST", "/api/v1/send", {"tenant": "demo", "user": u, "data": {"x": 1}})
    assert r.status == 200, r
    assert r.json()["delivered"] == "online"
    for c in (c1, c2):
        d = c.next_event("direct")
        assert d["data"] == {"x": 1} and isinstance(d["ts"], int)
    r = edge.admin("POST", "/api/v1/send",
                   {"tenant": "demo", "user": harness.user("away"), "data": 1})
    assert r.status == 200 and r.json()["delivered"] == "dropped", r


def test_api_send_other_tenant_user_not_reached(edge, cx):
    u = harness.user("iso")
    other = cx(edge, u, tenant="other")
    r = edge.admin("POST", "/api/v1/send", {"tenant": "demo", "user": u, "data": 1})
    assert r.status == 200 and r.json()["delivered"] == "dropped", r
    other.no_event("direct", within=0.3)


def test_api_requires_key(edge):
    body = {"tenant": "demo", "channel": uniq(), "data": 1}
    error_of(edge.admin("POST", "/api/v1/publish", body, api_key=None), 401)
    error_of(edge.admin("POST", "/api/v1/publish", body, api_key="wrong-key-000000000000"), 401)
    error_of(edge.admin("POST", "/api/v1/publish", body,
                        headers={"Authorization": "Basic " + DEMO_API_KEY}, api_key=None), 401)
    error_of(edge.admin("GET", "/api/v1/presence?tenant=demo&user=alice", api_key=None), 401)


def test_api_other_tenants_key_is_403(edge, cx):
    ch = uniq()
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    body = {"tenant": "demo", "channel": ch, "data": "intruder"}
    error_of(edge.admin("POST", "/api/v1/publish", body, api_key=OTHER_API_KEY), 403)
    error_of(edge.admin("POST", "/api/v1/send", {"tenant": "demo", "user": "alice", "data": 1},
                        api_key=OTHER_API_KEY), 403)
    error_of(edge.admin("GET", "/api/v1/presence?tenant=demo&user=alice",
                        api_key=OTHER_API_KEY), 403)
    c.no_event("message", within=0.3)


BAD_BODIES = {
    "not_json": "not json",
    "truncated": "{",
    "array": "[]",
    "empty_object": "{}",
    "tenant_only": '{"tenant":"demo"}',
    "no_data": '{"tenant":"demo","channel":"chat:x"}',
    "channel_not_string": '{"tenant":"demo","channel":5,"data":1}',
    "channel_with_dot": '{"tenant":"demo","channel":"chat:a.b","data":1}',
    "channel_pattern": '{"tenant":"demo","channel":"chat:*","data":1}',
    # 30000 levels stay under the message size cap: the depth is what must be refused.
    "deep_data": '{"tenant":"demo","channel":"chat:x","data":' + "[" * 30000 + "]" * 30000 + "}",
    "deep_body": "[" * 30000 + "]" * 30000,
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_api_publish_bad_body_is_400(edge, case):
    error_of(edge.admin("POST", "/api/v1/publish", BAD_BODIES[case]), 400)
    edge.assert_serving()


def test_api_publish_unknown_tenant(edge):
    r = edge.admin("POST", "/api/v1/publish", {"tenant": "ghost", "channel": "chat:x", "data": 1})
    assert r.status in (403, 404), r


def test_api_publish_unknown_namespace_is_404(edge):
    error_of(edge.admin("POST", "/api/v1/publish",
                        {"tenant": "demo", "channel": "nope:x", "data": 1}), 404)


def test_unknown_route_is_404(edge):
    error_of(edge.admin("GET", "/api/v1/nothing"), 404)
    error_of(edge.admin("POST", "/nothing", {}), 404)


def test_wrong_method(edge):
    r = edge.admin("GET", "/api/v1/publish")
    assert r.status in (404, 405), r


def test_body_over_limit_is_413(edge):
    big = '{"tenant":"demo","channel":"chat:big","data":"' + "x" * (1048576 + 10) + '"}'
    error_of(edge.admin("POST", "/api/v1/publish", big, timeout=15), 413)
    edge.assert_serving()


def test_declared_body_over_limit_is_413_without_sending_it(edge):
    r = harness.http(edge.admin_port, "POST", "/api/v1/publish", None,
                     {"Authorization": f"Bearer {DEMO_API_KEY}",
                      "Content-Length": str(50 * 1024 * 1024),
                      "Content-Type": "application/json"}, timeout=5)
    assert r.status == 413, r


def test_metrics_exposition(edge):
    m = edge.metrics()
    for name in ("wsfleet_connections_active", "wsfleet_connections_total",
                 "wsfleet_disconnects_total", "wsfleet_messages_received_total",
                 "wsfleet_messages_delivered_total", "wsfleet_messages_dropped_total",
                 "wsfleet_e2e_latency_seconds_bucket", "wsfleet_handshake_rejected_total"):
        assert name in m.text, f"{name} missing from /metrics"
    assert "# TYPE wsfleet_e2e_latency_seconds histogram" in m.text


def test_metrics_move(edge_factory):
    e = edge_factory()  # a private edge: nobody else moves its counters
    m0 = e.metrics()
    assert m0.value("wsfleet_connections_active") == 0
    a, b = e.connect("alice"), e.connect("bob")
    m1 = e.metrics()
    assert m1.value("wsfleet_connections_active") == 2
    assert m1.value("wsfleet_connections_total") >= m0.value("wsfleet_connections_total") + 2
    ch = uniq()
    a.ok({"type": "subscribe", "channel": ch})
    b.ok({"type": "subscribe", "channel": ch})
    for i in range(3):
        a.ok({"type": "publish", "channel": ch, "data": i})
    for c in (a, b):
        for _ in range(3):
            c.next_event("message")
    m2 = e.metrics()
    assert m2.value("wsfleet_messages_received_total") >= \
        m0.value("wsfleet_messages_received_total") + 3
    assert m2.value("wsfleet_messages_delivered_total") >= \
        m0.value("wsfleet_messages_delivered_total") + 6
    assert m2.value("wsfleet_e2e_latency_seconds_count") >= \
        m0.value("wsfleet_e2e_latency_seconds_count") + 1
    a.close()
    b.close()
    wait_until(lambda: e.metrics().value("wsfleet_connections_active") == 0, 5,
               what="connections_active back to 0")
    m3 = e.metrics()
    assert m3.value("wsfleet_disconnects_total") >= m0.value("wsfleet_disconnects_total") + 2


def test_metrics_parse_cleanly(edge):
    """Every non-comment line is `name{labels} value`; histogram buckets are cumulative."""
    m = edge.metrics()
    lines = [ln for ln in m.text.splitlines() if ln and not ln.startswith("#")]
    assert len(lines) == len(m.series), "unparseable metric lines"
    buckets = [(lab, v) for n, lab, v in m.series if n == "wsfleet_e2e_latency_seconds_bucket"]
    assert buckets and buckets[-1][0].get("le") == "+Inf"
    series = {}
    for lab, v in buckets:
        key = tuple(sorted((k, x) for k, x in lab.items() if k != "le"))
        series.setdefault(key, []).append(v)
    for vals in series.values():
        assert vals == sorted(vals), f"buckets not cumulative: {vals}"


def test_admin_survives_garbage(edge):
    from wsclient import raw_http
    for req in (b"\x00\x01\x02\r\n\r\n", b"GET\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 100000 + b"\r\n\r\n"):
        try:
            r = raw_http("127.0.0.1", edge.admin_port, req, timeout=5)
            assert r.status >= 400, (req[:20], r)
        except Exception as exc:  # noqa: BLE001 - closing on garbage is fine too
            assert "timed out" not in str(exc), exc
    assert edge.admin("GET", "/healthz", api_key=None).status == 200
