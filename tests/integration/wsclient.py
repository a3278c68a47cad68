"""A small synchronous WebSocket (RFC 6455) client for the integration tests.

Written by hand rather than taken from a library because the tests need what
well-behaved libraries refuse to do: unmasked or reserved-opcode frames, raw
bytes, pings left unanswered, exact close codes, refused handshakes read as plain
HTTP. Every blocking call takes a timeout; nothing here waits forever.
"""

import base64
import hashlib
import json
import os
import select
import socket
import ssl
import struct
import time
import urllib.parse
from collections import deque

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA

DEFAULT_TIMEOUT = 5.0


class WsError(Exception):
    pass


class RecvTimeout(WsError):
    pass


class ConnectionClosed(WsError):
    """The peer closed. code/reason are None when no close frame arrived (plain EOF/reset)."""

    def __init__(self, code=None, reason="", detail=""):
        super().__init__(f"connection closed: code={code} reason={reason!r} {detail}".strip())
        self.code = code
        self.reason = reason


class HandshakeRefused(WsError):
    def __init__(self, response):
        super().__init__(
            f"handshake refused: HTTP {response.status} {response.body[:300]!r}")
        self.response = response


class HttpResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-cased name, value)
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return f"HttpResponse({self.status}, {self.body[:200]!r})"


class Frame:
    def __init__(self, fin, rsv, opcode, payload, masked=False):
        self.fin = fin
        self.rsv = rsv
        self.opcode = opcode
        self.payload = payload
        self.masked = masked

    def __repr__(self):
        return (f"Frame(fin={self.fin}, rsv={self.rsv}, op={self.opcode:#x}, "
                f"len={len(self.payload)}, payload={self.payload[:80]!r})")


def encode_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None,
                 declared_length=None):
    """Builds one frame. declared_length lies about the length (for malformed-frame tests)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    b0 = (0x80 if fin else 0) | ((rsv & 0x7) << 4) | (opcode & 0xF)
    n = len(payload) if declared_length is None else declared_length
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + apply_mask(payload, key)


def apply_mask(payload, key):
    if not payload:
        return b""
    # XOR as one big integer: fast enough for megabyte payloads without numpy.
    reps = (len(payload) + 3) // 4
    full_key = (key * reps)[: len(payload)]
    a = int.from_bytes(payload, "little")
    b = int.from_bytes(full_key, "little")
    return (a ^ b).to_bytes(len(payload), "little")


def close_payload(code=None, reason=""):
    if code is None:
        return b""
    return struct.pack("!H", code) + reason.encode("utf-8")


def _open_socket(host, port, timeout, tls_context=None, server_hostname=None, rcvbuf=None,
                 source_ip=None):
    source = (source_ip, 0) if source_ip else None
    sock = socket.create_connection((host, port), timeout=timeout, source_address=source)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if tls_context is not None:
        sock = tls_context.wrap_socket(sock, server_hostname=server_hostname or host)
    return sock


class _Reader:
    """Buffered reads against a deadline; partial data survives a timeout."""

    def __init__(self, sock, initial=b""):
        self.sock = sock
        self.buf = bytearray(initial)
        self.eof = False

    def fill(self, deadline):
        """Reads more bytes; returns False at EOF. Raises RecvTimeout at the deadline."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RecvTimeout("timed out")
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not pending:
            r, _, _ = select.select([self.sock], [], [], remaining)
            if not r:
                raise RecvTimeout("timed out")
        self.sock.settimeout(max(remaining, 0.001))
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise RecvTimeout("timed out") from None
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            self.eof = True
            return False
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def take(self, n):
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


def _read_http_response(reader, deadline, max_body=1 << 22):
    """Reads a status line + headers, then the body by Content-Length/chunked/EOF."""
    while b"\r\n\r\n" not in reader.buf:
        if not reader.fill(deadline):
            raise ConnectionClosed(None, "", f"EOF before HTTP response head; got "
                                   f"{bytes(reader.buf[:200])!r}")
    end = reader.buf.index(b"\r\n\r\n")
    head = reader.take(end + 4).decode("iso-8859-1")
    lines = head.split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise WsError(f"bad status line {lines[0]!r}")
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    resp = HttpResponse(status, reason, headers, b"")
    if status == 101:
        return resp
    te = (resp.header("transfer-encoding") or "").lower()
    clen = resp.header("content-length")
    if "chunked" in te:
        body = bytearray()
        while True:
            while b"\r\n" not in reader.buf:
                if not reader.fill(deadline):
                    resp.body = bytes(body)
                    return resp
            line_end = reader.buf.index(b"\r\n")
            size = int(reader.take(line_end + 2)[:-2].split(b";")[0].strip() or b"0", 16)
            if size == 0:
                break
            while len(reader.buf) < size + 2:
                if not reader.fill(deadline):
                    break
            body += reader.take(size)
            reader.take(2)
        resp.body = bytes(body)
    elif clen is not None:
        n = int(clen)
        while len(reader.buf) < n:
            if not reader.fill(deadline):
                break
        resp.body = reader.take(n)
    else:
        try:
            while len(reader.buf) < max_body and reader.fill(deadline):
                pass
        except RecvTimeout:
            pass
        resp.body = reader.take(len(reader.buf))
    return resp


def build_handshake(host, port, path="/ws", query=None, token=None, subprotocols=("wsfleet.v1",),
                    origin=None, headers=None, key=None, omit=()):
    """The request head bytes and the key. headers: list of (name, value) added at the end;
    omit: default header names (case-insensitive) left out."""
    key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
    target = path
    if query:
        target += "?" + urllib.parse.urlencode(query)
    default = [
        ("Host", f"{host}:{port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if subprotocols:
        default.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if origin is not None:
        default.append(("Origin", origin))
    if token is not None:
        default.append(("Authorization", f"Bearer {token}"))
    omit_l = {o.lower() for o in omit}
    lines = [f"GET {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in default if k.lower() not in omit_l]
    lines += [f"{k}: {v}" for k, v in (headers or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), key


def raw_http(host, port, request_bytes, timeout=DEFAULT_TIMEOUT, tls_context=None):
    """Sends raw request bytes, returns the HttpResponse (any status)."""
    sock = _open_socket(host, port, timeout, tls_context)
    try:
        deadline = time.monotonic() + timeout
        try:
            sock.sendall(request_bytes)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything
        return _read_http_response(_Reader(sock), deadline)
    finally:
        sock.close()


def expected_accept(key):
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


class WsClient:
    """One client connection. Frames that arrive while waiting for something else are
    kept in a backlog so replies and events can be awaited in any order."""

    def __init__(self, sock, reader, response, auto_pong=True):
        self.sock = sock
        self.reader = reader
        self.response = response
        self.auto_pong = auto_pong
        self.backlog = deque()  # decoded JSON frames not yet consumed
        self.pings_received = 0
        self.pongs_received = 0
        self.close_sent = False
        self.closed = None  # ConnectionClosed once known
        self.welcome = None
        self._next_id = 1
        self._frag_op = None
        self._frag_data = bytearray()

    # ---------------------------------------------------------------- connecting
    @classmethod
    def connect(cls, host, port, path="/ws", token=None, query=None, subprotocols=("wsfleet.v1",),
                origin=None, headers=None, omit=(), timeout=DEFAULT_TIMEOUT, tls_context=None,
                auto_pong=True, read_welcome=True, rcvbuf=None, source_ip=None):
        """Connects; raises HandshakeRefused with the HTTP response when not upgraded.
        With read_welcome, the first frame must be `welcome` (kept in .welcome).
        source_ip binds the local end (e.g. 127.0.0.2: another client address on loopback)."""
        req, key = build_handshake(host, port, path, query, token, subprotocols, origin,
                                   headers, omit=omit)
        sock = _open_socket(host, port, timeout, tls_context, rcvbuf=rcvbuf, source_ip=source_ip)
        try:
            deadline = time.monotonic() + timeout
            try:
                sock.sendall(req)
            except (BrokenPipeError, ConnectionResetError):
                pass
            reader = _Reader(sock)
            resp = _read_http_response(reader, deadline)
            if resp.status != 101:
                raise HandshakeRefused(resp)
            accept = resp.header("sec-websocket-accept")
            if accept != expected_accept(key):
                raise WsError(f"bad Sec-WebSocket-Accept {accept!r}")
            client = cls(sock, reader, resp, auto_pong=auto_pong)
        except BaseException:
            sock.close()
            raise
        if read_welcome:
            try:
                first = client.recv_json(timeout)
            except BaseException:
                client.abort()
                raise
            if first.get("type") != "welcome":
                client.abort()
                raise WsError(f"first frame is not welcome: {first!r}")
            client.welcome = first
        return client

    # ------------------------------------------------------------------ sending
    def send_raw(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0, declared_length=None):
        self.send_raw(encode_frame(opcode, payload, fin, mask, rsv,
                                   declared_length=declared_length))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode("utf-8") if isinstance(text, str) else text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj, separators=(",", ":")))

    def send_ping(self, payload=b""):
        self.send_frame(OP_PING, payload)

    def send_close(self, code=1000, reason=""):
        self.close_sent = True
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def new_id(self):
        i = self._next_id
        self._next_id += 1
        return i

    # ---------------------------------------------------------------- receiving
    def recv_frame(self, timeout=DEFAULT_TIMEOUT):
        """The next raw frame (control frames included, nothing answered)."""
        deadline = time.monotonic() + timeout
        while True:
            frame = self._parse_frame()
            if frame is not None:
                return frame
            if not self.reader.fill(deadline):
                self.closed = ConnectionClosed(None, "", "EOF without close frame")
                raise self.closed

    def _parse_frame(self):
        buf = self.reader.buf
        if len(buf) < 2:
            return None
        b0, b1 = buf[0], buf[1]
        masked = bool(b1 & 0x80)
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if len(buf) < 4:
                return None
            n = struct.unpack_from("!H", buf, 2)[0]
            pos = 4
        elif n == 127:
            if len(buf) < 10:
                return None
            n = struct.unpack_from("!Q", buf, 2)[0]
            pos = 10
        key = None
        if masked:
            if len(buf) < pos + 4:
                return None
            key = bytes(buf[pos:pos + 4])
            pos += 4
        if len(buf) < pos + n:
            return None
        payload = bytes(buf[pos:pos + n])
        del buf[:pos + n]
        if masked:
            payload = apply_mask(payload, key)
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, payload, masked)

    def recv_message(self, timeout=DEFAULT_TIMEOUT):
        """The next complete data message as (opcode, bytes). Answers pings when auto_pong,
        reassembles fragments, raises ConnectionClosed on a close frame or EOF (a received
        close is answered with the same code, as RFC 6455 asks)."""
        if self.closed is not None:
            raise self.closed
        deadline = time.monotonic() + timeout
        while True:
            frame = self.recv_frame(max(deadline - time.monotonic(), 0.0))
            if frame.masked:
                raise WsError(f"server sent a masked frame: {frame!r}")
            if frame.opcode == OP_PING:
                self.pings_received += 1
                if self.auto_pong and not self.close_sent:
                    try:
                        self.send_frame(OP_PONG, frame.payload)
                    except OSError:
                        pass
                continue
            if frame.opcode == OP_PONG:
                self.pongs_received += 1
                continue
            if frame.opcode == OP_CLOSE:
                code, reason = None, ""
                if len(frame.payload) >= 2:
                    code = struct.unpack("!H", frame.payload[:2])[0]
                    reason = frame.payload[2:].decode("utf-8", "replace")
                if not self.close_sent:
                    try:
                        self.send_close(code if code is not None else 1000)
                    except OSError:
                        pass
                self.closed = ConnectionClosed(code, reason)
                raise self.closed
            if frame.opcode == OP_CONT:
                if self._frag_op is None:
                    raise WsError("server sent an orphan continuation frame")
                self._frag_data += frame.payload
            elif frame.opcode in (OP_TEXT, OP_BINARY):
                if self._frag_op is not None:
                    raise WsError("server interleaved a new data frame into a fragmented one")
                self._frag_op = frame.opcode
                self._frag_data = bytearray(frame.payload)
            else:
                raise WsError(f"server sent reserved opcode {frame.opcode:#x}")
            if frame.fin:
                op, data = self._frag_op, bytes(self._frag_data)
                self._frag_op, self._frag_data = None, bytearray()
                return op, data

    def _recv_json_frame(self, timeout):
        op, data = self.recv_message(timeout)
        if op != OP_TEXT:
            raise WsError(f"server sent a non-text message: {data[:100]!r}")
        return json.loads(data.decode("utf-8"))

    def recv_json(self, timeout=DEFAULT_TIMEOUT):
        """The next JSON frame, backlog first."""
        if self.backlog:
            return self.backlog.popleft()
        return self._recv_json_frame(timeout)

    def recv_until(self, pred, timeout=DEFAULT_TIMEOUT, what="frame"):
        """The first frame (backlog first) matching pred; the others stay in the backlog
        in order."""
        for i, item in enumerate(self.backlog):
            if pred(item):
                del self.backlog[i]
                return item
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RecvTimeout(f"no {what} within {timeout}s; backlog={list(self.backlog)!r}")
            try:
                item = self._recv_json_frame(remaining)
            except RecvTimeout:
                raise RecvTimeout(
                    f"no {what} within {timeout}s; backlog={list(self.backlog)!r}") from None
            if pred(item):
                return item
            self.backlog.append(item)

    def next_event(self, type_=None, timeout=DEFAULT_TIMEOUT):
        """The next frame that is not a reply/pong (optionally of one type)."""
        def pred(f):
            t = f.get("type")
            if t in ("reply", "pong"):
                return False
            return type_ is None or t == type_
        return self.recv_until(pred, timeout, what=f"event {type_ or ''}".strip())

    def no_event(self, type_=None, within=0.5, pred=None):
        """Asserts that no matching non-reply frame arrives within `within` seconds."""
        try:
            if pred is not None:
                got = self.recv_until(pred, within, what="event")
            else:
                got = self.next_event(type_, within)
        except RecvTimeout:
            return
        raise AssertionError(f"unexpected frame: {got!r}")

    def request(self, cmd, timeout=DEFAULT_TIMEOUT):
        """Sends a command with a fresh id (unless it has one) and returns its reply/pong."""
        cmd = dict(cmd)
        cmd.setdefault("id", self.new_id())
        cid = cmd["id"]
        self.send_json(cmd)
        return self.recv_until(
            lambda f: f.get("type") in ("reply", "pong") and f.get("id") == cid, timeout,
            what=f"reply to {cmd.get('type')} id={cid}")

    def request_raw(self, text, timeout=DEFAULT_TIMEOUT):
        """Sends text as is and returns the next reply/pong frame (with or without id)."""
        self.send_text(text)
        return self.recv_until(lambda f: f.get("type") in ("reply", "pong"), timeout,
                               what="reply")

    def ok(self, cmd, timeout=DEFAULT_TIMEOUT):
        """request() that insists on ok:true."""
        r = self.request(cmd, timeout)
        assert r.get("ok") is True, f"{cmd!r} -> {r!r}"
        return r

    def ping(self, timeout=DEFAULT_TIMEOUT):
        i = self.new_id()
        r = self.request({"type": "ping", "id": i}, timeout)
        assert r == {"type": "pong", "id": i}, r
        return r

    def pump(self, duration):
        """Keeps reading (answering pings) for `duration` seconds; data frames go to the
        backlog. Raises ConnectionClosed if the connection ends meanwhile."""
        deadline = time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                self.backlog.append(self._recv_json_frame(remaining))
            except RecvTimeout:
                return

    def expect_close(self, timeout=DEFAULT_TIMEOUT):
        """Reads (discarding data) until the connection ends; returns the close code, or
        None when it ended without a close frame. Fails on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RecvTimeout(f"connection not closed within {timeout}s")
            try:
                self.recv_message(remaining)
            except ConnectionClosed as e:
                return e.code
            except WsError:
                # Malformed bytes from a server mid-close are not what the caller asks about.
                continue

    def close(self, code=1000, timeout=2.0):
        """Clean close: send close, wait for the echo and EOF (bounded)."""
        if self.closed is None:
            try:
                if not self.close_sent:
                    self.send_close(code)
                self.expect_close(timeout)
            except (OSError, WsError):
                pass
        self.abort()

    def abort(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
