"""Ownership moves (`wsfleetctl owner move`, common/owner_records.h): a channel moved to
another region under traffic, and back, loses no acknowledged message and issues no
offset twice; its subscribers go on across the move and see the new generation's epoch;
a store its owner's generation marker no longer allows is never acknowledged.

Offsets are compared as (generation, offset): each generation has its own epoch (the
owner stream's epoch, "-<generation>" after a move), and offsets of two generations come
from two different histories.
"""

import base64
import json
import subprocess
import threading
import time

import harness
from fleet import channel
from harness import wait_until
from nats_cluster import DeliveryOracle
from region_util import RetryingPublisher, publish_cmd
from wsclient import RecvTimeout


def generation(epoch):
    """The generation an epoch names: "<stream epoch>-<gen>", or 0 without a move."""
    _, dash, gen = epoch.rpartition("-")
    return int(gen) if dash else 0


def position(reply):
    return (generation(reply["epoch"]), reply["offset"])


def owner_cmd(fleet, *args, via="us"):
    cmd = [str(harness.ctl_binary()), "owner", *args, "--topology", str(fleet.topology_path),
           "--nats", fleet.sc.region(via).urls[0], "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def move(fleet, ch, to, via="us"):
    p = owner_cmd(fleet, "move", "--tenant", "demo", "--channel", ch, "--to", to,
                  "--replicas", "1", via=via)
    assert p.returncode == 0, f"owner move to {to}: rc={p.returncode} {p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])


def owner_of(fleet, ch):
    p = owner_cmd(fleet, "get", "--tenant", "demo", "--channel", ch)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


class Listener(threading.Thread):
    """A subscriber that stays connected to one edge and records every message in the
    oracle at its (generation, offset), and every epoch it sees, in order."""

    def __init__(self, name, edge, ch, oracle):
        super().__init__(name=f"listener-{name}", daemon=True)
        self.sub_name = name
        self.edge = edge
        self.channel = ch
        self.oracle = oracle
        self.epochs = []
        self.last = None
        self.failures = []
        self.ready = threading.Event()
        self.stop_event = threading.Event()

    def run(self):
        client = None
        try:
            client = self.edge.connect(self.sub_name)
            r = client.ok({"type": "subscribe", "channel": self.channel}, timeout=15)
            self.epochs.append(r["epoch"])
            self.last = (generation(r["epoch"]), r["offset"])
            self.oracle.subscriber(self.sub_name, since=self.last)
            self.ready.set()
            while not self.stop_event.is_set():
                try:
                    m = client.next_event("message", timeout=0.2)
                except RecvTimeout:
                    continue
                if m.get("channel") != self.channel:
                    continue
                if m["epoch"] != self.epochs[-1]:
                    self.epochs.append(m["epoch"])
                at = (generation(m["epoch"]), m["offset"])
                if at <= self.last:
                    self.failures.append(f"{at} after {self.last}: {m!r}")
                self.last = at
                d = m.get("data") or {}
                self.oracle.received(self.sub_name, at, d.get("p"), d.get("i"))
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.failures.append(f"crashed: {e!r}")
        finally:
            self.ready.set()
            if client is not None:
                client.close(timeout=0.5)


def warm_up(publisher, ch, listeners, oracle, timeout=20.0):
    """Oracle-recorded probes from the owner region until every listener got one."""
    deadline = time.monotonic() + timeout
    k = 0
    while True:
        r = publisher.ok(publish_cmd(ch, {"p": "probe", "i": k}), timeout=15)
        oracle.published("probe", k, offset=position(r))
        k += 1
        try:
            wait_until(lambda: all(s.last is not None and s.last >= position(r)
                                   for s in listeners), 0.5, what="probe at every listener")
            return
        except AssertionError:
            assert time.monotonic() < deadline, \
                f"no probe reached every listener: {[s.last for s in listeners]}"


def listening(fleet, ch, oracle, owner="us"):
    """A Listener in every region, subscribed, each having received a probe published in
    the owner region (the route to its region is live)."""
    listeners = [Listener(f"l-{r}", fleet.edge(r), ch, oracle) for r in fleet.regions]
    for s in listeners:
        s.start()
    for s in listeners:
        assert s.ready.wait(20) and not s.failures, s.failures
    prober = fleet.edge(owner).connect("prober")
    try:
        warm_up(prober, ch, listeners, oracle)
    finally:
        prober.close()
    return listeners


def publishers_done(pubs, listeners):
    """Waits for the publishers to finish without failures, then for every listener to
    reach the last acknowledged (generation, offset)."""
    for p in pubs:
        p.join(60)
        assert not p.is_alive(), f"{p.pub_name} still publishing"
    assert not [f for p in pubs for f in p.failures], [p.failures for p in pubs]
    last = max(o for p in pubs for o in p.acked)
    wait_until(lambda: all(s.last is not None and s.last >= last for s in listeners), 20,
               what=f"every listener at {last}")


def stop_load(pubs, listeners, clients=()):
    """Stops publishers and listeners and closes the extra clients (also after a failure)."""
    for p in pubs:
        p.stop_event.set()
    for s in listeners:
        s.stop_event.set()
    for s in listeners:
        s.join(5)
    for c in clients:
        c.close()


def edge_metric(edge, name, **labels):
    return edge.worker_metrics(0).value(name, **labels) or 0


# ------------------------------------------------------------------------------------
def test_moves_under_traffic_lose_nothing_and_issue_no_offset_twice(fleet_factory):
    fleet = fleet_factory()
    fleet.wait_links()
    ch = channel("us", "moving")
    assert owner_of(fleet, ch)["owner"] == "us"
    oracle = DeliveryOracle()
    listeners = listening(fleet, ch, oracle)
    first_epoch = listeners[0].epochs[0]

    pubs = [RetryingPublisher(f"pub-{r}", [fleet.edge(r)], ch, oracle, count=400,
                              interval=0.02, position=position)
            for r in fleet.regions]
    moved = []
    extra = []
    try:
        for p in pubs:
            p.start()
        wait_until(lambda: all(len(p.acked) >= 30 or p.failures for p in pubs), 30,
                   what="30 acks per publisher")
        mover = threading.Thread(target=lambda: moved.append(move(fleet, ch, "eu")))
        mover.start()
        # While the move runs (delivery of the channel held): a new subscriber and a resume
        # are answered, and then follow the move like everyone else.
        wait_until(lambda: edge_metric(fleet.edge("us"), "wsfleet_owner_records") == 1, 5,
                   what="the moving record at the edge")
        joiner = fleet.edge("us").connect("joiner")
        resumer = fleet.edge("us").connect("resumer")
        extra = [joiner, resumer]
        joined = joiner.ok({"type": "subscribe", "channel": ch}, timeout=15)
        # From the first probe: a replay, while live messages are held.
        resumed = resumer.ok({"type": "subscribe", "channel": ch,
                              "since": {"epoch": first_epoch,
                                        "offset": oracle.publishes[("probe", 0)][1]}},
                             timeout=15)
        assert generation(joined["epoch"]) == 0 and resumed["recovered"] is True, \
            (joined, resumed)
        mover.join(30)
        assert not mover.is_alive() and moved, "the move did not finish"
        wait_until(lambda: all(p.acked and p.acked[-1][0] == 1 or p.failures or
                               not p.is_alive() for p in pubs), 20,
                   what="acks of generation 1")
        moved.append(move(fleet, ch, "us", via="eu"))
        publishers_done(pubs, listeners)
        for c in extra:
            c.recv_until(lambda f: f.get("type") == "message" and f.get("channel") == ch and
                         generation(f["epoch"]) == 2, 20, what="the second move's generation")
    finally:
        stop_load(pubs, listeners, extra)
    assert not [f for s in listeners for f in s.failures], [s.failures for s in listeners]

    # The moves: eu at generation 1, then us again at generation 2, each fenced.
    assert (moved[0]["owner"], moved[0]["gen"], moved[0]["from"]) == ("eu", 1, "us")
    assert (moved[1]["owner"], moved[1]["gen"], moved[1]["from"]) == ("us", 2, "eu")
    assert moved[0]["fence"] > 0 and moved[1]["fence"] > 0
    now = owner_of(fleet, ch)
    assert (now["owner"], now["gen"], now["state"]) == ("us", 2, "owned")
    # Acknowledged in all three generations, and nothing lost, nothing stored twice, no
    # offset carrying two messages, in order, at every listener.
    acked_gens = {o[0] for p in pubs for o in p.acked}
    assert acked_gens == {0, 1, 2}, acked_gens
    oracle.assert_nothing_lost()
    # Every listener followed the channel through both moves without reconnecting: three
    # epochs, the last one us's stream again but a new generation.
    for s in listeners:
        assert [generation(e) for e in s.epochs] == [0, 1, 2], (s.sub_name, s.epochs)
        assert s.epochs[0] == first_epoch
        assert s.epochs[2] == first_epoch + "-2", s.epochs
    for r in fleet.regions:
        assert edge_metric(fleet.edge(r), "wsfleet_ownership_moves_total") == 2

    # A resume from the first generation is told plainly that it cannot be recovered.
    late = fleet.edge("eu").connect("late")
    try:
        r = late.ok({"type": "subscribe", "channel": ch,
                     "since": {"epoch": first_epoch, "offset": 1}}, timeout=15)
        assert r["recovered"] is False and r["epoch"] == first_epoch + "-2", r
    finally:
        late.close()


def owner_key(tenant, ch):
    b64 = lambda s: base64.urlsafe_b64encode(s.encode()).decode().rstrip("=")  # noqa: E731
    return f"{b64(tenant)}.{b64(ch)}"


def test_the_old_owner_confirms_a_store_only_at_or_below_the_fence(fleet_factory):
    """A move taken apart, written by hand here as a mover would, in slow motion: once the
    channel's record says `moving`, edges go on storing at the old owner and read its
    marker before confirming; a store the old owner holds while its fence is not yet
    known waits; one at or below the fence is confirmed; one above it is refused, from
    either region."""
    fleet = fleet_factory()
    fleet.wait_links()
    ch = channel("us", "fenced")
    local = fleet.edge("us").connect("local")
    remote = fleet.edge("eu").connect("remote")
    nc = fleet.sc.connect("us")
    subject = f"wsf.us.gen.demo.{ch}"

    def mark(**marker):
        ack = nc.js_publish(subject, json.dumps({"gen": 1, "owner": "eu", "from": "us",
                                                 **marker}).encode())
        assert ack.get("stream") == "WSF_GEN_us", ack

    try:
        before = local.ok(publish_cmd(ch, {"i": 0}, "k0"), timeout=15)
        assert generation(before["epoch"]) == 0
        nc.stream_create("KV_WSF_OWNERS", ["$KV.WSF_OWNERS.>"], max_msgs_per_subject=1)
        record = {"tenant": "demo", "channel": ch, "owner": "eu", "gen": 1, "state": "moving",
                  "from": "us", "fence": 0, "base": 0}
        nc.js_publish(f"$KV.WSF_OWNERS.{owner_key('demo', ch)}", json.dumps(record).encode())
        for r in fleet.regions:
            wait_until(lambda: edge_metric(fleet.edge(r), "wsfleet_owner_records") == 1, 5,
                       what=f"the moving record at the edge of {r}")
        mark()   # fenced; the fence itself not read yet
        waiting = {}
        t = threading.Thread(target=lambda: waiting.update(
            r=local.request(publish_cmd(ch, {"i": 1}, "k1"), timeout=15)))
        t.start()
        # Stored, and held back until the fence is known.
        wait_until(lambda: nc.stream_info("WSF_HIST_us")["state"]["last_seq"] >
                   before["offset"], 5, what="the store in us's history")
        time.sleep(0.5)
        assert not waiting, waiting
        fence = nc.stream_info("WSF_HIST_us")["state"]["last_seq"]
        mark(fence=fence)
        t.join(10)
        assert waiting["r"].get("ok") is True and waiting["r"]["offset"] == fence, waiting
        # Above the fence: refused, from the owner's region and through the bridges.
        for client, key in ((local, "k2"), (remote, "k3")):
            r = client.request(publish_cmd(ch, {"i": key}, key), timeout=15)
            assert r.get("ok") is False, r
            assert r["error"]["code"] == "unavailable", r
            assert "moved" in r["error"]["message"], r
        # They did reach the history: the refusal is the fence, not a lost store.
        assert nc.stream_info("WSF_HIST_us")["state"]["last_seq"] == fence + 2
    finally:
        nc.close()
        local.close()
        remote.close()
    for r in fleet.regions:
        assert edge_metric(fleet.edge(r), "wsfleet_messages_dropped_total",
                           reason="owner_moved") == 1


def test_owner_commands_refuse_what_they_cannot_do(fleet_factory):
    fleet = fleet_factory()
    ch = channel("eu", "x")
    got = owner_of(fleet, ch)
    assert (got["owner"], got["gen"], got["source"]) == ("eu", 0, "pin"), got
    p = owner_cmd(fleet, "move", "--tenant", "demo", "--channel", ch, "--to", "mars",
                  "--replicas", "1")
    assert p.returncode == 2 and "'mars' is not a region" in p.stderr, (p.returncode, p.stderr)
    p = owner_cmd(fleet, "get", "--tenant", "demo", "--channel", "no namespace")
    assert p.returncode == 2, (p.returncode, p.stderr)
    p = owner_cmd(fleet, "move", "--tenant", "demo", "--channel", ch, "--to", "us",
                  "--replicas", "1", "--grace-ms", "100")
    assert p.returncode == 2 and "--grace-ms must be at least" in p.stderr, p.stderr
    # Already there: nothing to do, nothing written.
    p = owner_cmd(fleet, "move", "--tenant", "demo", "--channel", ch, "--to", "eu",
                  "--replicas", "1")
    assert p.returncode == 0 and "already owned by eu" in p.stderr, p.stderr
    p = owner_cmd(fleet, "list")
    assert p.returncode == 0 and p.stdout == "", (p.returncode, p.stdout, p.stderr)


def test_an_interrupted_move_is_finished_by_running_it_again(fleet_factory):
    fleet = fleet_factory()
    fleet.wait_links()
    ch = channel("us", "interrupted")
    client = fleet.edge("us").connect("alice")
    nc = fleet.sc.connect("us")
    try:
        assert generation(client.ok(publish_cmd(ch, {"i": 0}, "k0"), timeout=15)["epoch"]) == 0
        # A mover that stopped right after its first step: the record says `moving`.
        nc.stream_create("KV_WSF_OWNERS", ["$KV.WSF_OWNERS.>"], max_msgs_per_subject=1)
        record = {"tenant": "demo", "channel": ch, "owner": "eu", "gen": 1, "state": "moving",
                  "from": "us", "fence": 0, "base": 0}
        nc.js_publish(f"$KV.WSF_OWNERS.{owner_key('demo', ch)}", json.dumps(record).encode())
        wait_until(lambda: edge_metric(fleet.edge("us"), "wsfleet_owner_records") == 1, 5,
                   what="the moving record at the edge")
        # Publishes go on at the old owner meanwhile, each confirmed by its marker.
        r = client.ok(publish_cmd(ch, {"i": 1}, "k1"), timeout=15)
        assert generation(r["epoch"]) == 0, r
        # Another target is refused until this move is finished.
        p = owner_cmd(fleet, "move", "--tenant", "demo", "--channel", ch, "--to", "us",
                      "--replicas", "1")
        assert p.returncode == 1 and "is not finished" in p.stderr, (p.returncode, p.stderr)
        done = move(fleet, ch, "eu")
        assert (done["owner"], done["gen"], done["state"]) == ("eu", 1, "owned"), done
        assert done["fence"] >= r["offset"], done
        # The old owner's marker holds the fence; the new owner's names the generation.
        marker = nc.msg_get("WSF_GEN_us", last_by_subj=f"wsf.us.gen.demo.{ch}")["message"]
        old = json.loads(marker["data"])
        assert old == {"gen": 1, "owner": "eu", "from": "us", "fence": done["fence"]}, old

        def stored_by_new_owner():
            r = client.request(publish_cmd(ch, {"i": 2}), timeout=15)
            return r.get("ok") is True and generation(r["epoch"]) == 1

        wait_until(stored_by_new_owner, 10, what="a publish stored by the new owner")
    finally:
        nc.close()
        client.close()
