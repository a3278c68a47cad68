"""Client commands over a real connection: subscribe/publish/unsubscribe, send, ping,
refresh, ids, and every refusal a well-formed connection can get."""

import json
import time

import pytest

import harness
from harness import hs256, uniq

UINT64_MAX = 18446744073709551615


def now_ms():
    return int(time.time() * 1000)


def assert_error(reply, code, cid="any"):
    assert reply.get("type") == "reply", reply
    assert reply.get("ok") is False, reply
    err = reply.get("error")
    assert isinstance(err, dict) and err.get("code") == code, reply
    assert isinstance(err.get("message"), str), reply
    if cid != "any":
        if cid is None:
            assert "id" not in reply, reply
        else:
            assert reply.get("id") == cid, reply


# ------------------------------------------------------------------ subscribe / publish
def test_subscribe_reply_shape(edge, cx):
    c = cx(edge)
    r = c.ok({"type": "subscribe", "channel": uniq()})
    assert r["type"] == "reply"
    assert isinstance(r["epoch"], str)
    assert isinstance(r["offset"], int) and r["offset"] >= 0
    assert isinstance(r["recovered"], bool)


def test_publish_fanout_and_offsets(edge, cx):
    ch = uniq()
    alice, bob = cx(edge, "alice"), cx(edge, "bob")
    sub_a = alice.ok({"type": "subscribe", "channel": ch})
    sub_b = bob.ok({"type": "subscribe", "channel": ch})
    assert sub_a["epoch"] == sub_b["epoch"]
    offsets = []
    for i in range(5):
        t0 = now_ms()
        r = bob.ok({"type": "publish", "channel": ch, "data": {"n": i, "s": "é☃"}})
        assert isinstance(r["offset"], int)
        offsets.append((r["offset"], i, t0))
    assert [o for o, _, _ in offsets] == sorted({o for o, _, _ in offsets}), \
        f"offsets not strictly increasing: {offsets}"
    for client in (alice, bob):  # the publisher is subscribed too
        for off, i, t0 in offsets:
            m = client.next_event("message")
            assert m["channel"] == ch
            assert m["epoch"] == sub_a["epoch"] and m["epoch"] != ""
            assert m["offset"] == off
            assert m["from"] == "bob"
            assert m["data"] == {"n": i, "s": "é☃"}
            assert isinstance(m["ts"], int) and abs(m["ts"] - t0) < 60000


def test_offsets_increase_across_publishers(edge, cx):
    ch = uniq()
    a, b = cx(edge, "alice"), cx(edge, "bob")
    seen = []
    for i in range(6):
        pub = a if i % 2 else b
        seen.append(pub.ok({"type": "publish", "channel": ch, "data": i})["offset"])
    assert all(x < y for x, y in zip(seen, seen[1:])), seen


def test_from_is_stamped_by_server(edge, cx):
    ch = uniq()
    alice = cx(edge, "alice")
    alice.ok({"type": "subscribe", "channel": ch})
    alice.ok({"type": "publish", "channel": ch, "data": "hi", "from": "mallory",
              "sub": "mallory", "user": "mallory", "tenant": "other", "tnt": "other"})
    m = alice.next_event("message")
    assert m["from"] == "alice"
    assert m["data"] == "hi"


@pytest.mark.parametrize("data", [None, 0, -1.5, "s", [], {}, [1, [2, {"a": None}]], True])
def test_any_json_data_round_trips(edge, cx, data):
    ch = uniq()
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    c.ok({"type": "publish", "channel": ch, "data": data})
    assert c.next_event("message")["data"] == data


def test_publish_without_data_is_bad_request(edge, cx):
    c = cx(edge)
    assert_error(c.request({"type": "publish", "channel": uniq(), "id": 3}), "bad_request", 3)
    c.ping()


def test_live_namespace_has_no_offsets(edge, cx):
    ch = uniq("live")
    a, b = cx(edge, "alice"), cx(edge, "bob")
    a.ok({"type": "subscribe", "channel": ch})
    r = b.ok({"type": "publish", "channel": ch, "data": {"v": 1}})
    assert r["offset"] == 0
    m = a.next_event("message")
    assert m["channel"] == ch and m["offset"] == 0 and m["epoch"] == ""
    assert m["from"] == "bob" and m["data"] == {"v": 1}


def test_unsubscribe_stops_delivery(edge, cx):
    ch = uniq()
    a, control, pub = cx(edge, "alice"), cx(edge, "carol"), cx(edge, "bob")
    a.ok({"type": "subscribe", "channel": ch})
    control.ok({"type": "subscribe", "channel": ch})
    pub.ok({"type": "publish", "channel": ch, "data": 1})
    assert a.next_event("message")["data"] == 1
    assert control.next_event("message")["data"] == 1
    assert a.ok({"type": "unsubscribe", "channel": ch}) is not None
    pub.ok({"type": "publish", "channel": ch, "data": 2})
    assert control.next_event("message")["data"] == 2
    a.no_event("message", within=0.5)
    a.ping()


def test_unsubscribe_not_subscribed_keeps_connection(edge, cx):
    c = cx(edge)
    r = c.request({"type": "unsubscribe", "channel": uniq()})
    assert r["type"] == "reply"  # ok or an error; either way one reply and alive
    c.ping()


def test_duplicate_subscribe_delivers_once(edge, cx):
    ch = uniq()
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": ch})
    c.request({"type": "subscribe", "channel": ch})
    c.ok({"type": "publish", "channel": ch, "data": "once"})
    assert c.next_event("message")["data"] == "once"
    c.no_event("message", within=0.5)


def test_max_channels_per_connection(edge_factory, cx):
    e = edge_factory({"websocket": {"max_channels_per_connection": 3}})
    c = cx(e)
    for i in range(3):
        c.ok({"type": "subscribe", "channel": f"chat:cap{i}"})
    r = c.request({"type": "subscribe", "channel": "chat:cap3"})
    assert r["ok"] is False, r
    c.ping()


# ------------------------------------------------------------------------------- send
def test_send_direct_to_every_connection(edge, cx):
    u = harness.user("bob")
    b1, b2, alice = cx(edge, u), cx(edge, u), cx(edge, "alice")
    r = alice.ok({"type": "send", "user": u, "data": {"hello": 1}, "from": "mallory"})
    assert r["delivered"] == "online"
    for b in (b1, b2):
        d = b.next_event("direct")
        assert d["from"] == "alice"
        assert d["data"] == {"hello": 1}
        assert isinstance(d["ts"], int)
    alice.no_event("direct", within=0.3)


def test_send_to_offline_user_is_dropped(edge, cx):
    alice = cx(edge, "alice")
    r = alice.ok({"type": "send", "user": harness.user("nobody"), "data": 1})
    assert r["delivered"] == "dropped"


def test_send_stays_in_tenant(edge, cx):
    u = harness.user("twin")
    other = cx(edge, u, tenant="other")
    alice = cx(edge, "alice")
    r = alice.ok({"type": "send", "user": u, "data": 1})
    assert r["delivered"] == "dropped"
    other.no_event("direct", within=0.3)


# --------------------------------------------------------------------------- presence
def members_of(reply):
    return {m["user"]: m["connections"] for m in reply["members"]}


def test_presence_counts_connections(edge, cx):
    ch = uniq()
    u1, u2 = harness.user("pa"), harness.user("pb")
    a1, a2, b = cx(edge, u1), cx(edge, u1), cx(edge, u2)
    for c in (a1, a2, b):
        c.ok({"type": "subscribe", "channel": ch})
    want = {u1: 2, u2: 1}

    def settled():
        got = members_of(b.ok({"type": "presence", "channel": ch}))
        return got if got == want else None

    harness.wait_until(settled, 5, interval=0.1, what=f"presence == {want}")


def test_presence_on_live_is_bad_request(edge, cx):
    c = cx(edge)
    assert_error(c.request({"type": "presence", "channel": uniq("live"), "id": 5}),
                 "bad_request", 5)


def test_join_and_leave_events(edge, cx):
    ch = uniq()
    bob = cx(edge, harness.user("jb"))
    bob.ok({"type": "subscribe", "channel": ch})
    u = harness.user("ja")
    first = cx(edge, u)
    first.ok({"type": "subscribe", "channel": ch})
    ev = bob.next_event("join")
    assert ev == {"type": "join", "channel": ch, "user": u}
    second = cx(edge, u)
    second.ok({"type": "subscribe", "channel": ch})
    bob.no_event(pred=lambda f: f.get("type") in ("join", "leave"), within=0.5)
    second.close()
    bob.no_event(pred=lambda f: f.get("type") in ("join", "leave"), within=0.5)
    first.ok({"type": "unsubscribe", "channel": ch})
    ev = bob.next_event("leave")
    assert ev == {"type": "leave", "channel": ch, "user": u}


def test_leave_on_disconnect(edge, cx):
    ch = uniq()
    bob = cx(edge, harness.user("lb"))
    bob.ok({"type": "subscribe", "channel": ch})
    u = harness.user("la")
    a = edge.connect(u)
    a.ok({"type": "subscribe", "channel": ch})
    assert bob.next_event("join")["user"] == u
    a.abort()  # no close frame: the TCP connection just goes
    ev = bob.next_event("leave", timeout=10)
    assert ev == {"type": "leave", "channel": ch, "user": u}


# ------------------------------------------------------------------------- ping / ids
def test_ping_pong(edge, cx):
    c = cx(edge)
    assert c.request({"type": "ping", "id": 42}) == {"type": "pong", "id": 42}


@pytest.mark.parametrize("cid", [0, 1, 2 ** 53 + 1, UINT64_MAX])
def test_ids_echoed_exactly(edge, cx, cid):
    c = cx(edge)
    c.send_text('{"type":"ping","id":%d}' % cid)
    pong = c.recv_until(lambda f: f.get("type") == "pong")
    assert pong["id"] == cid
    c.send_text('{"type":"subscribe","channel":"%s","id":%d}' % (uniq(), cid))
    r = c.recv_until(lambda f: f.get("type") == "reply")
    assert r["id"] == cid and r["ok"] is True


@pytest.mark.parametrize("raw_id", ["-1", "1.5", "18446744073709551616", "\"7\"",
                                    "99999999999999999999999999"])
def test_bad_ids_are_bad_request_without_id(edge, cx, raw_id):
    c = cx(edge)
    reply = c.request_raw('{"type":"ping","id":%s}' % raw_id)
    assert_error(reply, "bad_request", None)
    c.ping()


# ----------------------------------------------------------------------- bad commands
@pytest.mark.parametrize("text", [
    "not json", "{", "[]", "42", "\"str\"", "null", '{"type":1}', "{}",
    '{"type":"subscribe"}', '{"type":"subscribe","channel":5}',
    '{"type":"subscribe","channel":"chat:x","since":"yesterday"}',
    '{"type":"send","data":1}', '{"type":"refresh"}', '{"type":"ping"} trailing',
    '{"type":"ping","type":"subscribe"', "\ufeff{}",
])
def test_malformed_command_is_bad_request_and_connection_survives(edge, cx, text):
    c = cx(edge)
    reply = c.request_raw(text)
    assert_error(reply, "bad_request")
    c.ping()


def test_unknown_command(edge, cx):
    c = cx(edge)
    assert_error(c.request({"type": "teleport", "id": 9}), "bad_request", 9)
    c.ping()


BAD_CHANNELS = ["chat:a.b", "chat:*", "chat:>", "chat:a b", "chat:a\r\nb", "chat:a\u0000b",
                "nochannel", "", "chat:", ":x", "chat::x", "chat:" + "x" * 65,
                "chat:" + ":".join(["abcdefgh"] * 30), "chat:é", "chat:a/b", "chat:a\tb",
                "chat:*:x"]


@pytest.mark.parametrize("channel", BAD_CHANNELS, ids=[repr(c)[:30] for c in BAD_CHANNELS])
@pytest.mark.parametrize("command", ["subscribe", "publish", "presence", "unsubscribe"])
def test_bad_channel_names(edge, cx, channel, command):
    c = cx(edge)
    cmd = {"type": command, "channel": channel, "id": 11}
    if command == "publish":
        cmd["data"] = 1
    assert_error(c.request(cmd), "bad_request", 11)
    c.ping()


def test_longest_valid_channel_accepted(edge, cx):
    # 200 bytes in all, every segment <= 64 characters.
    name = "chat:" + "a" * 64 + ":" + "b" * 64 + ":" + "c" * 62 + ":" + "dd"
    assert len(name) == 200
    c = cx(edge)
    c.ok({"type": "subscribe", "channel": name})
    c.ok({"type": "subscribe", "channel": "chat:A-Z_0-9@=+,x:team-7:room-42"})


def test_unknown_namespace_is_not_found(edge, cx):
    c = cx(edge)
    assert_error(c.request({"type": "subscribe", "channel": "nope:x", "id": 4}), "not_found", 4)
    assert_error(c.request({"type": "publish", "channel": "nope:x", "data": 1, "id": 5}),
                 "not_found", 5)
    c.ping()


# ------------------------------------------------------------------- token permissions
def test_token_subs_restrict_subscribe(edge, cx):
    c = cx(edge, token=hs256("alice", subs=["chat:allowed"]))
    c.ok({"type": "subscribe", "channel": "chat:allowed"})
    assert_error(c.request({"type": "subscribe", "channel": "chat:other", "id": 2}),
                 "forbidden", 2)
    c.ping()


def test_token_sub_patterns(edge, cx):
    c = cx(edge, token=hs256("alice", subs=["chat:team-1:*", "live:>"]))
    c.ok({"type": "subscribe", "channel": "chat:team-1:room"})
    c.ok({"type": "subscribe", "channel": "live:a:b:c"})
    assert_error(c.request({"type": "subscribe", "channel": "chat:team-1:room:deeper"}),
                 "forbidden")
    assert_error(c.request({"type": "subscribe", "channel": "chat:team-2:room"}), "forbidden")


def test_token_pubs_restrict_publish(edge, cx):
    ch_ok, ch_no = uniq(), uniq()
    c = cx(edge, token=hs256("alice", pubs=[ch_ok]))
    c.ok({"type": "publish", "channel": ch_ok, "data": 1})
    assert_error(c.request({"type": "publish", "channel": ch_no, "data": 1, "id": 3}),
                 "forbidden", 3)
    # subscribing is still governed by subs (tenant default ">")
    c.ok({"type": "subscribe", "channel": ch_no})


def test_empty_subs_forbid_everything(edge, cx):
    c = cx(edge, token=hs256("alice", subs=[], pubs=[]))
    assert_error(c.request({"type": "subscribe", "channel": uniq()}), "forbidden")
    assert_error(c.request({"type": "publish", "channel": uniq(), "data": 1}), "forbidden")
    c.ping()


# --------------------------------------------------------------------- tenant isolation
def test_tenants_do_not_share_channels(edge, cx):
    ch = uniq()
    demo_sub = cx(edge, "alice", tenant="demo")
    other_sub = cx(edge, "alice", tenant="other")
    other_pub = cx(edge, "eve", tenant="other")
    demo_sub.ok({"type": "subscribe", "channel": ch})
    other_sub.ok({"type": "subscribe", "channel": ch})
    other_pub.ok({"type": "publish", "channel": ch, "data": "other-only", "tenant": "demo"})
    assert other_sub.next_event("message")["data"] == "other-only"
    demo_sub.no_event("message", within=0.5)
    demo_sub.ok({"type": "publish", "channel": ch, "data": "demo-only", "tenant": "other"})
    assert demo_sub.next_event("message")["data"] == "demo-only"
    other_sub.no_event("message", within=0.5)


def test_tenant_field_in_subscribe_is_ignored(edge, cx):
    ch = uniq()
    spy = cx(edge, "eve", tenant="other")
    spy.ok({"type": "subscribe", "channel": ch, "tenant": "demo", "tnt": "demo"})
    pub = cx(edge, "alice")
    pub.ok({"type": "publish", "channel": ch, "data": "secret"})
    spy.no_event("message", within=0.5)


# --------------------------------------------------------------------------- hostile JSON
@pytest.fixture(scope="module")
def big_edge(tmp_path_factory):
    e = harness.Edge(tmp_path_factory.mktemp("big"),
                     {"websocket": {"max_message_bytes": 1048576}})
    e.start()
    yield e
    e.stop()
    assert not e.problems, "\n".join(e.problems) + "\n" + e.log_tail()


@pytest.mark.parametrize("nest", ["[", "{\"a\":"])
def test_deeply_nested_json(big_edge, cx, nest):
    c = cx(big_edge)
    closer = "]" if nest == "[" else "}"
    deep = nest * 100000 + "1" + closer * 100000
    reply = c.request_raw('{"type":"publish","channel":"chat:deep","id":8,"data":%s}' % deep,
                          timeout=10)
    assert_error(reply, "bad_request")
    c.ping()
    reply = c.request_raw("[" * 100000 + "]" * 100000, timeout=10)
    assert_error(reply, "bad_request")
    c.ping()
    big_edge.assert_serving()


def test_many_keys(big_edge, cx):
    c = cx(big_edge)
    body = ",".join(f'"k{i}":{i}' for i in range(60000))
    reply = c.request_raw('{"type":"publish","channel":"chat:keys","id":1,"data":{%s}}' % body,
                          timeout=10)
    assert reply["type"] == "reply"  # accepted or refused, but answered
    c.ping()


@pytest.mark.parametrize("data", ["1e999999", "123456789012345678901234567890123456789",
                                  "-0", "\"\\ud800\"", "\"\\udc00x\"", "\"\\u0000\""])
def test_odd_values_answered(edge, cx, data):
    c = cx(edge)
    reply = c.request_raw('{"type":"publish","channel":"%s","id":1,"data":%s}' % (uniq(), data))
    assert reply["type"] == "reply" and reply.get("id") in (1, None), reply
    c.ping()
    edge.assert_serving()


def test_duplicate_keys_answered(edge, cx):
    c = cx(edge)
    reply = c.request_raw('{"type":"ping","id":1,"id":2}')
    assert reply["type"] in ("pong", "reply")
    c.ping()


# ---------------------------------------------------------------------------- refresh
def test_refresh_with_valid_token(edge, cx):
    c = cx(edge, "alice")
    new_exp = int(time.time()) + 7200
    r = c.ok({"type": "refresh", "token": hs256("alice", exp_in=7200)})
    assert abs(r["expires_at"] - new_exp * 1000) <= 2000, r


def test_refresh_for_another_user_is_forbidden(edge, cx):
    c = cx(edge, "alice")
    assert_error(c.request({"type": "refresh", "token": hs256("mallory"), "id": 6}),
                 "forbidden", 6)
    c.ping()


def test_refresh_with_invalid_token(edge, cx):
    c = cx(edge, "alice")
    assert_error(c.request({"type": "refresh", "token": hs256("alice", secret="q" * 40)}),
                 "unauthorized")
    assert_error(c.request({"type": "refresh", "token": hs256("alice", exp_in=-3600)}),
                 "unauthorized")
    c.ping()


def test_refresh_cannot_switch_tenant(edge, cx):
    c = cx(edge, "alice")
    r = c.request({"type": "refresh", "token": harness.token_for("alice", tenant="other")})
    assert r["ok"] is False and r["error"]["code"] in ("forbidden", "unauthorized"), r


def test_frames_are_json_objects(edge, cx):
    """Everything the server sends parses as one JSON object with a type."""
    c = cx(edge)
    ch = uniq()
    c.ok({"type": "subscribe", "channel": ch})
    c.ok({"type": "publish", "channel": ch, "data": json.loads('{"nested":{"k":[1,2]}}')})
    m = c.next_event("message")
    assert set(m) >= {"type", "channel", "epoch", "offset", "from", "data", "ts"}
