"""Starts real wsfleet-edge processes for the integration tests.

An Edge owns one configuration file, one storage directory and (across restarts) one
process at a time. It writes the TOML itself, picks free loopback ports, waits for
GET /readyz to answer 200 (failing with the log tail when the process exits or the
deadline passes), and on stop reports a crash: a process that died from a signal the
harness did not send, exited non-zero, or ignored SIGTERM.
"""

import copy
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from managed_process import ManagedProcess
from ports import free_port, free_port_block  # noqa: F401  (re-exported for the tests)
from wsclient import WsClient, _Reader, _read_http_response

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent

DEMO_SECRET = "test-secret-0123456789-0123456789-abcdef"
DEMO_API_KEY = "test-api-key-demo-0123456789"
OTHER_SECRET = "other-secret-0123456789-0123456789-xyz"
OTHER_API_KEY = "test-api-key-other-0123456789"
AUDIENCE = "wsfleet"

READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def bin_dir():
    return Path(os.environ.get("WSFLEET_BIN_DIR", str(REPO_ROOT / "build" / "bin"))).resolve()


def edge_binary():
    return bin_dir() / "wsfleet-edge"


def ctl_binary():
    return bin_dir() / "wsfleetctl"


# ------------------------------------------------------------------------- keys, tokens
class EsKey:
    """A P-256 key pair for ES256 tokens."""

    def __init__(self):
        self.private = ec.generate_private_key(ec.SECP256R1())
        self.public_pem = self.private.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode()
        self.private_pem = self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode()


_ES_KEY = None


def es_key():
    """One key per test session: generating is cheap but the conf must match it."""
    global _ES_KEY
    if _ES_KEY is None:
        _ES_KEY = EsKey()
    return _ES_KEY


def claims(sub="alice", tenant="demo", exp_in=3600, aud=AUDIENCE, **extra):
    now = int(time.time())
    c = {"sub": sub, "tnt": tenant, "exp": now + exp_in, "iat": now}
    if aud is not None:
        c["aud"] = aud
    for k, v in extra.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def hs256(sub="alice", tenant="demo", kid="k1", secret=None, **kw):
    if secret is None:
        secret = OTHER_SECRET if tenant == "other" else DEMO_SECRET
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(claims(sub, tenant, **kw), secret, algorithm="HS256", headers=headers)


def es256(sub="alice", tenant="demo", kid="k2", key=None, **kw):
    key = key or es_key()
    return jwt.encode(claims(sub, tenant, **kw), key.private, algorithm="ES256",
                      headers={"kid": kid})


def token_for(sub="alice", tenant="demo", **kw):
    """A valid HS256 token for the tenant's first key."""
    kid = "o1" if tenant == "other" else "k1"
    return hs256(sub, tenant, kid=kid, **kw)


# ------------------------------------------------------------------------------- TOML
def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def _is_table_array(v):
    return isinstance(v, list) and v and all(isinstance(x, dict) for x in v)


def to_toml(doc, prefix=""):
    """Nested dicts -> TOML text: scalars first, then sub-tables, then arrays of tables."""
    out = []
    scalars = {k: v for k, v in doc.items()
               if not isinstance(v, dict) and not _is_table_array(v)}
    for k, v in scalars.items():
        out.append(f"{k} = {_toml_value(v)}")
    for k, v in doc.items():
        if isinstance(v, dict):
            name = f"{prefix}{k}"
            sub = to_toml(v, name + ".")
            has_scalars = any(not isinstance(x, dict) and not _is_table_array(x)
                              for x in v.values())
            if has_scalars or not v:
                out.append(f"\n[{name}]")
            out.append(sub)
    for k, v in doc.items():
        if _is_table_array(v):
            for item in v:
                out.append(f"\n[[{prefix}{k}]]")
                out.append(to_toml(item, f"{prefix}{k}."))
    return "\n".join(x for x in out if x != "")


def deep_merge(base, over):
    """over's keys replace base's; nested dicts merge; a None value deletes the key."""
    for k, v in over.items():
        if v is None:
            base.pop(k, None)
        elif isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def namespaces():
    return {
        "chat": {"history_size": 100, "history_ttl_ms": 300000, "presence": True,
                 "join_leave": True, "ordering": "owner"},
        "live": {"history_size": 0, "ordering": "none", "priority": "low",
                 "presence": False},
    }


def default_conf(ws_port, admin_port, storage_dir):
    return {
        # One worker unless a test asks for more: most tests read one /metrics endpoint.
        "node": {"name": "edge-test", "region": "local", "log_level": "debug", "workers": 1},
        "websocket": {
            "listen": f"127.0.0.1:{ws_port}", "path": "/ws",
            "allowed_origins": ["https://app.example.com"],
            "max_header_bytes": 8192, "max_message_bytes": 65536,
            "ping_interval_ms": 25000, "resume_window_ms": 120000,
            "refresh_notice_ms": 30000, "outbound_max_bytes": 4194304,
            "outbound_max_messages": 4096, "max_channels_per_connection": 256,
        },
        "admin": {"listen": f"127.0.0.1:{admin_port}", "max_body_bytes": 1048576},
        "auth": {"audience": AUDIENCE, "leeway_s": 30, "max_token_bytes": 4096},
        "storage": {"dir": str(storage_dir), "map_size_mb": 64},
        "presence": {"ttl_ms": 30000, "heartbeat_ms": 5000, "flush_ms": 20},
        # SIGTERM drains: short here so that stopping an edge with clients stays quick.
        "drain": {"window_ms": 1000, "grace_ms": 500},
        # Every test client comes from 127.0.0.1, so the per-address defences would treat
        # a test file's deliberate bad tokens and connection bursts as one abusive client.
        # They are off here and exercised by test_rate_limits.py and
        # test_connection_caps.py with explicit values.
        "limits": {"handshakes_per_ip_per_s": 0, "auth_failures_threshold": 0,
                   "max_connections_per_ip": 0},
        "tenants": {
            "demo": {
                "api_keys": [DEMO_API_KEY], "default_subs": [">"], "default_pubs": [">"],
                "client_send": True, "issuer": "",
                "keys": [
                    {"kid": "k1", "alg": "HS256", "secret": DEMO_SECRET},
                    {"kid": "k2", "alg": "ES256", "public_key_file": "es256.pem"},
                ],
                "namespaces": namespaces(),
            },
            "other": {
                "api_keys": [OTHER_API_KEY], "default_subs": [">"], "default_pubs": [">"],
                "client_send": True, "issuer": "",
                "keys": [{"kid": "o1", "alg": "HS256", "secret": OTHER_SECRET}],
                "namespaces": namespaces(),
            },
        },
    }


# ------------------------------------------------------------------------------- HTTP
def http(port, method, path, body=None, headers=None, timeout=5.0, host="127.0.0.1"):
    """A plain HTTP/1.1 request. body: bytes, str or a JSON-able object. Sends a large
    body in chunks and stops early when the server answers first (413 before reading)."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = {"Host": f"{host}:{port}", "Connection": "close"}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
        hdrs["Content-Length"] = str(len(body))
    hdrs.update(headers or {})
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in hdrs.items() if v is not None) + "\r\n"
    deadline = time.monotonic() + timeout
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            sock.sendall(head.encode("utf-8"))
            view = memoryview(body or b"")
            while view:
                r, _, _ = select.select([sock], [], [], 0)
                if r:
                    break  # answered early
                n = sock.send(view[:65536])
                view = view[n:]
        except (BrokenPipeError, ConnectionResetError):
            pass
        return _read_http_response(_Reader(sock), deadline)
    finally:
        sock.close()


def parse_metrics(text):
    """Prometheus text -> list of (name, {labels}, value)."""
    out = []
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = line_re.match(line)
        if not m:
            continue
        labels = dict(label_re.findall(m.group(3) or ""))
        out.append((m.group(1), labels, float(m.group(4))))
    return out


class Metrics:
    def __init__(self, text):
        self.text = text
        self.series = parse_metrics(text)

    def names(self):
        return {n for n, _, _ in self.series}

    def value(self, name, **labels):
        """Sum over the series of `name` whose labels include `labels`; 0 when none."""
        total = 0.0
        for n, lab, v in self.series:
            if n == name and all(lab.get(k) == str(val) for k, val in labels.items()):
                total += v
        return total

    def has(self, name):
        return name in self.names()


def wait_until(pred, timeout, interval=0.05, what="condition"):
    """Polls pred until it returns a truthy value (returned) or the deadline passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {last!r})")
        time.sleep(interval)


# ------------------------------------------------------------------------------- Edge
class EdgeFailure(AssertionError):
    pass


class Edge(ManagedProcess):
    failure = EdgeFailure
    ready_timeout_s = READY_TIMEOUT_S
    stop_timeout_s = STOP_TIMEOUT_S
    _counter = 0

    def __init__(self, workdir, overrides=None, name=None):
        super().__init__()
        Edge._counter += 1
        self.name = name or f"edge{Edge._counter}"
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf_path = self.dir / "edge.toml"
        self.storage_dir = self.dir / "lmdb"
        self.log_path = self.dir / "edge.log"
        self.ws_port = free_port()
        self.admin_port = free_port()
        self.conf = default_conf(self.ws_port, self.admin_port, self.storage_dir)
        if overrides:
            deep_merge(self.conf, overrides)
        if self.workers() > 1 and "listen" not in (overrides or {}).get("admin", {}):
            # Worker i serves the admin API on the base port + i: all of them must be free.
            self.admin_port = free_port_block(self.workers())
            self.conf["admin"]["listen"] = f"127.0.0.1:{self.admin_port}"
        self.tls_context = None  # set by TLS tests for connect()
        self.write_conf()

    # ---- configuration
    def write_conf(self):
        (self.dir / "es256.pem").write_text(es_key().public_pem)
        self.conf_path.write_text(to_toml(self.conf) + "\n")

    def update_conf(self, overrides):
        deep_merge(self.conf, overrides)
        self.write_conf()

    # ---- lifecycle
    def _command(self):
        return [edge_binary(), "--config", self.conf_path]

    def _not_ready(self):
        try:
            # Every worker (admin port + i) answers: one ready worker is not a ready edge.
            statuses = [http(port, "GET", "/readyz", timeout=0.5).status
                        for port in self.admin_ports()]
            if all(status == 200 for status in statuses):
                return None
            return f"HTTP {statuses}"
        except OSError as e:
            return repr(e)
        except Exception as e:  # noqa: BLE001 - a half-started server may send garbage
            return repr(e)

    def send_signal(self, sig):
        """Sends `sig`; SIGHUP is expected to be survived, anything else to end the
        process (then wait_exit())."""
        if sig != signal.SIGHUP:
            self._sent_signal = sig
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        """Waits for the process to end by itself (end of a drain) and returns its exit
        status; a non-zero status or a signal the test did not send is a problem."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise EdgeFailure(f"{self.name} still running after {timeout}s\n"
                              f"{self.log_tail()}") from None
        self._record_exit(rc, expected=True)
        self._close_log()
        return rc

    def url(self):
        return f"ws://127.0.0.1:{self.ws_port}/ws"

    # ---- worker processes (node.workers > 1: a supervisor and its forked workers)
    def workers(self):
        return int(self.conf["node"].get("workers", 1)) or os.cpu_count() or 1

    def admin_ports(self):
        return [self.admin_port + i for i in range(self.workers())]

    def worker_admin(self, index, method, path, body=None, api_key=DEMO_API_KEY, headers=None,
                     timeout=5.0):
        """Like admin(), on worker `index`'s admin listener."""
        h = dict(headers or {})
        if api_key is not None:
            h.setdefault("Authorization", f"Bearer {api_key}")
        return http(self.admin_port + index, method, path, body, h, timeout)

    def worker_metrics(self, index):
        r = http(self.admin_port + index, "GET", "/metrics")
        assert r.status == 200, r
        return Metrics(r.body.decode("utf-8"))

    def child_pids(self):
        """The supervisor's live children (Linux: /proc/PID/task/PID/children)."""
        pid = self.proc.pid
        try:
            text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        except OSError:
            return set()
        return {int(x) for x in text.split()}

    def log_events(self, event=None):
        """The JSON log lines of the current run (since the last start), optionally of one
        event."""
        text = self.log_text()
        marker = text.rfind("\n===== start ")
        out = []
        for line in text[marker + 1 if marker >= 0 else 0:].splitlines():
            if not line.startswith("{"):
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if event is None or rec.get("event") == event:
                out.append(rec)
        return out

    def worker_pids(self):
        """{worker index: pid} of the workers running now, from the supervisor's
        worker_started log lines checked against its live children."""
        children = self.child_pids()
        latest = {}
        for rec in self.log_events("worker_started"):
            latest[rec["worker"]] = rec["pid"]
        return {i: pid for i, pid in latest.items() if pid in children}

    # ---- clients
    def connect(self, user="alice", tenant="demo", token=None, **kw):
        """A WebSocket client with a valid token for `user` (or the given token)."""
        if token is None:
            token = token_for(user, tenant)
        kw.setdefault("tls_context", self.tls_context)
        return WsClient.connect("127.0.0.1", self.ws_port, token=token, **kw)

    def try_connect(self, **kw):
        """Like WsClient.connect against this edge, but with no token added."""
        kw.setdefault("tls_context", self.tls_context)
        return WsClient.connect("127.0.0.1", self.ws_port, **kw)

    def admin(self, method, path, body=None, api_key=DEMO_API_KEY, headers=None, timeout=5.0):
        h = dict(headers or {})
        if api_key is not None:
            h.setdefault("Authorization", f"Bearer {api_key}")
        return http(self.admin_port, method, path, body, h, timeout)

    def metrics(self):
        r = http(self.admin_port, "GET", "/metrics")
        assert r.status == 200, r
        return Metrics(r.body.decode("utf-8"))

    def api_publish(self, channel, data, tenant="demo", api_key=None, **extra):
        body = {"tenant": tenant, "channel": channel, "data": data}
        body.update(extra)
        key = api_key or (OTHER_API_KEY if tenant == "other" else DEMO_API_KEY)
        return self.admin("POST", "/api/v1/publish", body, api_key=key)

    def assert_serving(self):
        """A fresh, well-behaved client still gets a welcome and a pong."""
        self.check_alive()
        c = self.connect("healthcheck")
        try:
            c.ping()
        finally:
            c.close()


_uniq = 0


def uniq(ns="chat", stem="room"):
    """A channel name no other test of this session uses (tests share module edges)."""
    global _uniq
    _uniq += 1
    return f"{ns}:{stem}-{os.getpid()}-{_uniq}"


def user(stem="u"):
    global _uniq
    _uniq += 1
    return f"{stem}{_uniq}"


def session_pid(client):
    """The pid of the worker process that serves `client` (sessions are
    NODE-PID-COUNTER-HEX)."""
    m = re.search(r"-(\d+)-\d+-[0-9a-f]+$", client.welcome["session"])
    assert m, client.welcome
    return int(m.group(1))
