"""agents.partition_slice: the notices a worker sends itself on the tick topic, taken by a slice."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from agents.partition_slice import SETTLE_MARGIN_S, PartitionSlice
from agents.settling import Settling, Tick
from streams.codec import Position


def notice_slice() -> PartitionSlice:
    worker = SimpleNamespace(states=None, settling=Settling(), counters=Counter(),
                             rules=SimpleNamespace(stall_after_s=60.0))
    return PartitionSlice(worker, 0, [])


def test_a_tick_carries_the_connectors_committed_position_and_the_newest_one_wins():
    part = notice_slice()
    part.take_notice({"at": 10.0, "source": [3, 400, 0]})
    part.take_notice({"at": 12.0, "source": [3, 900, 0]})
    part.take_notice({"at": 11.0, "source": [3, 600, 0]})

    assert part.tick == Tick(12.0 - SETTLE_MARGIN_S, Position(3, 900, 0))
    assert part.counters == Counter(ticks_received=3)


def test_a_notice_of_no_known_shape_is_counted_and_settles_nothing():
    part = notice_slice()
    part.take_notice({"at": 10.0})  # a tick without the connector's position

    assert part.tick is None
    assert part.counters == Counter(notices_unknown=1)
