"""The Debian package for the package tests: built with CPack from the build directory
the other tests use (its binaries, no rebuild), into a directory of the test's own."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness import DEMO_API_KEY, DEMO_SECRET, bin_dir

PACKAGE = "wsfleet"


def require_root_and_tools(*tools):
    """Skips the calling test module unless it can install packages."""
    if os.geteuid() != 0:
        pytest.skip("installs a Debian package with apt-get: needs root", allow_module_level=True)
    missing = [t for t in ("apt-get", "dpkg", "cpack", *tools) if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (tools/setup-deps --tests installs them)",
                    allow_module_level=True)


def installed(package=PACKAGE):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                       capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def build_deb(out_dir):
    """Builds the .deb from the build directory of WSFLEET_BIN_DIR into out_dir; returns
    its path."""
    build = bin_dir().parent
    if not (build / "CPackConfig.cmake").exists():
        pytest.fail(f"{build} is not a configured build directory (no CPackConfig.cmake)")
    # Up to date after tools/run-tests' full build: then this is a no-op.
    subprocess.run(["cmake", "--build", str(build), "--target", "wsfleet-edge",
                    "wsfleet-bridge", "wsfleetctl", "wsfleet_package_files"],
                   check=True, capture_output=True)
    r = subprocess.run(["cpack", "-G", "DEB", "-B", str(out_dir)], cwd=build,
                       capture_output=True, text=True)
    assert r.returncode == 0, f"cpack failed:\n{r.stdout}\n{r.stderr}"
    debs = sorted(Path(out_dir).glob(f"{PACKAGE}_*_amd64.deb"))
    assert len(debs) == 1, f"expected one .deb in {out_dir}: {debs}\n{r.stdout}"
    return debs[0]


def apt(*args, check=True):
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q", *args],
                       capture_output=True, text=True, env=env)
    if check:
        assert r.returncode == 0, f"apt-get {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r


# The tenant and key of configured_edge_conf(): tokens for it are
# harness.hs256(user, tenant=TENANT, kid=KID).
TENANT = "example"
KID = "key-1"


def configured_edge_conf(text, replacements=()):
    """The installed edge.toml as an operator configures it: the example tenant
    uncommented, its empty secret and API key filled in (the test keys of harness.py),
    then each (old, new) of `replacements` applied once."""
    head, tail = text.split(f"# [tenants.{TENANT}]", 1)
    tail = re.sub(r"^# (\[|[a-z_]+ = )", r"\1", f"# [tenants.{TENANT}]" + tail, flags=re.M)
    tail = tail.replace('secret = ""', f'secret = "{DEMO_SECRET}"')
    tail = tail.replace("api_keys = []", f'api_keys = ["{DEMO_API_KEY}"]')
    text = head + tail
    for old, new in replacements:
        assert old in text, f"no {old!r} in the installed edge.toml"
        text = text.replace(old, new, 1)
    return text
