"""Starved partitions: assigned, with records waiting in Kafka, and none delivered for a while.

The commit protocol's safety net (streams.runtime.commit_protocol, step 7) reads a partition
again when records past its committed offset were delivered but its commits stay put. A
partition the fetch loop no longer delivers from at all (paused and never resumed, left out
of the fetches, a seek that never completed) passes that net: nothing was delivered, so
nothing looks stuck, and the orders waiting on it never settle. `Starvation` finds those:
a partition whose next offset has not moved for STARVED_AFTER_S while the broker's log end
is past it. The consumer logs what it knows of each one and seeks it back to its next offset.

Pure bookkeeping: the consumer gives it the offsets and the log ends, and the clock.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Generic, TypeVar

# A busy partition's next offset moves many times a second; a quiet one (nothing written)
# has its log end at its next offset and is never starved, however long it stays put.
STARVED_AFTER_S = 10.0

Partition = TypeVar("Partition", bound=Hashable)


class Starvation(Generic[Partition]):
    def __init__(self, after_s: float = STARVED_AFTER_S) -> None:
        self.after_s = after_s
        self._since: dict[Partition, tuple[int, float]] = {}  # next offset, unchanged since

    def unmoved(self, next_offsets: Mapping[Partition, int], now: float) -> list[Partition]:
        """The partitions whose next offset has stayed put for `after_s` (their log ends are
        worth asking for); forgets partitions no longer in `next_offsets`."""
        for partition in set(self._since) - set(next_offsets):
            del self._since[partition]
        due = []
        for partition, offset in next_offsets.items():
            seen = self._since.get(partition)
            if seen is None or seen[0] != offset:
                self._since[partition] = (offset, now)
            elif now - seen[1] >= self.after_s:
                due.append(partition)
        return due

    def starved(self, unmoved: list[Partition], next_offsets: Mapping[Partition, int],
                log_ends: Mapping[Partition, int | None], now: float) -> list[Partition]:
        """Those of `unmoved` whose log end is past their next offset. Each one's clock starts
        again, starved or not, so a partition is looked at once per `after_s`."""
        starved = []
        for partition in unmoved:
            end = log_ends.get(partition)
            if end is not None and end > next_offsets[partition]:
                starved.append(partition)
            self._since[partition] = (next_offsets[partition], now)
        return starved

    def clear(self) -> None:
        """Forget every clock (a rebalance: the next offsets are this generation's)."""
        self._since.clear()
