"""Bad input that the other files do not reach (see the coverage table in README.md):
permessage-deflate offers and compressed frames, floods measured against the edge's
resident memory, one huge header, a peer that vanishes without a FIN, token claims at
the leeway edges, issuer and base64url abuse, tokens kept out of a debug log, and a
million JSON keys. Each: a clear refusal or close code, another client still served,
and memory flat where the input could make it grow."""

import base64
import hashlib
import hmac
import shutil
import socket
import subprocess
import time
import zlib

import pytest

from harness import DEMO_SECRET, hs256, token_for, uniq, wait_until
from wsclient import (OP_CONT, OP_PING, OP_TEXT, ConnectionClosed, HandshakeRefused, build_handshake,
                      encode_frame, raw_http)

# Resident-memory growth tolerated across a flood, after a warm-up round of the same
# flood. Each flood below pushes several times this much input at the edge, so buffering
# it (or leaking per frame) shows, while allocator noise does not.
RSS_SLACK_KB = 8 * 1024


def rss_kb(edge):
    """VmRSS of the edge process (one worker: the process serving the sockets)."""
    with open(f"/proc/{edge.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def assert_memory_flat(edge, flood, rounds=3):
    """Runs flood() once to warm the allocator, then `rounds` more times; the edge's RSS
    must not grow by more than RSS_SLACK_KB over those rounds."""
    flood()
    edge.assert_serving()
    before = rss_kb(edge)
    for _ in range(rounds):
        flood()
    edge.assert_serving()
    after = rss_kb(edge)
    if sanitized(edge):
        return  # AddressSanitizer keeps freed memory in quarantine: RSS says nothing
    assert after - before < RSS_SLACK_KB, \
        f"edge RSS grew from {before} kB to {after} kB over {rounds} floods"


def sanitized(edge):
    """True for an edge built with -DWSFLEET_SANITIZE=address (libasan is mapped)."""
    with open(f"/proc/{edge.proc.pid}/maps") as f:
        return "libasan" in f.read()


def rejected(edge, reason):
    return edge.metrics().value("wsfleet_handshake_rejected_total", reason=reason)


# --------------------------------------------------------------------- permessage-deflate
DEFLATE_OFFERS = [
    "permessage-deflate",
    "permessage-deflate; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=99",
    "permessage-deflate; server_max_window_bits=0",
    "permessage-deflate; server_max_window_bits=abc",
    "permessage-deflate; server_no_context_takeover=yes",
    "permessage-deflate; client_max_window_bits=10; client_max_window_bits=11",
    "permessage-deflate; bogus_param",
    "permessage-deflate;;;, ,;=,",
    "x-webkit-deflate-frame",
]


def _deflate_client(edge, offer):
    return edge.connect("deflater", headers=[("Sec-WebSocket-Extensions", offer)])


@pytest.mark.parametrize("offer", DEFLATE_OFFERS, ids=[o[:40] for o in DEFLATE_OFFERS])
def test_bad_permessage_deflate_offer_is_not_negotiated(edge, offer):
    # The edge does not compress (docs/PROTOCOL.md): any offer, well-formed or not, is
    # declined by leaving Sec-WebSocket-Extensions out of the 101, never by a garbled
    # answer or a crash.
    c = _deflate_client(edge, offer)
    try:
        assert c.response.status == 101
        assert c.response.header("sec-websocket-extensions") is None, c.response.headers
        c.ping()
    finally:
        c.close()
    edge.assert_serving()


def _upgrade(edge, protocol_list, extension_list):
    """A handshake with exactly these two header values (no defaults added)."""
    headers = [("Sec-WebSocket-Protocol", protocol_list)]
    if extension_list is not None:
        headers.append(("Sec-WebSocket-Extensions", extension_list))
    req, _ = build_handshake("127.0.0.1", edge.ws_port, token=hs256("alice"), subprotocols=(),
                             headers=headers)
    return raw_http("127.0.0.1", edge.ws_port, req)


# libwebsockets 4.1.6 hangs up without a word on longer lists; the edge refuses them
# with a 400 first (edge/ws_glue.cc). The lengths at the limit must still work, or the
# edge's constants no longer match the library.
@pytest.mark.parametrize("length,status", [(126, 101), (127, 400), (4000, 400)])
def test_long_subprotocol_list(edge, length, status):
    protocols = "wsfleet.v1," + "x" * (length - len("wsfleet.v1,"))
    before = rejected(edge, "subprotocol")
    resp = _upgrade(edge, protocols, None)
    assert resp.status == status, resp
    if status == 400:
        assert resp.json()["error"]["reason"] == "subprotocol", resp
        assert rejected(edge, "subprotocol") >= before + 1
    edge.assert_serving()


@pytest.mark.parametrize("length,status", [(254, 101), (255, 400), (6000, 400)])
def test_long_extension_list(edge, length, status):
    offer = "permessage-deflate; client_max_window_bits; x="
    offer += "9" * (length - len(offer))
    before = rejected(edge, "extensions")
    resp = _upgrade(edge, "wsfleet.v1", offer)
    assert resp.status == status, resp
    if status == 101:
        assert resp.header("sec-websocket-extensions") is None, resp.headers
    else:
        assert resp.json()["error"]["reason"] == "extensions", resp
        assert rejected(edge, "extensions") >= before + 1
    edge.assert_serving()


def _bomb(inflated_bytes):
    """A raw-deflate stream (RFC 7692 framing: no zlib header, no 00 00 ff ff tail) of a
    JSON text padded with zeros: tiny on the wire, `inflated_bytes` once inflated."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = b'{"type":"ping","id":1,"pad":"'
    out = z.compress(head)
    chunk = b"0" * (1 << 20)
    left = inflated_bytes
    while left > 0:
        out += z.compress(chunk[:min(left, len(chunk))])
        left -= len(chunk)
    out += z.compress(b'"}') + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


@pytest.mark.parametrize("inflated_mb,codes", [
    # 16 times max_message_bytes once inflated, 1 kB on the wire. libwebsockets reads
    # 528 bytes at a time (the edge's receive buffer) and drops the connection without
    # its close frame when more of a refused frame arrives before the frame is out
    # (docs/PROTOCOL.md): closed either way, nothing inflated.
    (1, (1002, None)),
    # 64 MB from 64 kB: libwebsockets refuses at the frame header, and closing with most
    # of the frame still unread makes the kernel reset the connection, which can overtake
    # the close frame (docs/PROTOCOL.md): closed either way, nothing inflated.
    (64, (1002, None)),
])
def test_deflate_bomb_is_refused_without_inflating(edge, inflated_mb, codes):
    bomb = _bomb(inflated_mb * 1024 * 1024)
    assert len(bomb) < 65536 + 1024, len(bomb)

    def flood():
        for _ in range(5):
            c = _deflate_client(edge, "permessage-deflate; client_max_window_bits")
            # Not negotiated: a compressed (RSV1) frame is a protocol error. If the edge
            # ever negotiates deflate, the inflated size must be refused as too big.
            expected = (1009,) if c.response.header("sec-websocket-extensions") else codes
            try:
                c.send_frame(OP_TEXT, bomb, rsv=4)
            except OSError:
                pass
            code = c.expect_close(10)
            c.abort()
            assert code in expected, f"close code {code}, expected {expected}"

    assert_memory_flat(edge, flood, rounds=2)


def test_compressed_continuation_of_plain_message_closes_1002(edge, cx):
    c = cx(edge)
    c.send_frame(OP_TEXT, b'{"type":"ping",', fin=False)
    c.send_frame(OP_CONT, _bomb(1024), fin=True, rsv=4)
    assert c.expect_close() == 1002
    edge.assert_serving()


# ------------------------------------------------------------------------------- floods
def test_ping_flood_is_answered_and_memory_flat(edge):
    """100k maximal pings from a client that reads nothing while it sends: the edge may
    keep only the latest pong pending, never a queue of them."""
    payload = b"p" * 125
    burst = b"".join(encode_frame(OP_PING, payload) for _ in range(1000))

    def flood():
        c = edge.connect("pinger")
        try:
            for _ in range(100):
                c.send_raw(burst)
            # Answered (pongs), and still a working connection afterwards.
            c.ping(timeout=15)
            assert c.pongs_received >= 1
        finally:
            c.close()

    other = edge.connect("bystander")
    try:
        assert_memory_flat(edge, flood, rounds=2)
        other.ping()
    finally:
        other.close()


def test_empty_fragment_flood_accepted_and_memory_flat(edge):
    """50k zero-length continuation frames stay under the size cap; the edge must not keep
    anything per fragment."""
    burst = b"".join(encode_frame(OP_CONT, b"", fin=False) for _ in range(5000))

    def flood():
        c = edge.connect("fragger")
        try:
            c.send_frame(OP_TEXT, b'{"type":"ping",', fin=False)
            for _ in range(10):
                c.send_raw(burst)
            c.send_frame(OP_CONT, b'"id":31}', fin=True)
            pong = c.recv_until(lambda f: f.get("type") == "pong", timeout=15)
            assert pong == {"type": "pong", "id": 31}
        finally:
            c.close()

    assert_memory_flat(edge, flood, rounds=2)


def test_over_limit_fragment_floods_leave_memory_flat(edge):
    """Connection after connection grows a fragmented message past max_message_bytes:
    each is closed 1009 and its partial message freed."""
    chunk = b"y" * 8192

    def flood():
        for _ in range(20):
            c = edge.connect("bigfrag")
            try:
                c.send_frame(OP_TEXT, b'{"type":"ping","pad":"', fin=False)
                for _ in range(16):  # 128 KiB > 64 KiB
                    c.send_frame(OP_CONT, chunk, fin=False)
            except OSError:
                pass
            assert c.expect_close(10) == 1009
            c.abort()

    assert_memory_flat(edge, flood, rounds=3)


# ------------------------------------------------------------------------- huge headers
def test_one_header_over_the_cap_is_431(edge):
    before = rejected(edge, "header_too_large")
    req, _ = build_handshake("127.0.0.1", edge.ws_port, token=hs256("alice"),
                             headers=[("Cookie", "c" * 20000)])
    resp = raw_http("127.0.0.1", edge.ws_port, req)
    assert resp.status == 431, resp
    assert rejected(edge, "header_too_large") >= before + 1
    edge.assert_serving()


def test_one_megabyte_header_is_refused_and_memory_flat(edge):
    # Over libwebsockets' header buffer (four times the cap): closed without a response
    # (docs/PROTOCOL.md), or a 431; never buffered.
    def flood():
        for _ in range(10):
            req, _ = build_handshake("127.0.0.1", edge.ws_port, token=hs256("alice"),
                                     headers=[("X-Huge", "h" * (1 << 20))])
            try:
                resp = raw_http("127.0.0.1", edge.ws_port, req, timeout=10)
            except (ConnectionClosed, OSError):
                continue
            assert resp.status == 431, resp

    assert_memory_flat(edge, flood, rounds=2)


def test_endless_header_line_is_cut_off(edge):
    """A header line that never ends: the edge stops reading and closes long before
    the client has sent 16 MB."""
    s = socket.create_connection(("127.0.0.1", edge.ws_port), timeout=10)
    sent = 0
    cut = False
    try:
        s.sendall(b"GET /ws HTTP/1.1\r\nX-Endless: ")
        chunk = b"e" * 65536
        while sent < 16 * 1024 * 1024:
            try:
                s.sendall(chunk)
            except (ConnectionError, OSError):
                cut = True
                break
            sent += len(chunk)
        if not cut:
            # Whatever was sent sits unread: the edge must still close the connection.
            s.settimeout(10)
            try:
                while s.recv(65536):
                    pass
            except ConnectionError:
                pass
            cut = True
    finally:
        s.close()
    assert cut
    assert sent < 16 * 1024 * 1024, "the edge read 16 MB of a single header line"
    edge.assert_serving()


# ------------------------------------------------------------------------ half-open peer
def _nft(*args):
    return subprocess.run(["nft", *args], capture_output=True, text=True, timeout=10)


def test_vanished_peer_is_closed_by_the_ping_timeout(edge_factory, tmp_path):
    """The client's packets vanish (no FIN, no RST, no ACK: as if its host lost power or
    its NAT mapping expired); the edge closes the connection after its ping timeout."""
    if shutil.which("nft") is None or _nft("list", "tables").returncode != 0:
        pytest.skip("needs nft (nftables) and CAP_NET_ADMIN to drop one connection's packets")
    e = edge_factory({"websocket": {"ping_interval_ms": 1000}})
    other = e.connect("stays")
    ghost = e.connect("ghost")
    ghost.ping()
    wait_until(lambda: e.metrics().value("wsfleet_connections_active") == 2, 5,
               what="two connections")
    port = ghost.sock.getsockname()[1]
    table = f"wsfleet_halfopen_{port}"
    rule_file = tmp_path / "halfopen.nft"
    rule_file.write_text(
        f"table inet {table} {{\n"
        f"  chain in {{ type filter hook input priority -300; policy accept;\n"
        f"    tcp sport {port} drop\n    tcp dport {port} drop\n  }}\n}}\n")
    added = _nft("-f", str(rule_file))
    assert added.returncode == 0, added.stderr
    try:
        t0 = time.monotonic()

        def ghost_gone():
            other.pump(0.1)  # the bystander keeps answering the server's pings
            return e.metrics().value("wsfleet_connections_active") == 1

        wait_until(ghost_gone, 15, interval=0.1, what="the vanished peer's connection closed")
        elapsed = time.monotonic() - t0
        assert elapsed >= 0.9, f"closed after {elapsed:.2f}s: sooner than one ping interval"
        other.ping()
    finally:
        _nft("delete", "table", "inet", table)
        ghost.abort()
        other.close()
    e.assert_serving()


# ------------------------------------------------------------------------------- tokens
def refused(edge, **kw):
    with pytest.raises(HandshakeRefused) as info:
        edge.try_connect(**kw).close()
    return info.value.response


LEEWAY_S = 30  # auth.leeway_s of the test edges
MARGIN_S = 10  # far enough from the edge of the window for a slow machine


@pytest.mark.parametrize("case,claim,offset,reason", [
    ("expired_inside_leeway", "exp", -(LEEWAY_S - MARGIN_S), None),
    ("expired_beyond_leeway", "exp", -(LEEWAY_S + MARGIN_S), "token_expired"),
    ("nbf_inside_leeway", "nbf", LEEWAY_S - MARGIN_S, None),
    ("nbf_beyond_leeway", "nbf", LEEWAY_S + MARGIN_S, "token_not_yet_valid"),
    ("iat_inside_leeway", "iat", LEEWAY_S - MARGIN_S, None),
    ("iat_beyond_leeway", "iat", LEEWAY_S + MARGIN_S, "token_issued_in_future"),
])
def test_token_times_at_the_leeway_edges(edge, case, claim, offset, reason):
    kw = {claim: int(time.time()) + offset}
    if claim == "exp":
        kw = {"exp_in": offset}
    token = hs256("alice", **kw)
    if reason is None:
        c = edge.try_connect(token=token)
        try:
            c.ping()
        finally:
            c.close()
        return
    before = rejected(edge, reason)
    resp = refused(edge, token=token)
    assert resp.status == 401, resp
    assert resp.json()["error"]["reason"] == reason, resp
    assert rejected(edge, reason) >= before + 1
    edge.assert_serving()


def test_wrong_issuer_is_401(edge_factory):
    # Tenant "other" requires an issuer; "demo" (used by assert_serving) does not.
    e = edge_factory({"tenants": {"other": {"issuer": "https://idp.example"}}})
    good = e.try_connect(token=token_for("bob", "other", iss="https://idp.example"))
    good.ping()
    for iss in ("https://evil.example", "https://idp.example/", "", None):
        token = token_for("bob", "other", iss=iss)
        before = rejected(e, "token_bad_issuer")
        resp = refused(e, token=token)
        assert resp.status == 401, (iss, resp)
        assert rejected(e, "token_bad_issuer") >= before + 1, iss
    good.ping()
    good.close()
    e.assert_serving()


def _resign(signing_input):
    sig = hmac.new(DEMO_SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def _bad_base64url_tokens():
    good = hs256("alice")
    head, body, sig = good.split(".")
    out = {
        "padded_signature": f"{head}.{body}.{sig}=",
        "std_alphabet_signature": f"{head}.{body}." + sig.replace("-", "+").replace("_", "/")
        + ("" if ("-" in sig or "_" in sig) else "+"),
        "space_in_payload": f"{head}.{body[:5]} {body[5:]}.{sig}",
        "non_ascii_header": f"\u00e9{head}.{body}.{sig}",
        "four_segments": f"{head}.{body}.{sig}.{sig}",
        "empty_header": f".{body}.{sig}",
    }
    # Validly signed, so only the decoding can refuse them.
    resigned = {
        "signed_garbage_header": (head + "*", body),
        "signed_padded_header": (head + "=" * (-len(head) % 4 or 4), body),
        "signed_impossible_length_payload": (head, body + "A" * ((1 - len(body)) % 4)),
        "signed_payload_with_whitespace": (head, body[:8] + "\t" + body[8:]),
    }
    for name, (h, b) in resigned.items():
        out[name] = f"{h}.{b}." + _resign(f"{h}.{b}")
    return out


BAD_B64 = _bad_base64url_tokens()


@pytest.mark.parametrize("case", sorted(BAD_B64))
def test_bad_base64url_token_is_401(edge, case):
    token = BAD_B64[case]
    if not token.isascii():
        # A header cannot carry it as text; the query string (percent-encoded) can.
        resp = refused(edge, query={"access_token": token})
    else:
        resp = refused(edge, token=token)
    assert resp.status == 401, resp
    edge.assert_serving()


@pytest.mark.parametrize("where", ["header", "query"])
def test_megabyte_token_refused(edge, where):
    token = hs256("alice", pad="p" * (1 << 20))
    kw = {"token": token} if where == "header" else {"query": {"access_token": token}}
    try:
        resp = refused(edge, **kw)
        assert resp.status in (401, 413, 414, 431), resp
    except (ConnectionClosed, OSError):
        # Over libwebsockets' header buffer: dropped while the client was still sending
        # (docs/PROTOCOL.md, 431 row). The point is that nothing else suffers.
        pass
    edge.assert_serving()


def test_tokens_never_written_to_a_debug_log(edge, cx):
    """The shared edge logs at debug level: every connection event is written. No token,
    accepted or refused, in the header, the query string or a refresh, may appear."""
    assert edge.conf["node"]["log_level"] == "debug"
    secrets = []

    def remember(token):
        secrets.append(token)
        return token

    c = edge.try_connect(token=remember(hs256("logged1")))
    c.ping()
    c.close()
    c = edge.try_connect(query={"access_token": remember(hs256("logged2"))})
    c.ping()
    c.request({"type": "refresh", "token": remember(hs256("logged2", exp_in=7200))})
    c.request({"type": "refresh", "token": remember(hs256("logged2", secret="q" * 40))})
    c.request({"type": "refresh", "token": remember("garbage." + "g" * 40)})
    c.close()
    refused(edge, token=remember(hs256("logged3", secret="r" * 40)))
    refused(edge, query={"access_token": remember(hs256("logged4", exp_in=-3600))})
    refused(edge, token=remember(hs256("logged5", pad="z" * 5000)))
    edge.assert_serving()
    log = edge.log_text()
    assert "logged1" in log or "handshake" in log, "the debug log seems empty"
    for token in secrets:
        for part in [token] + [p for p in token.split(".")[1:] if len(p) >= 16]:
            assert part not in log, f"a token (or its signature/claims) is in the log: {part[:20]}"


# ------------------------------------------------------------------------ hostile JSON
def test_a_million_json_keys(edge_factory):
    e = edge_factory({"websocket": {"max_message_bytes": 16 * 1024 * 1024,
                                    "outbound_max_bytes": 32 * 1024 * 1024}})
    other = e.connect("bystander")
    c = e.connect("keymaster")
    try:
        body = ",".join(f'"{i:x}":0' for i in range(1_000_000))
        text = '{"type":"publish","channel":"%s","id":5,"data":{%s}}' % (uniq("live"), body)
        assert len(text) < 16 * 1024 * 1024
        t0 = time.monotonic()
        reply = c.request_raw(text, timeout=30)
        assert reply["type"] == "reply" and reply.get("id") in (5, None), reply
        assert time.monotonic() - t0 < 20, "a million keys took the edge over 20 s"
        c.ping()
        other.ping()
    finally:
        c.close()
        other.close()
    e.assert_serving()
