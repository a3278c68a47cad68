"""Presence through the client command and the backend API, kept in step with
connections coming and going."""

from urllib.parse import quote

import harness
from harness import uniq, wait_until


def members(edge, ch, tenant="demo"):
    r = edge.admin("GET", f"/api/v1/presence?tenant={tenant}&channel={quote(ch)}",
                   api_key=harness.OTHER_API_KEY if tenant == "other" else harness.DEMO_API_KEY)
    assert r.status == 200, r
    return {m["user"]: m["connections"] for m in r.json()["members"]}


def user_view(edge, user):
    r = edge.admin("GET", f"/api/v1/presence?tenant=demo&user={quote(user)}")
    assert r.status == 200, r
    body = r.json()
    assert body["user"] == user, body
    return body["connections"]


def test_channel_presence_api(edge, cx):
    ch = uniq()
    u1, u2 = harness.user("p"), harness.user("q")
    a1, a2, b = cx(edge, u1), cx(edge, u1), cx(edge, u2)
    for c in (a1, a2, b):
        c.ok({"type": "subscribe", "channel": ch})
    wait_until(lambda: members(edge, ch) == {u1: 2, u2: 1}, 5, what="api presence")
    a2.close()
    wait_until(lambda: members(edge, ch) == {u1: 1, u2: 1}, 5, what="one connection fewer")
    b.ok({"type": "unsubscribe", "channel": ch})
    wait_until(lambda: members(edge, ch) == {u1: 1}, 5, what="unsubscribed user gone")
    a1.abort()
    wait_until(lambda: members(edge, ch) == {}, 10, what="aborted connection gone")


def test_user_presence_api_lists_sessions_and_devices(edge, cx):
    u = harness.user("dev")
    c1 = cx(edge, u, token=harness.hs256(u, dev="phone-1"))
    c2 = cx(edge, u, token=harness.hs256(u, dev="laptop-2"))

    def sessions():
        conns = user_view(edge, u)
        return {x["session"]: x.get("device") for x in conns}

    want = {c1.welcome["session"]: "phone-1", c2.welcome["session"]: "laptop-2"}
    wait_until(lambda: sessions() == want, 5, what=f"user presence {want}")
    c1.close()
    wait_until(lambda: sessions() == {c2.welcome["session"]: "laptop-2"}, 5,
               what="closed session removed")


def test_user_presence_unknown_user_is_empty(edge):
    assert user_view(edge, harness.user("ghost")) == []


def test_presence_is_per_tenant(edge, cx):
    ch = uniq()
    u = harness.user("t")
    c = cx(edge, u, tenant="other")
    c.ok({"type": "subscribe", "channel": ch})
    wait_until(lambda: members(edge, ch, tenant="other") == {u: 1}, 5, what="other tenant")
    assert members(edge, ch, tenant="demo") == {}


def test_presence_command_matches_api(edge, cx):
    ch = uniq()
    u = harness.user("m")
    c = cx(edge, u)
    c.ok({"type": "subscribe", "channel": ch})
    wait_until(lambda: members(edge, ch) == {u: 1}, 5, what="api view")
    r = c.ok({"type": "presence", "channel": ch})
    assert r["members"] == [{"user": u, "connections": 1}], r


def test_presence_of_unsubscribed_channel(edge, cx):
    c = cx(edge)
    r = c.ok({"type": "presence", "channel": uniq()})
    assert r["members"] == []


def test_presence_api_bad_requests(edge):
    for q in ("?tenant=demo", "?tenant=demo&channel=chat:a.b", "?tenant=demo&channel="):
        r = edge.admin("GET", "/api/v1/presence" + q)
        assert r.status == 400, (q, r)
        assert r.json()["error"]["code"], r
    # Without a tenant the key cannot be matched to one: a refusal either way.
    for q in ("", "?channel=chat:x"):
        r = edge.admin("GET", "/api/v1/presence" + q)
        assert r.status in (400, 403), (q, r)
    # A namespace without presence: refused, or (the contract leaves it open) empty.
    r = edge.admin("GET", "/api/v1/presence?tenant=demo&channel=live:x")
    assert r.status == 400 or (r.status == 200 and r.json()["members"] == []), r
    r = edge.admin("GET", "/api/v1/presence?tenant=demo&channel=nope:x")
    assert r.status in (400, 404), r
