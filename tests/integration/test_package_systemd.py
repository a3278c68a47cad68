"""The Debian package under a real systemd (slow, opt-in): a Debian 12 root made with
debootstrap, booted with systemd-nspawn; the package installed there with apt-get, the
edge configured and started with systemctl (Type=notify: the start returns once the
supervisor said READY=1), a client connected from here (the container shares this
machine's network), a reload, and a `systemctl stop` that drains the client.

Runs only with WSFLEET_NSPAWN_TEST=1, as root, with debootstrap and systemd-container
installed and a Debian mirror reachable (WSFLEET_DEBIAN_MIRROR, else the one apt uses
here). It takes a few minutes, most of them debootstrap.
"""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import harness
import package_util as pkg
from wsclient import WsClient

if os.environ.get("WSFLEET_NSPAWN_TEST") != "1":
    pytest.skip("set WSFLEET_NSPAWN_TEST=1 to boot systemd in a container (minutes)",
                allow_module_level=True)
pkg.require_root_and_tools("debootstrap", "systemd-nspawn", "nsenter")

SUITE = "bookworm"
DRAIN_WINDOW_MS = 2000


def debian_mirror():
    if os.environ.get("WSFLEET_DEBIAN_MIRROR"):
        return os.environ["WSFLEET_DEBIAN_MIRROR"]
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        try:
            text = path.read_text()
        except OSError:
            continue
        m = re.search(r"^(?:URIs:\s*|deb\s+(?:\[[^]]*\]\s+)?)(https?://\S+/debian)/?\s",
                      text, re.M)
        if m and path.suffix in ("", ".list", ".sources"):
            return m.group(1)
    return "http://deb.debian.org/debian"


def run(*argv, check=True, timeout=600):
    r = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{' '.join(map(str, argv))} failed ({r.returncode}):\n" \
                                  f"{r.stdout}\n{r.stderr}"
    return r


class Container:
    def __init__(self, root, log_path):
        self.root = root
        self.name = f"wsfleet-test-{os.getpid()}"
        self.log = open(log_path, "wb")
        self.proc = None
        self.leader = None

    def boot(self):
        # nspawn keeps per-machine state in /run/systemd/nspawn and refuses to clean it up
        # unless it is a tmpfs, which /run is not on every host (not in containers): give
        # it one in a mount namespace of its own, leaving the host's mounts alone.
        nspawn = (f"mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn "
                  f"&& exec systemd-nspawn --quiet --register=no --keep-unit -b -D '{self.root}' -M {self.name}")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", nspawn],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while self.leader is None and time.monotonic() < deadline:
            assert self.proc.poll() is None, "systemd-nspawn exited during boot"
            self.leader = self._find_init()
            time.sleep(0.2)
        assert self.leader, "no systemd in the container"
        r = self.sh("systemctl is-system-running --wait", check=False, timeout=120)
        assert r.stdout.strip() in ("running", "degraded"), r

    def _find_init(self):
        """The container's PID 1: the systemd child of systemd-nspawn."""
        todo = [self.proc.pid]
        while todo:
            pid = todo.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                try:
                    if Path(f"/proc/{child}/comm").read_text().strip() == "systemd":
                        return child
                except OSError:
                    continue
                todo.append(child)
        return None

    def sh(self, command, check=True, timeout=120):
        return run("nsenter", "-t", self.leader, "-a", "/bin/sh", "-c", command,
                   check=check, timeout=timeout)

    def shutdown(self):
        if self.proc is None:
            return
        if self.leader and self.proc.poll() is None:
            self.sh("systemctl poweroff", check=False)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def container(tmp_path_factory):
    work = tmp_path_factory.mktemp("nspawn")
    root = work / "root"
    run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus", SUITE, root,
        debian_mirror(), timeout=1200)
    deb = pkg.build_deb(work / "deb")
    shutil.copy(deb, root / "root" / deb.name)
    c = Container(root, work / "container.log")
    try:
        c.boot()
        c.sh("apt-get -q update", timeout=600)
        c.sh(f"DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "
             f"/root/{deb.name}", timeout=600)
        yield c
    finally:
        c.shutdown()
        shutil.rmtree(root, ignore_errors=True)


def test_unconfigured_edge_refuses_to_start_with_the_reason(container):
    r = container.sh("systemctl start wsfleet-edge", check=False)
    assert r.returncode != 0
    log = container.sh("journalctl -u wsfleet-edge --no-pager -o cat").stdout
    assert "until keys are configured" in log, log
    # Exit 2 is a configuration error: no restart loop.
    show = container.sh("systemctl show -p ExecMainStatus -p NRestarts wsfleet-edge").stdout
    assert "ExecMainStatus=2" in show and "NRestarts=0" in show, show
    container.sh("systemctl reset-failed wsfleet-edge")


def test_configured_edge_starts_serves_reloads_and_drains_on_stop(container):
    ws_port, admin_port = harness.free_port(), harness.free_port_block(2)
    conf_path = container.root / "etc/wsfleet/edge.toml"
    conf_path.write_text(pkg.configured_edge_conf(conf_path.read_text(), [
        ('listen = "127.0.0.1:8080"', f'listen = "127.0.0.1:{ws_port}"'),
        ('listen = "127.0.0.1:9090"', f'listen = "127.0.0.1:{admin_port}"'),
        ("workers = 0", "workers = 2"),
        ("window_ms = 30000", f"window_ms = {DRAIN_WINDOW_MS}"),
    ]))
    # Type=notify: returns once the supervisor sent READY=1, i.e. both workers listen.
    container.sh("systemctl start wsfleet-edge")
    show = container.sh("systemctl show -p ActiveState -p StatusText -p MainPID "
                        "wsfleet-edge").stdout
    assert "ActiveState=active" in show and "StatusText=2 of 2 workers serving" in show, show
    for port in (admin_port, admin_port + 1):
        assert harness.http(port, "GET", "/readyz").status == 200
    # LMDB in the StateDirectory, owned by the service's user.
    owner = container.sh("stat -c %U /var/lib/wsfleet/edge").stdout.strip()
    assert owner == "wsfleet"

    token = harness.hs256("alice", tenant=pkg.TENANT, kid=pkg.KID)
    client = WsClient.connect("127.0.0.1", ws_port, token=token)
    client.ping()

    container.sh("systemctl reload wsfleet-edge")
    harness.wait_until(lambda: container.sh(
        "journalctl -u wsfleet-edge --no-pager -o cat").stdout.count("config_reloaded") >= 2,
        timeout=10, what="both workers reloaded")
    client.ping()

    started = time.monotonic()
    container.sh("systemctl stop wsfleet-edge", timeout=120)
    elapsed = time.monotonic() - started
    # The client was told to reconnect before the edge went (a drain, not a kill).
    frames = []
    try:
        while True:
            frames.append(client.recv_json(timeout=1))
    except Exception:  # noqa: BLE001 - the connection ends with the edge
        pass
    assert any(f.get("type") == "reconnect" for f in frames), frames
    show = container.sh("systemctl show -p ActiveState -p Result wsfleet-edge").stdout
    assert "ActiveState=inactive" in show and "Result=success" in show, show
    assert elapsed < 60, elapsed
    log = container.sh("journalctl -u wsfleet-edge --no-pager -o cat").stdout
    assert "edge_stopped" in log, log
