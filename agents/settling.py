"""When a complete order may be emitted: one worker's bookkeeping for the frontier rule.

agents.completion_rule judges one order against the orders topic's frontier. This keeps what
that judgement needs across batches, per partition number: how far the orders topic has
been processed (its newest binlog position and next offset), the complete orders that
wait to settle (with their newest detail and since when), and the orders this worker has
sent whose confirmation is not yet recorded (they are not judged again meanwhile).
Pure: no I/O, no Faust; the worker (agents.completion_worker) owns the one instance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from streams.codec import Position


@dataclass
class PartitionWatch:
    """What this worker knows of one partition number's orders topic."""

    partition: int
    frontier: Position | None = None  # newest orders position processed
    next_offset: int | None = None  # orders offset after the last one processed in an unbroken run
    details_next: int | None = None  # the same for order_details
    details_past_gap: bool = False  # an order_details record after an unprocessed one was read
    unsettled: dict[str, tuple[Position | None, float]] = field(default_factory=dict)  # id -> (newest, since)


class Tick(NamedTuple):
    """A quiet partition's settle tick: its orders topic was processed to the log end it had at
    `checked_at`, and before that the connector had committed `source` (every change before
    it in Kafka, streams.runtime.connect_offsets)."""

    checked_at: float
    source: Position


class SliceView(NamedTuple):
    """What a partition's slice is judged against (Settling.close_slice)."""

    ready: set[str]
    frontier: Position | None
    details_gap: bool


class Settling:
    def __init__(self) -> None:
        self.watches: dict[int, PartitionWatch] = {}
        self.in_flight: set[str] = set()  # sent by this worker, confirmation not yet recorded

    def watch(self, partition: int) -> PartitionWatch:
        found = self.watches.get(partition)
        if found is None:
            found = self.watches[partition] = PartitionWatch(partition)
        return found

    def read(self, partition: int, is_orders: bool, offset: int, resumed_from: int | None) -> bool:
        """Count a record of the orders topic (`is_orders`) or of order_details as processed,
        tombstones and dead letters too (the tick's caught-up check compares the next offset
        with the partition's log end), but only in an unbroken run from where reading resumed
        (the committed offset): a record that never reached the stream (see
        streams.runtime.consumer) must hold the frontier back until it is read again, or an
        order would settle before that change is applied. False for a record after such a
        gap: an orders change there must not move the frontier, and an order_details record
        there (an unprocessed detail change before it, say a quantity update) holds every
        emission of the partition (`details_gap`) until the missing record is read again."""
        watch = self.watch(partition)
        if is_orders:
            watch.next_offset, past_gap = _run_step(watch.next_offset, resumed_from, offset)
            return not past_gap
        before = watch.details_next
        watch.details_next, past_gap = _run_step(before, resumed_from, offset)
        if past_gap or watch.details_next != before:
            watch.details_past_gap = past_gap
        return not past_gap

    def close_slice(self, partition: int, frontier: Position | None, tick: Tick | None) -> SliceView:
        """A slice of the partition was applied, its orders changes in an unbroken run up to
        `frontier`: what its orders are judged against. `ready`: the waiting orders that
        settle now, their newest detail behind the frontier, or waiting since before a tick's
        caught-up check with their newest detail before the position it vouches for (an order
        whose send failed has none: it was settled when sent, and waits only for a tick).

        A topic's log end alone would not do: Connect retries each partition's batch on its
        own, so an earlier orders change can reach Kafka after a later detail."""
        watch = self.watch(partition)
        if frontier is not None and (watch.frontier is None or frontier > watch.frontier):
            watch.frontier = frontier
        ready = {order_id for order_id, (newest, since) in watch.unsettled.items()
                 if (newest is not None and watch.frontier is not None and newest <= watch.frontier)
                 or (tick is not None and since <= tick.checked_at and (newest is None or newest < tick.source))}
        return SliceView(ready, watch.frontier, watch.details_past_gap)

    def wait(self, partition: int, order_id: str, newest: Position | None, now: float) -> None:
        """A complete order waits to settle; its clock restarts when a newer detail arrived,
        as a tick only vouches for what was read before its check."""
        watch = self.watch(partition)
        previous = watch.unsettled.get(order_id)
        since = previous[1] if previous is not None and previous[0] == newest else now
        watch.unsettled[order_id] = (newest, since)

    def settled(self, partition: int, order_id: str) -> None:
        """The order needs no more waiting: emitted, deleted, or no longer complete."""
        self.watch(partition).unsettled.pop(order_id, None)

    def sent(self, partition: int, order_id: str) -> None:
        self.in_flight.add(order_id)
        self.settled(partition, order_id)

    def send_failed(self, partition: int, order_id: str, now: float) -> None:
        """The send was not acknowledged: its claim goes stale and is resolved; until then
        the order waits, with no detail position (only a tick settles it)."""
        self.in_flight.discard(order_id)
        self.watch(partition).unsettled[order_id] = (None, now)

    def emitted(self, partition: int, order_id: str) -> None:
        self.in_flight.discard(order_id)
        self.settled(partition, order_id)

    def keep_only(self, partitions: set[int]) -> None:
        """Forget partitions this worker no longer owns: a send that failed after its partition
        moved must not leave a watch behind, whose tick would vouch for a partition another
        worker is reading (its next owner recovers those orders)."""
        for partition in set(self.watches) - partitions:
            del self.watches[partition]

    def waiting_partitions(self) -> list[int]:
        return [partition for partition, watch in self.watches.items() if watch.unsettled]

    def processed_offset(self, partition: int, committed: int | None) -> int | None:
        """The orders offset after the last one processed; before the first, the committed
        offset reading resumed from. Never the fetch position: records fetched but still
        waiting in the stream buffers are not processed, and a tick vouching for them would
        settle an order before a header change committed ahead of its newest detail is
        applied (an order raised from 2 to 3 products would go out with 2)."""
        processed = self.watch(partition).next_offset
        return committed if processed is None else processed

    def details_processed_offset(self, partition: int, committed: int | None) -> int | None:
        """As processed_offset, for order_details."""
        processed = self.watch(partition).details_next
        return committed if processed is None else processed

    def unsettled_count(self) -> int:
        return sum(len(watch.unsettled) for watch in self.watches.values())

    def restart(self, waiting: Iterable[tuple[int, str, Position | None]], now: float) -> None:
        """After a recovery: forget everything, then wait for these (partition, order id,
        newest detail). A confirmation still on its way finds its claim ours and live, so
        forgetting `in_flight` sends nothing twice."""
        self.watches.clear()
        self.in_flight.clear()
        for partition, order_id, newest in waiting:
            self.watch(partition).unsettled[order_id] = (newest, now)


def _run_step(next_offset: int | None, resumed_from: int | None, offset: int) -> tuple[int | None, bool]:
    """One record of a partition read: the unbroken run's new next offset (it starts where
    reading resumed), and whether the record lies past a gap. A record below the run's end
    is a re-read: counted already, nothing changes."""
    expected = next_offset if next_offset is not None else resumed_from
    if expected is not None and offset > expected:
        return next_offset, True
    if expected is None or offset == expected:
        return offset + 1, False
    return next_offset, False
