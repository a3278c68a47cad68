"""The "nothing lost" oracle (nats_cluster.DeliveryOracle) fed with synthetic histories:
it must see loss, reordering and duplicates, and stay quiet on a clean run."""

import pytest

from nats_cluster import DeliveryOracle


def _clean(n=5, subscribers=("s1", "s2")):
    o = DeliveryOracle()
    for sub in subscribers:
        o.subscriber(sub)
    for seq in range(1, n + 1):
        o.published("p1", seq, offset=seq)
    for sub in subscribers:
        for seq in range(1, n + 1):
            o.received(sub, seq, "p1", seq)
    return o


def test_clean_history_is_all_delivered():
    o = _clean()
    report = o.classify()
    for sub in ("s1", "s2"):
        assert report[sub]["delivered"] == [("p1", i) for i in range(1, 6)]
        assert all(not report[sub][k] for k in report[sub] if k != "delivered")
    assert o.problems() == []
    o.assert_nothing_lost()


def test_acked_and_never_received_is_lost():
    o = _clean(subscribers=("s1",))
    o.published("p1", 6, offset=6)
    o.published("p2", 1, offset=7)
    r = o.classify()["s1"]
    assert r["lost"] == [("p1", 6), ("p2", 1)]
    assert any("2 lost" in p for p in o.problems())
    with pytest.raises(AssertionError, match="lost"):
        o.assert_nothing_lost()


def test_unacked_publish_is_not_lost_but_may_arrive():
    o = _clean(subscribers=("s1",))
    o.published("p1", 6, acked=False)      # timed out: maybe stored, maybe not
    o.published("p1", 7, acked=False)
    o.received("s1", 6, "p1", 6)           # it was stored after all
    r = o.classify()["s1"]
    assert r["lost"] == []
    assert r["unacked_delivered"] == [("p1", 6)]
    o.assert_nothing_lost()


def test_messages_before_a_subscribers_start_are_not_expected():
    o = DeliveryOracle()
    for seq in range(1, 6):
        o.published("p1", seq, offset=seq)
    o.subscriber("late", since=3)          # joined after offset 3
    o.received("late", 4, "p1", 4)
    assert o.classify()["late"]["lost"] == [("p1", 5)]
    o.received("late", 5, "p1", 5)
    o.assert_nothing_lost()


def test_lower_offset_after_a_higher_one_is_reordered():
    o = DeliveryOracle()
    o.subscriber("s1")
    for seq in range(1, 4):
        o.published("p1", seq, offset=seq)
    for off in (1, 3, 2):
        o.received("s1", off, "p1", off)
    r = o.classify()["s1"]
    assert r["reordered"] == [(2, ("p1", 2))]
    assert r["lost"] == []
    with pytest.raises(AssertionError, match="reordered"):
        o.assert_nothing_lost()


def test_publisher_sequence_going_back_is_reordered_even_with_rising_offsets():
    # The server stored p1's 2nd message before its 1st (offsets rise, seqs do not).
    o = DeliveryOracle()
    o.subscriber("s1")
    o.published("p1", 2, offset=10)
    o.published("p1", 1, offset=11)
    o.received("s1", 10, "p1", 2)
    o.received("s1", 11, "p1", 1)
    assert o.classify()["s1"]["reordered"] == [(11, ("p1", 1))]


def test_interleaved_publishers_are_not_reordered():
    o = DeliveryOracle()
    o.subscriber("s1")
    order = [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("b", 3), ("a", 3)]
    for off, (pub, seq) in enumerate(order, start=1):
        o.published(pub, seq, offset=off)
        o.received("s1", off, pub, seq)
    o.assert_nothing_lost()


def test_same_offset_twice_is_a_redelivery_not_a_duplicate():
    o = _clean(subscribers=("s1",))
    o.received("s1", 3, "p1", 3)           # a resume replayed offset 3
    r = o.classify()["s1"]
    assert r["redelivered"] == [(3, ("p1", 3))]
    assert r["duplicate"] == [] and r["reordered"] == []
    o.assert_nothing_lost()


def test_one_id_at_two_offsets_is_a_duplicate():
    o = _clean(subscribers=("s1",))
    o.received("s1", 6, "p1", 5)           # stored twice (a retry without dedup)
    r = o.classify()["s1"]
    assert r["duplicate"] == [(("p1", 5), 5, 6)]
    with pytest.raises(AssertionError, match="duplicate"):
        o.assert_nothing_lost()
    o.assert_nothing_lost(allow_duplicates=True)


def test_unknown_ids_conflicts_and_offset_mismatches_are_reported():
    o = DeliveryOracle()
    o.subscriber("s1")
    o.published("p1", 1, offset=1)
    o.published("p1", 2, offset=2)
    o.received("s1", 1, "p1", 1)
    o.received("s1", 1, "p1", 2)           # offset 1 now carries another message
    o.received("s1", 3, "p1", 2)           # ack said offset 2
    o.received("s1", 4, "ghost", 1)        # nobody published this
    r = o.classify()["s1"]
    assert r["conflict"] == [(1, ("p1", 1), ("p1", 2))]
    assert r["offset_mismatch"] == [(("p1", 2), 2, 3)]
    assert r["unknown"] == [(4, ("ghost", 1))]
    problems = "\n".join(o.problems())
    for kind in ("conflict", "offset_mismatch", "unknown"):
        assert kind in problems


def test_loss_is_per_subscriber():
    o = _clean(n=3, subscribers=("s1",))
    o.subscriber("s2")
    o.received("s2", 1, "p1", 1)
    o.received("s2", 3, "p1", 3)
    report = o.classify()
    assert report["s1"]["lost"] == []
    assert report["s2"]["lost"] == [("p1", 2)]


def test_acked_without_offset_is_expected_everywhere():
    o = DeliveryOracle()
    o.subscriber("s1", since=100)
    o.published("p1", 1)                   # acked, offset unknown
    assert o.classify()["s1"]["lost"] == [("p1", 1)]


def test_recording_one_id_twice_is_a_test_bug():
    o = DeliveryOracle()
    o.published("p1", 1, offset=1)
    with pytest.raises(AssertionError):
        o.published("p1", 1, offset=2)
