"""Users across regions (wsfleet-bridge): each user's home region (rendezvous of tenant and
user over the topology, `wsfleetctl topology owner --user`) knows which regions the user is
online in, from the interest the bridges announce; a direct message sent anywhere reaches
the user's connections in every region, and a message for a user online nowhere is kept
in the inbox of the home region and delivered on the user's next connect, in whichever
region, then removed.
"""

import subprocess

import harness
from harness import wait_until
from region_util import directs
from wsclient import RecvTimeout


def send(client, to, data):
    return client.ok({"type": "send", "user": to, "data": data}, timeout=15)["delivered"]


def home_of(fleet, user):
    args = [str(harness.ctl_binary()), "topology", "owner", str(fleet.topology_path),
            "--tenant", "demo", "--user", user]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.split()[0]


def user_homed_in(fleet, region, stem):
    for i in range(200):
        name = harness.user(f"{stem}{i}")
        if home_of(fleet, name) == region:
            return name
    raise AssertionError(f"no user of stem {stem} has its home in {region}")


def send_until_online(sender, to, timeout=15):
    """The user's presence takes a moment to reach its home region: probes until a send
    answers online."""
    n = [0]

    def attempt():
        n[0] += 1
        return send(sender, to, {"probe": n[0]}) == "online"

    wait_until(attempt, timeout, what=f"{to} online across regions")


def test_direct_message_reaches_the_user_in_another_region(fleet_factory, cx):
    fleet = fleet_factory()
    fleet.wait_links()
    # The receiver's home is the sender's region: the message goes home-local lookup ->
    # the other region; then one whose home is the receiver's own region.
    for home in ("us", "eu"):
        bob_name = user_homed_in(fleet, home, f"bob-{home}-")
        bob = cx(fleet.edge("eu"), bob_name)
        alice = cx(fleet.edge("us"), harness.user("alice"))
        send_until_online(alice, bob_name)
        directs(bob, within=0.3)  # the probes
        assert send(alice, bob_name, {"hello": home}) == "online"
        assert directs(bob) == [{"hello": home}]
        bob.close()
        alice.close()


def test_user_online_in_two_regions_gets_one_copy_in_each(fleet_factory, cx):
    fleet = fleet_factory()
    fleet.wait_links()
    name = user_homed_in(fleet, "eu", "multi-")
    in_us, in_eu = cx(fleet.edge("us"), name), cx(fleet.edge("eu"), name)
    sender = cx(fleet.edge("us"), harness.user("sender"))

    def both_listen():
        send(sender, name, {"probe": True})
        got = 0
        for c in (in_us, in_eu):
            try:
                c.next_event("direct", timeout=0.5)
                got += 1
            except RecvTimeout:
                pass
        return got == 2

    wait_until(both_listen, 15, what="the user's connections in both regions")
    directs(in_us, 0.3)
    directs(in_eu, 0.3)
    assert send(sender, name, {"once": True}) == "online"
    assert directs(in_us) == [{"once": True}]
    assert directs(in_eu) == [{"once": True}]


def test_offline_user_gets_the_message_from_its_home_inbox_in_another_region(fleet_factory, cx):
    fleet = fleet_factory()
    fleet.wait_links()
    # Home in eu, sender in us, the user comes back in us: the inbox is eu's.
    name = user_homed_in(fleet, "eu", "away-")
    sender = cx(fleet.edge("us"), harness.user("sender"))
    before = fleet.bridge_metric("us", "wsfleet_bridge_publishes_total", region="eu",
                                result="acked")
    assert send(sender, name, {"kept": 1}) == "queued"
    assert send(sender, name, {"kept": 2}) == "queued"
    # Stored in the home region through the bridges.
    assert fleet.bridge_metric("us", "wsfleet_bridge_publishes_total", region="eu",
                               result="acked") == before + 2
    back = cx(fleet.edge("us"), name)
    assert directs(back, within=3) == [{"kept": 1}, {"kept": 2}]
    back.close()

    # Delivered means removed: the next connect (in the other region) finds nothing.
    def purged():
        again = cx(fleet.edge("eu"), name)
        try:
            return directs(again, within=1.5) == []
        finally:
            again.close()

    wait_until(purged, 10, what="the home inbox emptied after delivery")


def test_a_user_who_just_left_gets_the_message_from_the_inbox_not_lost(fleet_factory, cx):
    fleet = fleet_factory()
    fleet.wait_links()
    # Home in us, online in eu only: the home's view of eu lags the user's leaving, but
    # a region counts only when an edge there confirms it held the user.
    name = user_homed_in(fleet, "us", "leaver-")
    bob = cx(fleet.edge("eu"), name)
    alice = cx(fleet.edge("us"), harness.user("alice"))
    send_until_online(alice, name)
    bob.close()
    # Until the edge has seen the close, a send may still reach the closing connection
    # ("online", truthfully); from then on every send is queued, none is lost.
    answers = []

    def queued():
        answers.append(send(alice, name, {"after": len(answers)}))
        return answers[-1] == "queued"

    wait_until(queued, 10, what="a send answered queued after the user left")
    back = cx(fleet.edge("eu"), name)
    got = directs(back, within=3)
    kept = [{"after": i} for i, a in enumerate(answers) if a == "queued"]
    assert got == kept, (answers, got)
