"""Helpers shared by the region tests (test_region*.py): edges on a NATS cluster, where
each edge's link landed, and clients that behave like real ones under faults (publishers
that retry with their idempotency key, subscribers that move to another edge and resume).
"""

import threading
import time

import harness
from wsclient import ConnectionClosed, RecvTimeout, WsError

STREAM = "WSF_HIST_{}"


def region_conf(cluster, name, nats=None, **sections):
    """Overrides for harness.Edge: this edge in the cluster's region, every server listed."""
    n = {"servers": cluster.urls, "history_replicas": min(3, len(cluster))}
    n.update(nats or {})
    conf = {"nats": n, "node": {"name": name, "region": cluster.region}}
    harness.deep_merge(conf, sections)
    return conf


def epoch_of(stream, created):
    """The epoch an edge derives from the history stream's creation time (FNV-1a 64 of
    "<stream>\\n<created>", 16 hex digits): recomputed here so that a test can tell the
    epoch really is the stream's."""
    h = 1469598103934665603
    for b in (stream + "\n" + created).encode("utf-8"):
        h ^= b
        h = (h * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def link_name(edge, worker=0):
    return f"wsfleet-edge {edge.conf['node']['name']} worker {worker}"


def connected_server(cluster, edge, worker=0, timeout=10.0):
    """The index of the cluster member whose /connz lists the edge worker's link."""
    want = link_name(edge, worker)

    def find():
        for i, s in enumerate(cluster.servers):
            if not s.alive():
                continue
            try:
                conns = s.monitor("/connz").get("connections") or []
            except (OSError, ValueError, AssertionError):
                continue
            if any(c.get("name") == want for c in conns):
                return i + 1  # truthy for wait_until
        return None

    return harness.wait_until(find, timeout, what=f"{want} in a server's /connz") - 1


def metric(edge, name, **labels):
    return edge.metrics().value(name, **labels)


def drop_reasons(edge):
    """{reason: count} of wsfleet_messages_dropped_total."""
    out = {}
    for n, lab, v in edge.metrics().series:
        if n == "wsfleet_messages_dropped_total" and v:
            out[lab.get("reason", "")] = out.get(lab.get("reason", ""), 0) + v
    return out


def publish_cmd(channel, data, key=None):
    cmd = {"type": "publish", "channel": channel, "data": data}
    if key is not None:
        cmd["idempotency_key"] = key
    return cmd


def messages_of(client, channel, n, timeout=10.0, skip_probes=True):
    """The next n `message` frames of the channel (probe frames skipped)."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        m = client.next_event("message", timeout=max(0.05, deadline - time.monotonic()))
        if m.get("channel") != channel:
            continue
        if skip_probes and isinstance(m.get("data"), dict) and "probe" in m["data"]:
            continue
        out.append(m)
    return out


def await_live_route(publish, receiver, channel, timeout=10.0):
    """Core NATS drops what is published before the subscriber's interest reached the
    publisher's server: publishes probes until one arrives. Probe frames carry a "probe"
    key (messages_of skips them)."""
    i = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        i += 1
        publish({"probe": i})
        try:
            receiver.recv_until(lambda f: f.get("type") == "message" and f.get("channel") ==
                                channel and isinstance(f.get("data"), dict) and
                                "probe" in f["data"], 0.3, what="probe")
            return
        except RecvTimeout:
            continue
    raise AssertionError(f"no probe on {channel} crossed the region within {timeout}s")


def directs(client, within=0.5):
    """Every direct frame's data until none arrives for `within` s, probes left out."""
    out = []
    while True:
        try:
            d = client.next_event("direct", timeout=within)["data"]
        except RecvTimeout:
            return out
        if not (isinstance(d, dict) and "probe" in d):
            out.append(d)


def drop_probes(client):
    """Removes probe frames left in the backlog (late ones of await_live_route)."""
    keep = [f for f in client.backlog if not (
        f.get("type") == "message" and isinstance(f.get("data"), dict) and "probe" in f["data"])]
    client.backlog.clear()
    client.backlog.extend(keep)


# --------------------------------------------------------------- clients under faults
class RetryingPublisher(threading.Thread):
    """Publishes `count` messages {"p": name, "i": seq} to a durable channel, each with
    its own idempotency_key, retrying the same key on `unavailable` or `rate_limited` (and
    on another edge when its connection ends) until acknowledged; records every outcome in
    the oracle.
    Stops early (before its next message) when `stop` is set."""

    def __init__(self, name, edges, channel, oracle, count, interval=0.0, give_up_s=30.0,
                 stop=None, position=None):
        """position(reply) -> what the oracle records as the acked offset (default: the
        reply's offset)."""
        super().__init__(name=f"pub-{name}", daemon=True)
        self.position = position or (lambda r: r["offset"])
        self.pub_name = name
        self.edges = list(edges)
        self.channel = channel
        self.oracle = oracle
        self.count = count
        self.interval = interval
        self.give_up_s = give_up_s
        self.stop_event = stop or threading.Event()
        self.acked = []          # offsets in publish order
        self.refusals = {}       # error reason/code -> count
        self.failures = []       # what went wrong beyond retrying
        self.done_seqs = 0
        self._edge = 0
        self._client = None

    def _connect(self):
        for _ in range(len(self.edges) * 20):
            e = self.edges[self._edge % len(self.edges)]
            try:
                self._client = e.connect(self.pub_name)
                return
            except (OSError, WsError):
                self._edge += 1
                time.sleep(0.05)  # backoff between edges, as a client would
        raise AssertionError(f"{self.pub_name}: no edge accepts a connection")

    def _publish_one(self, seq):
        key = f"{self.pub_name}-{seq}"
        deadline = time.monotonic() + self.give_up_s
        while time.monotonic() < deadline:
            try:
                if self._client is None:
                    self._connect()
                r = self._client.request(publish_cmd(self.channel, {"p": self.pub_name, "i": seq},
                                                     key), timeout=15)
            except (ConnectionClosed, OSError, WsError) as e:
                if isinstance(e, RecvTimeout):
                    self.failures.append(f"seq {seq}: no reply within 15 s")
                self.refusals["connection_lost"] = self.refusals.get("connection_lost", 0) + 1
                if self._client is not None:
                    self._client.abort()
                self._client = None
                self._edge += 1
                continue
            if r.get("ok") is True:
                return self.position(r)
            err = r.get("error") or {}
            # The wire names only the code; the message tells the refusals apart.
            why = f"{err.get('code')}: {err.get('message')}"
            self.refusals[why] = self.refusals.get(why, 0) + 1
            if err.get("code") == "rate_limited":
                # Not run: a retry later is the same message (PROTOCOL.md).
                time.sleep(0.1)
                continue
            if err.get("code") != "unavailable":
                self.failures.append(f"seq {seq}: refused with {r!r}")
                return None
            time.sleep(0.05)  # backoff before the retry with the same key
        self.failures.append(f"seq {seq}: not acknowledged within {self.give_up_s}s")
        return None

    def run(self):
        try:
            for seq in range(self.count):
                if self.stop_event.is_set():
                    break
                offset = self._publish_one(seq)
                if offset is None:
                    self.oracle.published(self.pub_name, seq, acked=False)
                else:
                    self.oracle.published(self.pub_name, seq, offset=offset)
                    self.acked.append(offset)
                self.done_seqs = seq + 1
                if self.interval:
                    time.sleep(self.interval)  # pacing, so the load spans the fault
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(f"crashed: {e!r}")
        finally:
            if self._client is not None:
                self._client.close(timeout=0.5)


def subscribe_on(edge, user, channel, since=None, timeout=15):
    """One subscribe on a new connection to `edge`, resuming from `since` = (epoch,
    offset) if given: (client, reply) when accepted; (None, reply) when refused (reply
    None: the connection failed), the connection closed."""
    try:
        c = edge.connect(user)
    except (OSError, WsError):
        return None, None
    cmd = {"type": "subscribe", "channel": channel}
    if since is not None:
        cmd["since"] = {"epoch": since[0], "offset": since[1]}
    try:
        r = c.request(cmd, timeout=timeout)
    except (OSError, WsError):
        c.abort()
        return None, None
    if r.get("ok") is not True:
        c.close(timeout=0.5)
        return None, r
    return c, r


class FollowingSubscriber(threading.Thread):
    """A client of one durable channel that behaves like a real one: when its connection
    ends it connects to the next edge of `edges` and resubscribes with since = the last
    position it received. Every message goes to the oracle; a resume that is not
    recovered is a failure (the oracle would see the loss, this names it)."""

    def __init__(self, name, edges, channel, oracle, user=None):
        super().__init__(name=f"sub-{name}", daemon=True)
        self.sub_name = name
        self.user = user or name
        self.edges = list(edges)
        self.channel = channel
        self.oracle = oracle
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.epoch = None
        self.last = None
        self.moves = []          # (edge name, since offset, recovered)
        self.failures = []
        self._edge = 0
        self._client = None

    def _subscribe(self):
        for _ in range(len(self.edges) * 20):
            e = self.edges[self._edge % len(self.edges)]
            since = None if self.epoch is None else (self.epoch, self.last)
            c, r = subscribe_on(e, self.user, self.channel, since)
            if r is None:
                self._edge += 1
                time.sleep(0.05)
                continue
            if c is None:
                err = r.get("error") or {}
                if err.get("code") != "unavailable":
                    raise AssertionError(f"{self.sub_name}: subscribe refused: {r!r}")
                time.sleep(0.1)  # the region is not reachable from there yet
                continue
            if self.epoch is None:
                self.epoch, self.last = r["epoch"], r["offset"]
                self.oracle.subscriber(self.sub_name, since=r["offset"])
            else:
                self.moves.append((e.name, self.last, r["recovered"]))
                if not r["recovered"] or r["epoch"] != self.epoch:
                    self.failures.append(f"resume on {e.name} from {self.last}: {r!r}")
            self._client = c
            return
        raise AssertionError(f"{self.sub_name}: no edge takes the subscription")

    def run(self):
        try:
            self._subscribe()
            self.ready.set()
            while not self.stop_event.is_set():
                try:
                    m = self._client.next_event("message", timeout=0.2)
                except RecvTimeout:
                    continue
                except (ConnectionClosed, OSError, WsError):
                    self._client.abort()
                    self._edge += 1
                    self._subscribe()
                    continue
                if m.get("channel") != self.channel:
                    continue
                if m.get("epoch") != self.epoch:
                    self.failures.append(f"message in another epoch: {m!r}")
                d = m.get("data") or {}
                self.oracle.received(self.sub_name, m["offset"], d.get("p"), d.get("i"))
                self.last = m["offset"]
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(f"crashed: {e!r}")
        finally:
            self.ready.set()
            if self._client is not None:
                self._client.close(timeout=0.5)

    def finish(self, timeout=5.0):
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.sub_name} did not stop"


def wait_caught_up(subscribers, offset, timeout=20.0):
    """Until every subscriber has received up to `offset` (the last acknowledged one)."""
    def done():
        behind = {s.sub_name: s.last for s in subscribers
                  if s.last is None or s.last < offset}
        return not behind or None
    try:
        harness.wait_until(done, timeout, what=f"subscribers at offset {offset}")
    except AssertionError:
        behind = {s.sub_name: s.last for s in subscribers if s.last is None or s.last < offset}
        raise AssertionError(f"subscribers behind offset {offset} after {timeout}s: "
                             f"{behind}") from None
