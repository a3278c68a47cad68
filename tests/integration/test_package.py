"""The Debian package, end to end on this machine: built from the build directory,
lintian clean, installed with apt-get, its units verified, its configuration refusing
to start without keys, the installed edge serving a real client (and telling a stand-in
for systemd when it is ready and when it stops), then purged, with what is left checked.

Needs root (it installs and purges the package `wsfleet`); skipped otherwise, and when
wsfleet is already installed here (it would be replaced and purged).
"""

import grp
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
from pathlib import Path

import pytest

import harness
import package_util as pkg

pkg.require_root_and_tools("lintian", "systemd-analyze")
if pkg.installed():
    pytest.skip("the package wsfleet is installed on this machine: this test would replace "
                "and purge it (apt-get purge wsfleet first)", allow_module_level=True)

UNITS = ("wsfleet-edge.service", "wsfleet-bridge.service")
UNIT_DIR = Path("/usr/lib/systemd/system")
BINARIES = ("wsfleet-edge", "wsfleet-bridge", "wsfleetctl")
# `systemd-analyze security` exposure (0 = locked down .. 10 = unprotected); measured
# 1.4 (edge) and 1.1 (bridge) with systemd 252. A unit that loses hardening fails here.
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def deb(tmp_path_factory):
    return pkg.build_deb(tmp_path_factory.mktemp("deb"))


@pytest.fixture(scope="module")
def installed(deb):
    pkg.apt("install", "--no-install-recommends", str(deb))
    yield deb
    if pkg.installed():  # a test failed before the purge test: leave the machine clean
        pkg.apt("purge", "wsfleet", check=False)


def run(*argv):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True)


def test_lintian_reports_no_errors_or_warnings(deb):
    r = run("lintian", "--allow-root", deb)
    bad = [line for line in r.stdout.splitlines() if re.match(r"[EW]: ", line)]
    assert not bad, r.stdout
    assert r.returncode == 0, r.stdout + r.stderr


def test_apt_installs_binaries_units_confs_and_the_user(installed):
    for name in BINARIES:
        assert os.access(f"/usr/bin/{name}", os.X_OK), name
    r = run("/usr/bin/wsfleet-edge", "--version")
    version = re.search(r"_(\d+\.\d+\.\d+)_", installed.name).group(1)
    assert r.returncode == 0 and version in r.stdout, r
    for page in ("man8/wsfleet-edge.8.gz", "man8/wsfleet-bridge.8.gz", "man1/wsfleetctl.1.gz",
                 "man5/wsfleet-edge.toml.5.gz"):
        assert (Path("/usr/share/man") / page).is_file(), page
    assert Path("/usr/share/bash-completion/completions/wsfleetctl").is_file()
    user = pwd.getpwnam("wsfleet")
    assert user.pw_uid < 1000 and user.pw_shell in ("/usr/sbin/nologin", "/bin/false")
    # The daemons' configurations hold secrets once configured.
    for name in ("edge.toml", "bridge.toml"):
        st = Path("/etc/wsfleet", name).stat()
        assert stat.S_IMODE(st.st_mode) == 0o640, name
        assert (st.st_uid, grp.getgrgid(st.st_gid).gr_name) == (0, "wsfleet"), name
    conffiles = run("dpkg-query", "-W", "-f=${Conffiles}", "wsfleet").stdout
    for name in ("edge.toml", "bridge.toml", "topology.toml"):
        assert f"/etc/wsfleet/{name}" in conffiles


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify_clean_and_are_hardened(installed, unit):
    path = UNIT_DIR / unit
    r = run("systemd-analyze", "verify", path)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r
    text = path.read_text()
    for line in ("Type=notify", "NotifyAccess=main", "User=wsfleet", "ProtectSystem=strict",
                 "NoNewPrivileges=yes", "PrivateTmp=yes", "CapabilityBoundingSet="):
        assert line in text, f"{unit}: no {line}"
    r = run("systemd-analyze", "security", "--offline=yes", path)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= MAX_EXPOSURE, r.stdout


def test_edge_unit_stops_after_the_drain_and_reloads_with_sighup(installed):
    text = (UNIT_DIR / "wsfleet-edge.service").read_text()
    assert "ExecReload=/bin/sh -c 'kill -HUP $MAINPID'" in text
    assert "KillMode=mixed" in text  # SIGTERM to the supervisor only: the workers drain
    assert "StateDirectory=wsfleet/edge" in text
    timeout_s = int(re.search(r"^TimeoutStopSec=(\d+)$", text, re.M).group(1))
    conf = Path("/etc/wsfleet/edge.toml").read_text()
    window = int(re.search(r"^window_ms = (\d+)$", conf, re.M).group(1))
    grace = int(re.search(r"^grace_ms = (\d+)$", conf, re.M).group(1))
    assert timeout_s * 1000 > window + grace + 5000


def test_installed_confs_refuse_to_start_until_configured(installed):
    r = run("/usr/bin/wsfleet-edge", "--check-config", "/etc/wsfleet/edge.toml")
    assert r.returncode == 2, r
    assert r.stderr.strip() == (
        "/etc/wsfleet/edge.toml:1:1: at least one tenant is required ([tenants.NAME] with "
        "its token keys [[tenants.NAME.keys]]): no client can connect until keys are "
        "configured"), r.stderr
    # Not a development key in sight, active or not.
    assert "dev-only" not in Path("/etc/wsfleet/edge.toml").read_text()
    # Started as the unit starts it, the edge refuses the same way (exit 2: no restart).
    r = run("/usr/bin/wsfleet-edge", "--config", "/etc/wsfleet/edge.toml")
    assert r.returncode == 2 and "until keys are configured" in r.stderr, r
    r = run("/usr/bin/wsfleet-bridge", "--check-config", "/etc/wsfleet/bridge.toml")
    assert r.returncode == 2, r
    assert "bridge.region: is required" in r.stderr and "nats.servers: is required" in r.stderr


def test_installed_conf_with_keys_configured_passes(installed, tmp_path):
    conf = tmp_path / "edge.toml"
    conf.write_text(pkg.configured_edge_conf(Path("/etc/wsfleet/edge.toml").read_text()))
    r = run("/usr/bin/wsfleet-edge", "--check-config", conf)
    assert r.returncode == 0 and r.stdout.strip() == f"{conf}: ok", r
    r = run("/usr/bin/wsfleetctl", "config", "check", "--config", conf)
    assert r.returncode == 0, r


class InstalledEdge(harness.Edge):
    def _command(self):
        return ["/usr/bin/wsfleet-edge", "--config", self.conf_path]


class NotifySocket:
    """systemd's end of NOTIFY_SOCKET: an abstract unix datagram socket."""

    def __init__(self):
        self.name = f"@wsfleet-package-test-{os.getpid()}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name[1:])

    def receive(self, timeout=15.0):
        self.sock.settimeout(timeout)
        return self.sock.recv(4096).decode()

    def close(self):
        self.sock.close()


def test_installed_edge_serves_a_client_and_notifies_readiness(installed, tmp_path):
    edge = InstalledEdge(tmp_path, {"node": {"workers": 2}})
    notify = NotifySocket()
    os.environ["NOTIFY_SOCKET"] = notify.name
    try:
        edge.start(wait=False)  # Popen copies the environment now
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        messages = [notify.receive()]
        while not messages[-1].startswith("READY=1"):
            messages.append(notify.receive())
        assert messages[-1] == "READY=1\nSTATUS=2 of 2 workers serving", messages
        edge.wait_ready()  # systemd's READY=1 means every worker answers /readyz
        client = edge.connect("alice")
        assert client.welcome["type"] == "welcome"
        client.ping()
        edge.send_signal(signal.SIGTERM)
        assert notify.receive() == "STOPPING=1\nSTATUS=draining the workers"
        assert edge.wait_exit(10) == 0
        client.close()
    finally:
        if edge.alive():
            edge.kill()
        notify.close()
    assert not edge.problems, edge.problems


def test_purge_removes_everything_but_the_user(installed):
    pkg.apt("purge", "wsfleet")
    assert not pkg.installed()
    left = [p for p in ("/usr/bin/wsfleet-edge", "/usr/bin/wsfleet-bridge", "/usr/bin/wsfleetctl",
                        "/etc/wsfleet", "/var/lib/wsfleet", "/usr/share/doc/wsfleet",
                        *(str(UNIT_DIR / u) for u in UNITS)) if os.path.lexists(p)]
    assert not left, left
    assert run("dpkg", "-L", "wsfleet").returncode != 0
    # Debian keeps system users on purge (files they owned may remain elsewhere); a
    # reinstall reuses it.
    assert pwd.getpwnam("wsfleet")
    assert shutil.which("wsfleet-edge") is None
