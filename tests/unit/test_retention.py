from __future__ import annotations

from agents.retention import Retention


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
