from __future__ import annotations

from agents.retention import MarkerFate, Retention


def test_cancelled_orders_expire_after_the_retention_oldest_first_each_once():
    retention = Retention(keep_s=60)
    retention.deleted(0, "a", at=100)
    retention.deleted(0, "b", at=130)
    retention.deleted(0, "a", at=150)  # seen deleted again: the first time counts
    retention.deleted(1, "c", at=100)

    assert retention.expired(0, now=159) == []
    assert retention.expired(0, now=160) == ["a"]
    assert retention.expired(0, now=160) == []
    assert retention.expired(0, now=1000) == ["b"]
    assert retention.waiting() == 1


def test_partitions_given_up_are_forgotten():
    retention = Retention(keep_s=0)
    retention.deleted(0, "a", at=1)
    retention.deleted(2, "b", at=1)

    retention.keep_only({2})

    assert retention.expired(0, now=10) == [] and retention.expired(2, now=10) == ["b"]


def test_a_marker_is_dropped_after_the_retention_and_one_without_a_time_starts_its_retention():
    retention = Retention(keep_s=60)
    assert retention.marker_fate(made_at=100, now=159) is MarkerFate.KEEP
    assert retention.marker_fate(made_at=100, now=160) is MarkerFate.DROP
    assert retention.marker_fate(made_at=0, now=160) is MarkerFate.RESTART


def test_a_sweep_is_paced_to_pass_over_a_partition_in_a_quarter_of_the_retention():
    retention = Retention(keep_s=400)  # a pass in 100 s
    assert retention.sweep_size(stored_keys=1_000_000, check_every_s=10) == 100_001
    assert retention.sweep_size(stored_keys=0, check_every_s=10) == 1000  # at least a chunk


def test_a_sweep_goes_on_where_it_stopped_and_starts_again_at_the_end():
    retention = Retention(keep_s=60)
    assert retention.sweep_from(0) is None
    retention.swept(0, "k5")
    assert retention.sweep_from(0) == "k5"
    retention.swept(0, None)
    assert retention.sweep_from(0) is None
    retention.swept(1, "k1")
    retention.keep_only({0})
    assert retention.sweep_from(1) is None
