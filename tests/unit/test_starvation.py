"""streams.runtime.starvation: a partition with records waiting and none delivered is found,
a quiet or a busy one never is."""

from __future__ import annotations

from streams.runtime.starvation import Starvation


def looked_at(starvation: Starvation, next_offsets: dict, log_ends: dict, now: float) -> list:
    """What the consumer's check does each second: the unmoved partitions, then the starved."""
    unmoved = starvation.unmoved(next_offsets, now)
    return starvation.starved(unmoved, next_offsets, log_ends, now) if unmoved else []


def test_a_partition_unmoved_past_the_wait_with_records_behind_its_next_offset_is_starved():
    starvation = Starvation(after_s=10)
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=0) == []
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=9.9) == []
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=10) == ["orders-0"]


def test_a_quiet_partition_at_its_log_end_is_never_starved():
    starvation = Starvation(after_s=10)
    for now in range(0, 60, 5):
        assert looked_at(starvation, {"ticks-0": 7}, {"ticks-0": 7}, now=now) == []


def test_a_partition_whose_next_offset_moves_is_not_starved_however_far_behind():
    starvation = Starvation(after_s=10)
    for step in range(12):
        assert looked_at(starvation, {"orders-0": 100 * step}, {"orders-0": 10_000}, now=step * 5) == []


def test_a_starved_partition_is_looked_at_again_only_after_another_wait():
    starvation = Starvation(after_s=10)
    looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=0)
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=10) == ["orders-0"]
    assert starvation.unmoved({"orders-0": 40}, now=15) == []
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=20) == ["orders-0"]


def test_a_partition_without_a_known_log_end_or_no_longer_assigned_is_left_alone():
    starvation = Starvation(after_s=10)
    looked_at(starvation, {"orders-0": 40, "orders-1": 5}, {}, now=0)
    assert looked_at(starvation, {"orders-0": 40, "orders-1": 5}, {"orders-0": None}, now=10) == []
    looked_at(starvation, {"orders-1": 5}, {}, now=11)  # orders-0 moved away, then came back
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=12) == []


def test_a_rebalance_starts_every_clock_again():
    starvation = Starvation(after_s=10)
    looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=0)
    starvation.clear()
    assert looked_at(starvation, {"orders-0": 40}, {"orders-0": 90}, now=10) == []
