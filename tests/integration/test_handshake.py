"""Handshake: token checks, Origin, subprotocol, size caps and paths, all refused as
plain HTTP before the upgrade, each counted in wsfleet_handshake_rejected_total."""

import base64
import hashlib
import hmac
import json
import subprocess
import time

import pytest

import harness
from harness import AUDIENCE, DEMO_SECRET, hs256, es256
from wsclient import HandshakeRefused, build_handshake, raw_http

REJECTED = "wsfleet_handshake_rejected_total"


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(header, payload, key=None, signature=None):
    """A compact JWS built by hand, so tests can produce what PyJWT refuses to."""
    signing_input = b64url(json.dumps(header)) + "." + b64url(json.dumps(payload))
    if signature is None:
        signature = b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) \
            if key is not None else ""
    return signing_input + "." + signature


def refused(edge, **kw):
    """Attempts a handshake that must be refused; returns the HttpResponse."""
    with pytest.raises(HandshakeRefused) as info:
        c = edge.try_connect(**kw)
        c.close()
    return info.value.response


def assert_error_body(resp, status):
    assert resp.status == status, resp
    body = resp.json()
    err = body.get("error")
    assert isinstance(err, dict), body
    for field in ("code", "reason", "message"):
        assert isinstance(err.get(field), str) and err[field], (field, body)
    return err


def test_welcome_frame_and_subprotocol(edge):
    c = edge.connect("alice")
    try:
        assert c.response.status == 101
        assert c.response.header("sec-websocket-protocol") == "wsfleet.v1"
        w = c.welcome
        assert w["type"] == "welcome"
        assert isinstance(w["session"], str) and w["session"]
        assert w["node"] == "edge-test"
        assert w["region"] == "local"
        assert w["ping_interval_ms"] == 25000
        assert w["resume_window_ms"] == 120000
        assert w["max_message_bytes"] == 65536
        assert isinstance(w["regions"], list)
        c.ping()
    finally:
        c.close()


def test_sessions_are_distinct(edge):
    a, b = edge.connect("alice"), edge.connect("alice")
    try:
        assert a.welcome["session"] != b.welcome["session"]
    finally:
        a.close()
        b.close()


def test_token_in_query_parameter(edge):
    c = edge.try_connect(query={"access_token": hs256("alice")})
    try:
        c.ping()
    finally:
        c.close()


def test_es256_token_accepted(edge):
    c = edge.try_connect(token=es256("alice"))
    try:
        c.ping()
    finally:
        c.close()


def test_second_tenant_token_accepted(edge):
    c = edge.connect("zed", tenant="other")
    try:
        c.ping()
    finally:
        c.close()


def test_no_token_is_401(edge):
    before = edge.metrics().value(REJECTED, reason="token_missing")
    err = assert_error_body(refused(edge), 401)
    assert err["reason"] == "token_missing"
    assert edge.metrics().value(REJECTED, reason="token_missing") >= before + 1
    edge.assert_serving()


def _alg_none():
    return hand_made_token({"alg": "none", "typ": "JWT", "kid": "k1"},
                           harness.claims("alice"))


def _alg_confusion():
    # The ES256 public key used as an HMAC secret: must never verify.
    key = harness.es_key().public_pem.encode()
    return hand_made_token({"alg": "HS256", "typ": "JWT", "kid": "k2"},
                           harness.claims("alice"), key=key)


def _without(claim):
    c = harness.claims("alice")
    del c[claim]
    return harness.jwt.encode(c, DEMO_SECRET, algorithm="HS256", headers={"kid": "k1"})


BAD_TOKENS = {
    "expired": (lambda: hs256("alice", exp_in=-3600), "token_expired"),
    "bad_signature": (lambda: hs256("alice", secret="x" * 40), "token_bad_signature"),
    "alg_none": (_alg_none, "token_alg_refused"),
    "alg_hs512": (lambda: harness.jwt.encode(harness.claims("alice"), DEMO_SECRET,
                                             algorithm="HS512", headers={"kid": "k1"}),
                  "token_alg_refused"),
    "unknown_kid": (lambda: hs256("alice", kid="nope"), "token_unknown_kid"),
    "wrong_audience": (lambda: hs256("alice", aud="someone-else"), "token_bad_audience"),
    "unknown_tenant": (lambda: hs256("alice", tenant="ghost", secret=DEMO_SECRET),
                       "token_unknown_tenant"),
    "es256_wrong_key": (lambda: es256("alice", key=harness.EsKey()), "token_bad_signature"),
    "alg_confusion": (_alg_confusion, None),
    "truncated_signature": (lambda: hs256("alice")[:-10], None),
    "stripped_signature": (lambda: hs256("alice").rsplit(".", 1)[0] + ".", None),
    "not_yet_valid": (lambda: hs256("alice", nbf=int(time.time()) + 3600), None),
    "garbage": (lambda: "not.a.jwt!", None),
    "bad_base64": (lambda: "e30=.e30=.e30=", None),
    "other_tenant_secret": (lambda: hs256("alice", tenant="demo", kid="k1",
                                          secret=harness.OTHER_SECRET), "token_bad_signature"),
    "missing_sub": (lambda: _without("sub"), None),
    "missing_tnt": (lambda: _without("tnt"), None),
    "missing_exp": (lambda: hs256("alice", exp=None), None),
}


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
@pytest.mark.parametrize("where", ["header", "query"])
def test_bad_token_is_401(edge, case, where):
    make, reason = BAD_TOKENS[case]
    token = make()
    before_all = edge.metrics().value(REJECTED)
    before = edge.metrics().value(REJECTED, reason=reason) if reason else 0
    if where == "header":
        resp = refused(edge, token=token)
    else:
        resp = refused(edge, query={"access_token": token})
    err = assert_error_body(resp, 401)
    if reason:
        # Tenant, key and signature failures look alike from outside (no enumeration of
        # tenants or keys); the metric keeps the precise reason.
        hidden = ("token_unknown_tenant", "token_unknown_kid", "token_bad_signature")
        assert err["reason"] == ("token_invalid" if reason in hidden else reason), err
    assert token not in resp.body.decode(), "the refusal must not echo the token"
    m = edge.metrics()
    assert m.value(REJECTED) >= before_all + 1
    if reason:
        assert m.value(REJECTED, reason=reason) >= before + 1, m.text
    edge.assert_serving()


def test_tokens_never_logged(edge):
    token = hs256("alice", secret="y" * 40)
    refused(edge, token=token)
    good = hs256("logcheck")
    c = edge.try_connect(token=good)
    c.close()
    sig_bad = token.rsplit(".", 1)[1]
    sig_good = good.rsplit(".", 1)[1]
    log = edge.log_text()
    assert sig_bad not in log and sig_good not in log, "a token signature is in the log"


def test_oversized_token_refused(edge):
    token = hs256("alice", pad="p" * 5000)  # max_token_bytes = 4096
    resp = refused(edge, token=token)
    assert resp.status in (401, 413, 431), resp
    edge.assert_serving()


def test_origin_not_allowed_is_403(edge):
    before = edge.metrics().value(REJECTED, reason="origin")
    err = assert_error_body(refused(edge, token=hs256("alice"), origin="https://evil.example"),
                            403)
    assert err["reason"] == "origin"
    assert edge.metrics().value(REJECTED, reason="origin") >= before + 1
    edge.assert_serving()


def test_allowed_origin_accepted(edge):
    c = edge.connect("alice", origin="https://app.example.com")
    c.ping()
    c.close()


@pytest.mark.parametrize("protocols", [None, ("chat",), ("wsfleet.v2",)])
def test_subprotocol_required(edge, protocols):
    before = edge.metrics().value(REJECTED, reason="subprotocol")
    err = assert_error_body(refused(edge, token=hs256("alice"), subprotocols=protocols), 400)
    assert err["reason"] == "subprotocol"
    assert edge.metrics().value(REJECTED, reason="subprotocol") >= before + 1
    edge.assert_serving()


def test_subprotocol_chosen_among_several(edge):
    c = edge.connect("alice", subprotocols=("chat", "wsfleet.v1"))
    try:
        assert c.response.header("sec-websocket-protocol") == "wsfleet.v1"
        c.ping()
    finally:
        c.close()


def test_header_block_too_large_is_431(edge):
    before = edge.metrics().value(REJECTED, reason="header_too_large")
    resp = refused(edge, token=hs256("alice"), headers=[("X-Pad", "a" * 9000)])
    assert resp.status == 431, resp
    assert edge.metrics().value(REJECTED, reason="header_too_large") >= before + 1
    edge.assert_serving()


def test_many_headers_too_large_is_431(edge):
    hdrs = [(f"X-Pad-{i}", "b" * 100) for i in range(100)]
    resp = refused(edge, token=hs256("alice"), headers=hdrs)
    assert resp.status == 431, resp
    edge.assert_serving()


def test_wrong_path_is_404(edge):
    resp = refused(edge, token=hs256("alice"), path="/nope")
    assert resp.status == 404, resp
    edge.assert_serving()


@pytest.mark.parametrize("case", ["no_key", "bad_key", "no_upgrade", "no_connection",
                                  "post", "version_8"])
def test_malformed_upgrade_refused(edge, case):
    token = hs256("alice")
    omit, headers, key = (), [], None
    if case == "no_key":
        omit = ("Sec-WebSocket-Key",)
    elif case == "bad_key":
        key = "short"
    elif case == "no_upgrade":
        omit = ("Upgrade",)
    elif case == "no_connection":
        omit = ("Connection",)
    elif case == "version_8":
        omit = ("Sec-WebSocket-Version",)
        headers = [("Sec-WebSocket-Version", "8")]
    req, _ = build_handshake("127.0.0.1", edge.ws_port, token=token, headers=headers,
                             omit=omit, key=key)
    if case == "post":
        req = req.replace(b"GET ", b"POST ", 1)
    resp = raw_http("127.0.0.1", edge.ws_port, req)
    assert resp.status != 101, resp
    if case == "version_8":
        assert resp.status == 426, resp
    else:
        assert 400 <= resp.status < 500, resp
    edge.assert_serving()


def test_wsfleetctl_token_mint(edge):
    ctl = harness.ctl_binary()
    out = subprocess.run([str(ctl), "token", "mint", "--config", str(edge.conf_path),
                          "--tenant", "demo", "--user", "alice"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.count(".") == 2, out.stdout
    c = edge.try_connect(token=token)
    try:
        c.ok({"type": "subscribe", "channel": "chat:minted"})
        c.ok({"type": "publish", "channel": "chat:minted", "data": {"x": 1}})
        msg = c.next_event("message")
        assert msg["from"] == "alice"
    finally:
        c.close()


def test_refusals_do_not_leak_connections(edge):
    """Dozens of refusals in a row, then the active gauge is back where it was."""
    base = edge.metrics().value("wsfleet_connections_active")
    for i in range(30):
        refused(edge, token=hs256("alice", exp_in=-3600) if i % 2 else None)
    harness.wait_until(lambda: edge.metrics().value("wsfleet_connections_active") == base,
                       5, what="connections_active back to its base")
    edge.assert_serving()


def test_bad_query_token_never_admits_another_user(edge):
    """A bad token over the query string with a valid one in the header: the header is
    authoritative or both are checked, but a bad token never lets an unknown user in."""
    c = None
    try:
        c = edge.try_connect(token=hs256("alice"),
                             query={"access_token": hs256("mallory", secret="z" * 40)})
    except HandshakeRefused as e:
        assert e.response.status == 401
        return
    try:
        c.ok({"type": "subscribe", "channel": "chat:who"})
        c.ok({"type": "publish", "channel": "chat:who", "data": 1})
        assert c.next_event("message")["from"] == "alice"
    finally:
        c.close()


def test_audience_claim_as_array(edge):
    c = edge.try_connect(token=hs256("alice", aud=["x", AUDIENCE]))
    c.ping()
    c.close()


def test_websocket_client_library_interop(edge):
    """A third-party client (python websockets) completes the handshake too."""
    import asyncio
    import websockets

    async def run():
        async with websockets.connect(
                f"ws://127.0.0.1:{edge.ws_port}/ws", subprotocols=["wsfleet.v1"],
                extra_headers={"Authorization": f"Bearer {hs256('alice')}"},
                open_timeout=5) as ws:
            welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await ws.send(json.dumps({"type": "ping", "id": 9}))
            pong = json.loads(await asyncio.wait_for(ws.recv(), 5))
            return welcome, pong

    welcome, pong = asyncio.run(run())
    assert welcome["type"] == "welcome"
    assert pong == {"type": "pong", "id": 9}


def test_plain_http_get_on_ws_port(edge):
    req = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{edge.ws_port}\r\n"
           f"Connection: close\r\n\r\n").encode()
    resp = raw_http("127.0.0.1", edge.ws_port, req)
    assert 400 <= resp.status < 500, resp
    edge.assert_serving()
