"""Loopback ports for test servers that no other process can take in the meantime.

Asking the kernel for port 0 and closing the socket hands out a port from the
ephemeral range, the same range the kernel uses for the source port of every outgoing
connection. Between choosing the port and the server binding it (a nats-server in a
three-server cluster starts seconds later), any connect() on the machine may take it,
and the server dies with "address already in use". Two test processes running side by
side (ctest -j2) may also choose the same port.

So ports come from below the ephemeral range, which the kernel never hands out on its
own, and each port is reserved across processes by a file created with O_EXCL in a
shared directory, holding the owner's pid. A reservation whose owner has died is taken
over; a process drops its own reservations when it exits.
"""

import atexit
import errno
import os
import random
import socket
import tempfile
from pathlib import Path

_LOCK_DIR = Path(tempfile.gettempdir()) / "wsfleet-test-ports"
_FLOOR = 10000
_mine = set()


def _ephemeral_range():
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _candidates():
    """The port range to draw from: below the ephemeral range, else above it."""
    low, high = _ephemeral_range()
    if low - _FLOOR >= 4000:
        return _FLOOR, low - 1
    if 65535 - high >= 4000:
        return high + 1, 65535
    raise AssertionError(f"ephemeral port range {low}-{high} leaves no room for test ports")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError as e:
        return e.errno != errno.ESRCH
    return True


def _reserve(port):
    """Claims `port` for this process; False if another live process holds it."""
    _LOCK_DIR.mkdir(mode=0o1777, exist_ok=True)
    path = _LOCK_DIR / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text() or "0")
            except (OSError, ValueError):
                owner = 0
            if owner == os.getpid() or (owner and _alive(owner)):
                return False
            # The owner died without cleaning up (SIGKILL): take the port over.
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _mine.add(port)
        return True
    return False


def _release(port):
    _mine.discard(port)
    try:
        (_LOCK_DIR / str(port)).unlink()
    except FileNotFoundError:
        pass


@atexit.register
def _release_all():
    for port in list(_mine):
        _release(port)


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A free port on 127.0.0.1, reserved for this process until it exits."""
    return free_port_block(1)


def free_port_block(n, attempts=500):
    """A port p such that p .. p+n-1 are free and reserved for this process."""
    first, last = _candidates()
    for _ in range(attempts):
        base = random.randint(first, last - n + 1)
        taken = []
        for port in range(base, base + n):
            if not _reserve(port):
                break
            taken.append(port)
            if not _bindable(port):
                break
        else:
            return base
        for port in taken:
            _release(port)
    raise AssertionError(f"no block of {n} free ports found in {first}-{last}")
