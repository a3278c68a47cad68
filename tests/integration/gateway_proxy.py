"""Partitions between regions of a NatsSupercluster: a TCP proxy in front of every
server's gateway listener, run by threads of the test process.

Why one proxy per destination server, telling the source region from the protocol
--------------------------------------------------------------------------------
A server has one gateway `advertise` address, and nats-server gossips it to EVERY
other region (the INFO `gateway_urls` of an outbound gateway connection are added to the
remote's URLs). A proxy per (source region, destination server) would therefore leak:
the third region would learn the a->b proxy's address and might dial b through it, and a
server that learned the real gateway port would reconnect around the proxy after a cut.
So every server advertises its own proxy, every region dials it, and the proxy reads the
first line the dialling side sends, `CONNECT {..., "gateway": "<its region>"}` (the
dialling side sends it after the INFO of the listening side, which the proxy relays
first). A connection whose source region is cut from the destination's is closed there.

What a cut does, and why
------------------------
cut(a, b) closes every proxied connection between a and b at once and closes every new
one right after its CONNECT (refused, as far as the dialling server can tell: it retries
about once a second). A blackhole (sockets kept open, bytes held) would model the first
minutes of a real partition more literally, but nats-server notices a silent gateway only
after missing its pings (2 minutes x 2 by default), so the cut would take effect minutes
late, and whatever it had buffered would be delivered after heal, which is a pause, not a
partition. Closing models the partition as it stands once the servers have noticed it:
no gateway connection between the two regions (/gatewayz shows none), no interest
propagated, every message between them dropped by nats-server. What runs on top of NATS
(the fleet's bridges, their heartbeats) still has to detect the loss by itself.

Threads: one accept thread per proxy and one relay thread per live connection, at most
MAX_LINKS per proxy (the gateway mesh needs one per pair of servers of different regions
and direction), all joined by close()."""

import json
import select
import socket
import threading

from ports import free_port

MAX_LINKS = 64
MAX_CONNECT_LINE = 64 * 1024
POLL_S = 0.2


def _pair(a, b):
    return frozenset((a, b))


class Partitions:
    """Which region pairs are cut, and every proxied connection by (source, destination)
    region, shared by the proxies of one supercluster."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cut_pairs = set()
        self.links = set()
        self.refused = {}    # (source, destination) region -> connections closed by a cut
        self.problems = []   # unexpected errors of proxy threads

    def admit(self, link):
        """Registers a connection whose source is known; False when its regions are cut."""
        with self.lock:
            if _pair(link.src, link.dst) in self.cut_pairs:
                key = (link.src, link.dst)
                self.refused[key] = self.refused.get(key, 0) + 1
                return False
            self.links.add(link)
            return True

    def forget(self, link):
        with self.lock:
            self.links.discard(link)

    def cut(self, a, b):
        with self.lock:
            self.cut_pairs.add(_pair(a, b))
            doomed = [x for x in self.links if _pair(x.src, x.dst) == _pair(a, b)]
        for link in doomed:
            link.sever()
        for link in doomed:
            link.join(5.0)

    def heal(self, a, b):
        with self.lock:
            self.cut_pairs.discard(_pair(a, b))

    def is_cut(self, a, b):
        with self.lock:
            return _pair(a, b) in self.cut_pairs

    def refusals(self, src, dst):
        """New connections from region src to region dst closed because of a cut."""
        with self.lock:
            return self.refused.get((src, dst), 0)

    def count(self, a, b):
        """Live proxied connections between regions a and b (either direction)."""
        with self.lock:
            return sum(1 for x in self.links if _pair(x.src, x.dst) == _pair(a, b))


class _Link:
    """One proxied gateway connection: the dialling server <-> the destination server."""

    def __init__(self, proxy, client):
        self.proxy = proxy
        self.client = client
        self.upstream = None
        self.src = None              # region of the dialling server, from its CONNECT
        self.dst = proxy.region
        self.bytes = 0
        self._severed = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True,
                                       name=f"gwproxy-{proxy.server_name}")

    def sever(self):
        """Ends the relay at once; shutdown() wakes the relay thread's select()."""
        self._severed.set()
        for s in (self.client, self.upstream):
            if s is None:
                continue
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def join(self, timeout):
        self.thread.join(timeout)

    def _run(self):
        registered = False
        try:
            try:
                self.upstream = socket.create_connection(("127.0.0.1", self.proxy.target_port),
                                                         timeout=2.0)
            except OSError:
                return  # the server is down: the dialling side sees a closed connection
            if self._severed.is_set():
                return
            head = b""
            while not self._severed.is_set():
                readable, _, _ = select.select([self.client, self.upstream], [], [], POLL_S)
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    if s is self.upstream:
                        self.client.sendall(data)
                        self.bytes += len(data)
                        continue
                    if self.src is not None:
                        self.upstream.sendall(data)
                        self.bytes += len(data)
                        continue
                    head += data
                    if b"\r\n" not in head:
                        if len(head) > MAX_CONNECT_LINE:
                            return
                        continue
                    self.src = _gateway_name(head.split(b"\r\n", 1)[0])
                    if self.src is None or not self.proxy.partitions.admit(self):
                        return
                    registered = True
                    self.upstream.sendall(head)
                    self.bytes += len(head)
        except OSError:
            pass  # a peer closed, or sever() shut the sockets down
        except Exception as e:  # noqa: BLE001 - reported through the supercluster
            self.proxy.partitions.problems.append(
                f"gateway proxy of {self.proxy.server_name}: {e!r}")
        finally:
            if registered:
                self.proxy.partitions.forget(self)
            for s in (self.client, self.upstream):
                if s is not None:
                    try:
                        # Reset rather than FIN: the other end learns at once.
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                     b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    except OSError:
                        pass
                    s.close()
            self.proxy._done(self)


def _gateway_name(line):
    """The gateway (region) name of a `CONNECT {json}` line, None for anything else."""
    word, _, rest = line.partition(b" ")
    if word.upper() != b"CONNECT":
        return None
    try:
        name = json.loads(rest).get("gateway")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None


class GatewayProxy:
    """Listens on its own loopback port in front of one server's gateway listener."""

    def __init__(self, partitions, region, server_name, target_port):
        self.partitions = partitions
        self.region = region
        self.server_name = server_name
        self.target_port = target_port
        self.port = free_port()
        self._lock = threading.Lock()
        self._links = set()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(16)
        self._sock.settimeout(POLL_S)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True,
                                        name=f"gwproxy-accept-{server_name}")
        self._thread.start()

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if not self._stop.is_set():
                    self.partitions.problems.append(f"gateway proxy of {self.server_name}: "
                                                    "accept failed")
                return
            client.settimeout(None)
            with self._lock:
                if len(self._links) >= MAX_LINKS or self._stop.is_set():
                    client.close()
                    continue
                link = _Link(self, client)
                self._links.add(link)
            link.thread.start()

    def _done(self, link):
        with self._lock:
            self._links.discard(link)

    def live_links(self):
        with self._lock:
            return len(self._links)

    def close(self):
        self._stop.set()
        self._thread.join(5.0)
        self._sock.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.sever()
        for link in links:
            link.join(5.0)
        stuck = [x for x in links if x.thread.is_alive()]
        if stuck or self._thread.is_alive():
            self.partitions.problems.append(
                f"gateway proxy of {self.server_name}: {len(stuck)} relay thread(s) did "
                "not stop")
