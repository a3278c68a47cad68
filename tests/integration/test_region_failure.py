"""`wsfleetctl region fail`: a region cut off from the others loses its channels with a
forced, lease-fenced ownership move.

The ownership bucket lives in the first region of the topology (us here). An edge
confirms a durable store only while its copy of the bucket was proven complete within the
lease (20 s), so a region cut off from the bucket stops acknowledging within the lease;
the command marks the region `failing`, waits out the lease (plus a margin), marks it
`failed`, and the edges then move its channels without it (no grace, its history not
read). The property this file is about: once the command has returned, nobody is ever
acknowledged a store in the old generation again, and every store acknowledged in the new
one reaches every subscriber that stays on.

Three regions, so that the JetStream meta group keeps a majority while one is cut off.
Epochs and offsets: a channel's epoch is "<owner stream epoch>-<generation>" after a move
(test_ownership_move.py); offsets of two epochs come from two histories and are compared
within their epoch only.
"""

import json
import threading
import time

from fleet import channel
from harness import wait_until
from nats_cluster import DeliveryOracle
from region_util import STREAM, drop_reasons, epoch_of, publish_cmd, subscribe_on
from test_ownership_move import generation, owner_key, owner_of
from test_region_drain import region_cmd
from wsclient import ConnectionClosed, RecvTimeout, WsError

LEASE_S = 20.0
FAIL_WAIT_S = 22.0          # what `region fail` waits between `failing` and `failed`
MOVED_CLOSE = 4009          # subscribers of a force-moved channel are sent away with it


class TimedPublisher(threading.Thread):
    """Publishes {"p": name, "i": seq} to one durable channel on one edge, each seq with
    its own idempotency key, retrying that key on `unavailable` (and after a lost
    connection, on the same edge) until acknowledged or stopped. Records every ack with
    its epoch and the monotonic time it arrived: the safety checks are about when an
    epoch was acknowledged, not only whether."""

    def __init__(self, name, edge, ch, interval=0.05):
        super().__init__(name=f"pub-{name}", daemon=True)
        self.pub_name = name
        self.edge = edge
        self.channel = ch
        self.interval = interval
        self.stop_event = threading.Event()
        self.acks = []        # (seq, epoch, offset, t)
        self.unacked = []     # seqs given up on when stopped
        self.refusals = {}    # "code: message" -> count
        self.refused_at = []  # (t, "code: message")
        self.failures = []
        self.attempted = 0
        self._client = None

    def _connect(self):
        while not self.stop_event.is_set():
            try:
                self._client = self.edge.connect(self.pub_name)
                return True
            except (OSError, WsError):
                self.refusals["connect_failed"] = self.refusals.get("connect_failed", 0) + 1
                time.sleep(0.2)
        return False

    def _publish(self, seq):
        key = f"{self.pub_name}-{seq}"
        while not self.stop_event.is_set():
            if self._client is None and not self._connect():
                break
            try:
                r = self._client.request(
                    publish_cmd(self.channel, {"p": self.pub_name, "i": seq}, key), timeout=15)
            except RecvTimeout:
                # The protocol answers every publish; a silent edge is a finding.
                self.failures.append(f"seq {seq}: no reply within 15 s")
                self._client.abort()
                self._client = None
                continue
            except (ConnectionClosed, OSError, WsError):
                self.refusals["connection_lost"] = self.refusals.get("connection_lost", 0) + 1
                self._client.abort()
                self._client = None
                time.sleep(0.1)
                continue
            t = time.monotonic()
            if r.get("ok") is True:
                self.acks.append((seq, r["epoch"], r["offset"], t))
                return
            err = r.get("error") or {}
            why = f"{err.get('code')}: {err.get('message')}"
            self.refusals[why] = self.refusals.get(why, 0) + 1
            self.refused_at.append((t, why))
            if err.get("code") != "unavailable":
                self.failures.append(f"seq {seq}: refused with {r!r}")
                return
            time.sleep(0.1)   # backoff, then the same key again
        self.unacked.append(seq)

    def run(self):
        try:
            seq = 0
            while not self.stop_event.is_set():
                self._publish(seq)
                seq += 1
                self.attempted = seq
                time.sleep(self.interval)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(f"crashed: {e!r}")
        finally:
            if self._client is not None:
                self._client.close(timeout=0.5)

    def acks_in(self, epoch):
        return [a for a in self.acks if a[1] == epoch]

    def finish(self, timeout=20.0):
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.pub_name} did not stop"


class ResumingSubscriber(threading.Thread):
    """A subscriber of one channel on one edge that, when its connection is closed,
    reconnects to the same edge and resubscribes with since = the last (epoch, offset) it
    had, as a client following the protocol does. Records every close (code, time), every
    resume reply and every message with its epoch."""

    def __init__(self, name, edge, ch):
        super().__init__(name=f"sub-{name}", daemon=True)
        self.sub_name = name
        self.edge = edge
        self.channel = ch
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self.first = None     # the first subscribe reply
        self.epoch = None     # the epoch of the current subscription
        self.last = None      # the last offset received (or the subscribe reply's)
        self.closes = []      # (code, t)
        self.resumes = []     # (reply, t)
        self.messages = []    # (epoch, offset, p, i, t)
        self.refused = []     # (t, error code) of subscribes answered unavailable
        self.failures = []
        self._client = None

    def _subscribe(self):
        while not self.stop_event.is_set():
            since = None if self.epoch is None else (self.epoch, self.last)
            c, r = subscribe_on(self.edge, self.sub_name, self.channel, since)
            if r is None:
                time.sleep(0.2)
                continue
            if c is None:
                if (r.get("error") or {}).get("code") != "unavailable":
                    self.failures.append(f"subscribe refused: {r!r}")
                    return False
                self.refused.append((time.monotonic(), "unavailable"))
                time.sleep(0.2)
                continue
            if self.first is None:
                self.first = r
            else:
                self.resumes.append((r, time.monotonic()))
            self.epoch, self.last = r["epoch"], r["offset"]
            self._client = c
            return True
        return False

    def run(self):
        try:
            if not self._subscribe():
                return
            self.ready.set()
            while not self.stop_event.is_set():
                try:
                    m = self._client.next_event("message", timeout=0.2)
                except RecvTimeout:
                    continue
                except ConnectionClosed as e:
                    self.closes.append((e.code, time.monotonic()))
                    self._client.abort()
                    self._client = None
                    if not self._subscribe():
                        return
                    continue
                except (OSError, WsError) as e:
                    self.closes.append((repr(e), time.monotonic()))
                    self._client.abort()
                    self._client = None
                    if not self._subscribe():
                        return
                    continue
                if m.get("channel") != self.channel:
                    continue
                t = time.monotonic()
                if m["epoch"] != self.epoch:
                    # A new generation is only ever entered by a close and a resume.
                    self.failures.append(f"epoch {m['epoch']} while subscribed in "
                                         f"{self.epoch} without a close: {m!r}")
                elif m["offset"] <= self.last:
                    self.failures.append(f"offset {m['offset']} after {self.last}: {m!r}")
                self.epoch, self.last = m["epoch"], m["offset"]
                d = m.get("data") or {}
                self.messages.append((m["epoch"], m["offset"], d.get("p"), d.get("i"), t))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(f"crashed: {e!r}")
        finally:
            self.ready.set()
            if self._client is not None:
                self._client.close(timeout=0.5)

    def received(self, epoch, publisher=None):
        return [m for m in self.messages
                if m[0] == epoch and (publisher is None or m[2] == publisher)]

    def finish(self, timeout=5.0):
        self.stop_event.set()
        self.join(timeout)
        assert not self.is_alive(), f"{self.sub_name} did not stop"


def channel_moving_to(fleet, owner, to, stem):
    """A fresh channel of `owner`'s pinned namespace whose owner with `owner` down is
    `to`, so that the test knows where the forced move must take it."""
    for _ in range(50):
        ch = channel(owner, stem)
        if fleet.owner("demo", ch, down=(owner,)) == to:
            return ch
    raise AssertionError(f"no channel of {owner} goes to {to} with {owner} down")


def warm_up(edge, ch, subs, probe_acks, timeout=20.0):
    """Publishes probes on `edge` until every subscriber got one (the routes to every
    region are live); returns the probe's offset. Probe acks go to probe_acks."""
    prober = edge.connect("prober")
    try:
        deadline = time.monotonic() + timeout
        k = 0
        while True:
            r = prober.ok(publish_cmd(ch, {"p": "probe", "i": k}, f"probe-{k}"), timeout=15)
            probe_acks.append((k, r["epoch"], r["offset"], time.monotonic()))
            k += 1
            try:
                wait_until(lambda: all(s.last is not None and s.last >= r["offset"]
                                       for s in subs), 0.5, what="a probe at every subscriber")
                return r["offset"]
            except AssertionError:
                assert time.monotonic() < deadline, \
                    f"no probe reached every subscriber: {[s.last for s in subs]}"
    finally:
        prober.close()


def summary(pubs, subs):
    """What the clients saw, for the message of a failed wait."""
    out = []
    for p in pubs:
        tail = [(seq, e, off) for seq, e, off, _ in p.acks[-3:]]
        out.append(f"{p.pub_name}: {len(p.acks)} acks, last {tail}, refusals {p.refusals}, "
                   f"failures {p.failures[:3]}")
    for s in subs:
        tail = [m[:4] for m in s.messages[-3:]]
        out.append(f"{s.sub_name}: at {s.epoch}/{s.last}, closes {s.closes}, resumes "
                   f"{[r for r, _ in s.resumes]}, {len(s.refused)} subscribes refused, "
                   f"last messages {tail}, "
                   f"failures {s.failures[:3]}")
    return "\n".join(out)


def edges_summary(fleet):
    out = []
    for r in fleet.regions:
        try:
            m = fleet.edge(r).metrics()
            retries = m.value("wsfleet_region_catch_up_retries_total")
            out.append(f"edge of {r}: drops {drop_reasons(fleet.edge(r))}, "
                       f"catch-up retries {retries}")
        except (OSError, AssertionError) as e:
            out.append(f"edge of {r}: {e!r}")
    return "\n".join(out)


def waiting(fleet, pubs, subs):
    """wait_until, failing with what the clients and the edges saw."""
    def wait(pred, timeout, what, interval=0.05):
        try:
            return wait_until(pred, timeout, interval=interval, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{summary(pubs, subs)}\n{edges_summary(fleet)}") \
                from None
    return wait


def stream_epoch(fleet, region):
    with fleet.sc.connect(region) as nc:
        info = nc.stream_info(STREAM.format(region))
    return epoch_of(STREAM.format(region), info["created"])


def test_a_failed_regions_channel_moves_by_force_and_no_old_epoch_ack_follows(fleet_factory):
    fleet = fleet_factory(regions=("us", "eu", "ap"), partitionable=True)
    fleet.wait_links()
    ch = channel_moving_to(fleet, "eu", "ap", "failing")
    cold = channel("eu", "cold")
    got = owner_of(fleet, ch)
    assert (got["owner"], got["gen"]) == ("eu", 0), got

    sub_us = ResumingSubscriber("sub-us", fleet.edge("us"), ch)
    sub_eu = ResumingSubscriber("sub-eu", fleet.edge("eu"), ch)
    subs = [sub_us, sub_eu]
    pub_eu = TimedPublisher("pub-eu", fleet.edge("eu"), ch)
    pub_us = TimedPublisher("pub-us", fleet.edge("us"), ch)
    pubs = [pub_eu, pub_us]
    wait = waiting(fleet, pubs, subs)
    probe_acks = []
    failer = {}
    healed = set()
    try:
        for s in subs:
            s.start()
        for s in subs:
            assert s.ready.wait(20) and s.first is not None, (s.sub_name, s.failures)
        old_epoch = sub_us.first["epoch"]
        assert sub_eu.first["epoch"] == old_epoch and generation(old_epoch) == 0, \
            (sub_us.first, sub_eu.first)
        warmed = warm_up(fleet.edge("eu"), ch, subs, probe_acks)
        for p in pubs:
            p.start()

        # Before the fault: both publishers acknowledged in eu's epoch, and both
        # subscribers get every one of those acks.
        wait(lambda: all(len(p.acks) >= 10 or p.failures for p in pubs), 20,
                   what="10 acks per publisher before the cut")
        before = {(a[1], a[2]): (p.pub_name, a[0]) for p in pubs for a in list(p.acks)
                  if a[2] > warmed}
        assert {e for e, _ in before} == {old_epoch}, before
        wait(lambda: all(set(before) <= {(m[0], m[1]) for m in s.messages}
                               for s in subs), 10, what="the pre-cut acks at both subscribers")

        # A move away from eu whose mover died after its first step (as in a drain
        # running when the region was lost): `region fail` finishes it, forced.
        stuck = channel_moving_to(fleet, "eu", "ap", "stuck")
        with fleet.sc.connect("us") as nc:
            ack = nc.js_publish(
                f"$KV.WSF_OWNERS.{owner_key('demo', stuck)}",
                json.dumps({"tenant": "demo", "channel": stuck, "owner": "ap", "gen": 1,
                            "state": "moving", "from": "eu", "fence": 0, "base": 0,
                            "at_ms": int(time.time() * 1000)}).encode(),
                timeout=5)
        assert "seq" in ack, ack

        # eu cut off from both other regions, so from the bucket in us.
        t_cut = time.monotonic()
        fleet.sc.cut("eu", "us")
        fleet.sc.cut("eu", "ap")
        fleet.sc.wait_gateways("eu", "us", connected=False, timeout=10)
        fleet.sc.wait_gateways("eu", "ap", connected=False, timeout=10)

        def fail():
            failer["start"] = time.monotonic()
            failer["p"] = region_cmd(fleet, "fail", "eu", "--replicas", "1", via="us")
            failer["end"] = time.monotonic()

        t = threading.Thread(target=fail, daemon=True)
        t.start()
        # While the lease runs out, the region is listed as failing.
        wait(lambda: "eu  failing" in region_cmd(fleet, "list", via="us").stdout, 15,
                   interval=0.5, what="eu listed as failing")
        t.join(60)
        assert not t.is_alive(), "region fail did not return within 60 s"
        p = failer["p"]
        assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
        assert "region eu failed" in p.stdout + p.stderr, (p.stdout, p.stderr)
        t_failed = failer["end"]
        took = t_failed - failer["start"]
        assert FAIL_WAIT_S <= took < FAIL_WAIT_S + 20, f"region fail took {took:.1f} s"
        listed = region_cmd(fleet, "list", via="us")
        assert listed.returncode == 0 and "eu  failed" in listed.stdout, listed.stdout

        # The us edge has a subscriber: it moves the channel at once, to ap.
        wait(lambda: owner_of(fleet, ch)["state"] == "owned" and
                   owner_of(fleet, ch)["owner"] == "ap", 15, what="the channel owned by ap")
        rec = owner_of(fleet, ch)
        assert (rec["owner"], rec["gen"], rec["state"], rec["from"], rec.get("forced")) == \
            ("ap", 1, "owned", "eu", True), rec
        rec = owner_of(fleet, stuck)
        assert (rec["owner"], rec["gen"], rec["state"], rec["from"], rec.get("forced")) == \
            ("ap", 1, "owned", "eu", True), ("the stopped move was not finished", rec, p.stdout)
        wait(lambda: sub_us.closes, 15, what="the us subscriber closed")
        wait(lambda: sub_us.resumes, 15, what="the us subscriber resubscribed")
        resumed, _ = sub_us.resumes[0]
        new_epoch = resumed["epoch"]
        assert resumed["recovered"] is False and generation(new_epoch) == 1, resumed
        assert new_epoch != old_epoch + "-1", "the new generation is still eu's history"
        wait(lambda: len(pub_us.acks_in(new_epoch)) >= 5 or pub_us.failures, 15,
                   what="acks in the new epoch at the us publisher")
        wait(lambda: len(sub_us.received(new_epoch, "pub-us")) >= 3, 15,
                   what="new-epoch messages of the us publisher at the us subscriber")

        # Back together: eu's edge follows the bucket.
        fleet.sc.heal("eu", "us")
        fleet.sc.heal("eu", "ap")
        healed.update({"us", "ap"})
        t_healed = time.monotonic()
        fleet.sc.wait_gateways("eu", "us", connected=True, timeout=20)
        fleet.sc.wait_gateways("eu", "ap", connected=True, timeout=20)
        fleet.wait_links(up=True, pairs=[("eu", "us"), ("eu", "ap")], timeout=15)
        wait(lambda: sub_eu.resumes, 30, what="the eu subscriber resubscribed")
        wait(lambda: len(pub_eu.acks_in(new_epoch)) >= 5 or pub_eu.failures, 30,
                   what="acks in the new epoch at the eu publisher")
        wait(lambda: len(sub_eu.received(new_epoch, "pub-eu")) >= 3 and
                   len(sub_eu.received(new_epoch, "pub-us")) >= 3, 15,
                   what="new-epoch messages of both publishers at the eu subscriber")
        wait(lambda: len(sub_us.received(new_epoch, "pub-eu")) >= 3, 15,
                   what="new-epoch messages of the eu publisher at the us subscriber")

        for p in pubs:
            p.finish()
        last = max(a[2] for p in pubs for a in p.acks_in(new_epoch))
        wait(lambda: all(s.epoch == new_epoch and s.last >= last for s in subs), 20,
                   what=f"both subscribers at {new_epoch}/{last}")
    finally:
        for p in pubs:
            p.stop_event.set()
        for s in subs:
            s.stop_event.set()
        for r in {"us", "ap"} - healed:
            fleet.sc.heal("eu", r)
        for p in pubs:
            p.join(20)
        for s in subs:
            s.join(5)
    assert not [f for x in pubs + subs for f in x.failures], \
        {x.name: x.failures for x in pubs + subs if x.failures}

    # Whose histories the epochs are: eu's before, ap's at generation 1 after.
    assert old_epoch == stream_epoch(fleet, "eu"), old_epoch
    assert new_epoch == stream_epoch(fleet, "ap") + "-1", new_epoch
    all_acks = [(p.pub_name,) + a for p in pubs for a in p.acks] + \
        [("probe",) + a for a in probe_acks]
    assert {a[2] for a in all_acks} == {old_epoch, new_epoch}, \
        sorted({a[2] for a in all_acks})

    # The safety property: after the command returned, nobody was acknowledged a store in
    # the old epoch; eu's edge stopped within the lease of losing the bucket; and the new
    # generation acknowledged nothing before the command's wait was over.
    late_old = [a for a in all_acks if a[2] == old_epoch and a[4] >= t_failed]
    assert not late_old, f"old-epoch acks after region fail returned: {late_old}"
    beyond_lease = [a for a in all_acks if a[2] == old_epoch and a[4] > t_cut + LEASE_S + 1.5]
    assert not beyond_lease, f"old-epoch acks {LEASE_S} s after the cut: {beyond_lease}"
    early_new = [a for a in all_acks if a[2] == new_epoch and
                 a[4] < failer["start"] + FAIL_WAIT_S]
    assert not early_new, f"new-epoch acks before the lease was waited out: {early_new}"
    # One message per offset in each epoch, at the publishers and at the subscribers.
    for epoch in (old_epoch, new_epoch):
        at = {}
        for a in all_acks:
            if a[2] == epoch:
                assert at.setdefault(a[3], (a[0], a[1])) == (a[0], a[1]), \
                    f"two acks at {epoch}/{a[3]}: {at[a[3]]} and {a[:2]}"
        for s in subs:
            for m in s.messages:
                if m[0] == epoch and m[1] in at:
                    assert at[m[1]] == (m[2], m[3]), \
                        f"{s.sub_name}: {epoch}/{m[1]} carries {m[2:4]}, acked as {at[m[1]]}"

    # Both subscribers were sent away exactly once, with the moved code, and told that
    # the old epoch cannot be recovered; us's after the command's wait, eu's after heal.
    for s in subs:
        assert [c for c, _ in s.closes] == [MOVED_CLOSE], (s.sub_name, s.closes)
        assert len(s.resumes) == 1, (s.sub_name, s.resumes)
        r, _ = s.resumes[0]
        assert r["recovered"] is False and r["epoch"] == new_epoch, (s.sub_name, r)
    assert sub_us.closes[0][1] >= failer["start"] + FAIL_WAIT_S, sub_us.closes
    assert sub_eu.closes[0][1] >= t_healed, (sub_eu.closes, t_healed)

    # Nothing acknowledged in the new epoch is lost, stored twice or out of order at
    # either subscriber (from its resume on).
    oracle = DeliveryOracle()
    old_ids = set()
    for p in pubs:
        new_acks = {seq: off for seq, e, off, _ in p.acks if e == new_epoch}
        old_ids |= {(p.pub_name, seq) for seq, e, _, _ in p.acks if e == old_epoch}
        for seq in range(p.attempted):
            if seq in new_acks:
                oracle.published(p.pub_name, seq, offset=new_acks[seq])
            else:
                oracle.published(p.pub_name, seq, acked=False)
    for s in subs:
        oracle.subscriber(s.sub_name, since=s.resumes[0][0]["offset"])
        for epoch, off, pub, seq, _ in s.messages:
            if epoch == new_epoch:
                oracle.received(s.sub_name, off, pub, seq)
    oracle.assert_nothing_lost()
    restored = [(s.sub_name, m) for s in subs for m in s.received(new_epoch)
                if (m[2], m[3]) in old_ids]
    assert not restored, f"messages acknowledged in the old epoch stored again: {restored}"

    # Refused, not lost, meanwhile: eu's edge for want of a fresh view of the bucket, us's
    # because the channel's owner was failing.
    assert drop_reasons(fleet.edge("eu")).get("owner_view_stale", 0) > 0, \
        (drop_reasons(fleet.edge("eu")), pub_eu.refusals)
    assert drop_reasons(fleet.edge("us")).get("owner_region_failed", 0) > 0, \
        (drop_reasons(fleet.edge("us")), pub_us.refusals)

    # Undrained: eu is active again; the channel that moved stays moved, one that nobody
    # used meanwhile is eu's again, at generation 0.
    undrained = region_cmd(fleet, "undrain", "eu", via="us")
    assert undrained.returncode == 0, undrained.stderr
    listed = region_cmd(fleet, "list", via="us")
    assert "eu  active" in listed.stdout, listed.stdout
    rec = owner_of(fleet, cold)
    assert (rec["owner"], rec["gen"]) == ("eu", 0), rec
    clients = [fleet.edge(r).connect(f"late-{r}") for r in ("eu", "us")]
    try:
        for c in clients:
            def stored(c=c):
                r = c.request(publish_cmd(cold, {"late": 1}), timeout=15)
                return r if r.get("ok") is True else None

            r = wait_until(stored, 15, interval=0.2, what="a publish to the cold channel")
            assert r["epoch"] == old_epoch, r
        r = clients[0].ok(publish_cmd(ch, {"late": 2}), timeout=15)
        assert r["epoch"] == new_epoch, r
    finally:
        for c in clients:
            c.close()
    rec = owner_of(fleet, ch)
    assert (rec["owner"], rec["gen"]) == ("ap", 1), rec


def test_region_fail_refuses_an_unknown_region(fleet_factory):
    fleet = fleet_factory(regions=("us", "eu"), start=False)
    p = region_cmd(fleet, "fail", "mars", "--replicas", "1", via="us")
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "mars" in p.stderr, p.stderr
    assert "failed" not in p.stdout, p.stdout
