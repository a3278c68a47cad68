"""Starting and stopping the servers under test: wsfleet-edge, the four peers and the
floor (wsfleet-bench-floor, the cheapest server the `ws` peer protocol allows).

Every server is started pinned to one core on free loopback ports, in its own process
group, recorded in a registry, and stopped by stop_all() whatever happens (normal end,
exception, SIGINT/SIGTERM/SIGHUP).
"""

import atexit
import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import machine

START_TIMEOUT_S = 15.0
# A server that ignores SIGTERM this long (node flushing a burst backlog) is killed:
# nothing of it is measured after the run.
STOP_TIMEOUT_S = 2.0

# How the generated edge configuration is chosen, recorded in results.json.
WSFLEET_CHOICES = {
    "namespace": "live (every bench channel is live:<topic>)",
    "ordering": "none: at-most-once fan-out without the sequencing hop, which is what "
                "nats, mqtt QoS 0, ws and socket.io offer; 'owner' would add storage",
    "history_size": "0: no peer keeps history",
    "presence": "false, join_leave false: no peer tracks channel membership",
    "priority": "normal",
    "auth": "HS256 tenant key; the bench sends a token on every connection (peers run "
            "without authentication, so wsfleet pays for token checks the others do not)",
    "outbound_max_bytes / outbound_max_messages": "product defaults (4 MiB / 4096): slow "
            "consumers are closed, where node ws and socket.io buffer without limit",
    "ping_interval_ms": "25000 (default; socket.io also pings every 25 s)",
    "log_level": "warn",
    "storage": "fresh LMDB directory per run in a temporary directory, "
               "sync_every_commit false",
}


class StartError(Exception):
    pass


@dataclass
class Env:
    edge: str
    ctl: str
    bench: str
    node_modules: str
    peers: str
    floor: str = ""


_registry = {}  # pid -> Popen, every server still possibly running


def stop_all():
    for pid, proc in list(_registry.items()):
        _terminate(proc)
        _registry.pop(pid, None)


def install_signal_cleanup():
    atexit.register(stop_all)

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


def _terminate(proc):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=STOP_TIMEOUT_S)


def free_port():
    """A port the kernel just considered free on 127.0.0.1. The small race with other
    processes is acceptable: a clash shows up as a start failure, reported as such."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Server:
    target = ""

    def __init__(self, env, workdir):
        self.env = env
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.port = 0
        self.pid = 0
        self.proc = None
        self.log_path = os.path.join(workdir, "server.log")
        self.start_s = None
        self.stop_s = None

    # Subclasses: prepare() writes configs and returns argv; url(); handshake path etc.
    def prepare(self):
        raise NotImplementedError

    def url(self):
        return f"ws://127.0.0.1:{self.port}/"

    def extra_env(self):
        return {}

    def start(self, core):
        argv = self.prepare()
        env = dict(os.environ)
        env.update(self.extra_env())
        log = open(self.log_path, "wb")
        try:
            # taskset execs the server, so the pid is the server's own.
            self.proc = subprocess.Popen(["taskset", "-c", str(core)] + argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=self.workdir, start_new_session=True)
        finally:
            log.close()
        self.pid = self.proc.pid
        _registry[self.pid] = self.proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StartError(f"{self.target} exited with {self.proc.returncode} at start: "
                                 f"{self.log_tail()}")
            if port_open(self.port):
                self.start_s = round(time.monotonic() - (deadline - START_TIMEOUT_S), 3)
                # taskset has exec'd by now; make sure the pinning really took.
                if machine.affinity(self.pid) != str(core):
                    raise StartError(f"{self.target} not pinned to core {core}")
                return
            time.sleep(0.05)
        raise StartError(f"{self.target} did not listen on {self.port} within "
                         f"{START_TIMEOUT_S} s: {self.log_tail()}")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """Stops the server and returns the tail of its log."""
        if self.proc is not None:
            t0 = time.monotonic()
            _terminate(self.proc)
            self.stop_s = round(time.monotonic() - t0, 3)
            _registry.pop(self.pid, None)
        return self.log_tail()

    def log_tail(self, n=1500):
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
            return data[-n:].decode("utf-8", "replace")
        except OSError:
            return ""

    def bench_args(self):
        """Target-specific arguments for wsfleet-bench."""
        return ["--target", self.target, "--url", self.url()]

    def handshake_request(self):
        return self.url(), {}

    def describe(self):
        return {"target": self.target, "pid": self.pid, "port": self.port, "url": self.url(),
                "affinity": machine.affinity(self.pid)}


class Wsfleet(Server):
    target = "wsfleet"

    def prepare(self):
        self.port = free_port()
        self.admin_port = free_port()
        self.tenant = "bench"
        self.secret = secrets.token_hex(32)
        self.api_key = secrets.token_hex(16)
        storage = os.path.join(self.workdir, "storage")
        os.makedirs(storage, exist_ok=True)
        self.conf_path = os.path.join(self.workdir, "edge.toml")
        with open(self.conf_path, "w") as f:
            f.write(edge_conf(self.port, self.admin_port, storage, self.tenant, self.secret,
                              self.api_key))
        check = subprocess.run([self.env.edge, "--check-config", self.conf_path],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30)
        if check.returncode != 0:
            raise StartError(f"generated edge config refused: {check.stdout.strip()}")
        self.token = self.mint("bench")
        return [self.env.edge, "--config", self.conf_path]

    def mint(self, user):
        p = subprocess.run([self.env.ctl, "token", "mint", "--config", self.conf_path,
                            "--tenant", self.tenant, "--user", user, "--ttl", "7200"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=30)
        if p.returncode != 0:
            raise StartError(f"token mint failed: {p.stderr.strip()}")
        return p.stdout.strip()

    def url(self):
        return f"ws://127.0.0.1:{self.port}/ws"

    def bench_args(self):
        # The bench mints one token per connection (distinct users) with the tenant key.
        return super().bench_args() + ["--hs256-secret", self.secret, "--kid", "bench-1",
                                       "--tenant", self.tenant, "--audience", "wsfleet",
                                       "--namespace", "live"]

    def handshake_request(self):
        return (f"{self.url()}?access_token={self.token}",
                {"Sec-WebSocket-Protocol": "wsfleet.v1"})

    def describe(self):
        d = super().describe()
        d["admin_port"] = self.admin_port
        d["config"] = open(self.conf_path).read().replace(self.secret, "<secret>").replace(
            self.api_key, "<api-key>")
        return d


def edge_conf(port, admin_port, storage, tenant, secret, api_key):
    return f"""# Generated by the benchmark comparison; see wsfleet_config in results.json.
[node]
name = "bench"
workers = 1
region = "local"
log_level = "warn"

[websocket]
listen = "127.0.0.1:{port}"
path = "/ws"
ping_interval_ms = 25000

[admin]
listen = "127.0.0.1:{admin_port}"

[auth]
audience = "wsfleet"

[limits]
# Off: the peers have no such limits, and the load (one publisher as fast as it can, many
# connections from a few loopback addresses) is what they would refuse.
commands_per_s = 0
user_publishes_per_s = 0
channel_publishes_per_s = 0
handshakes_per_ip_per_s = 0
auth_failures_threshold = 0
max_connections_per_ip = 0
max_connections_per_user = 0

[storage]
dir = "{storage}"
map_size_mb = 1024
sync_every_commit = false

[tenants.{tenant}]
api_keys = ["{api_key}"]
default_subs = [">"]
default_pubs = [">"]
client_send = true

[[tenants.{tenant}.keys]]
kid = "bench-1"
alg = "HS256"
secret = "{secret}"

[tenants.{tenant}.namespaces.live]
history_size = 0
history_ttl_ms = 0
presence = false
join_leave = false
ordering = "none"
priority = "normal"
allow_publish = true
"""


def _fill(template_path, out_path, values):
    with open(template_path) as f:
        text = f.read()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    if "@" in "".join(line for line in text.splitlines() if not line.startswith("#")):
        raise StartError(f"unfilled placeholder in {template_path}")
    with open(out_path, "w") as f:
        f.write(text)


class Nats(Server):
    target = "nats"

    def prepare(self):
        self.port = free_port()
        conf = os.path.join(self.workdir, "nats-server.conf")
        _fill(os.path.join(self.env.peers, "nats-server.conf.in"), conf,
              {"WS_PORT": self.port, "MAX_CONN": 1000000})
        return ["nats-server", "-c", conf]


class Mqtt(Server):
    target = "mqtt"

    def prepare(self):
        self.port = free_port()
        conf = os.path.join(self.workdir, "mosquitto.conf")
        _fill(os.path.join(self.env.peers, "mosquitto.conf.in"), conf,
              {"WS_PORT": self.port, "TCP_PORT": free_port()})
        return ["mosquitto", "-c", conf]

    def handshake_request(self):
        return self.url(), {"Sec-WebSocket-Protocol": "mqtt"}


class NodePeer(Server):
    script = ""

    def prepare(self):
        self.port = free_port()
        return ["node", os.path.join(self.env.peers, self.script), "--port", str(self.port)]

    def extra_env(self):
        # The peers' packages live in the build directory, not beside the scripts.
        return {"NODE_PATH": self.env.node_modules, "NODE_ENV": "production"}


class Ws(NodePeer):
    target = "ws"
    script = "ws-server.js"


class SocketIo(NodePeer):
    target = "socketio"
    script = "socketio-server.js"

    def handshake_request(self):
        return f"{self.url()}socket.io/?EIO=4&transport=websocket", {}


class Floor(Server):
    """The reference floor: one send() per delivery and nothing else (PEER_PROTOCOL.md).
    It speaks the `ws` peer protocol, so the bench drives it with `--target ws`."""
    target = "floor"

    def prepare(self):
        if not os.access(self.env.floor, os.X_OK):
            raise StartError(f"no floor binary at {self.env.floor}")
        self.port = free_port()
        return [self.env.floor, "--port", str(self.port)]

    def bench_args(self):
        return ["--target", "ws", "--url", self.url()]


_KINDS = {c.target: c for c in (Wsfleet, Nats, Mqtt, Ws, SocketIo, Floor)}


def make(target, env, workdir):
    return _KINDS[target](env, workdir)


def handshake(server, timeout_s=5.0):
    """Opens a WebSocket the plain way and returns the HTTP status line of the answer."""
    url, headers = server.handshake_request()
    path = url.split(f":{server.port}", 1)[1] or "/"
    key = base64.b64encode(secrets.token_bytes(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}", "Upgrade: websocket",
             "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout_s) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        deadline = time.monotonic() + timeout_s
        while b"\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    status = data.split(b"\r\n", 1)[0].decode("latin-1")
    return status.split(" ", 1)[1] if " " in status else (status or "no answer")
