"""A write-back cache in front of a changelogged Faust table: one changelog write per dirty
key per flush instead of one per assignment.

Faust sends a changelog record for every assignment to a table (about 200 µs all in, see
docs/architecture.md). An order is touched by several batches (its header, its details, the
`emitted` notice), so writing through cost about four changelog records per order. The
cache keeps the decoded values of the keys a partition's events touched, marks the changed
ones dirty, and writes each dirty key once when it flushes (every `flush_interval_s`, or
sooner once `max_dirty` keys wait).

Guarantees, and why they hold:
1. Read-your-writes: `get` answers from the cache first, then from the table, so the agent
   never sees a value older than its own last `put`.
2. An event handed to `hold` is acknowledged (its offset may then be committed) only after
   a flush that follows it has written the dirty keys and *every* changelog write still in
   flight at that moment is acknowledged by the broker. The changelog therefore holds the
   effect of every committed event, so a partition's next owner recovers all of it (the
   same promise the per-batch save kept). A write that fails leaves its events
   unacknowledged, so uncommitted, and re-processed by the next owner.
3. A flush writes a key with the value it has at that moment; a flush in the middle of a
   batch may write effects of events not yet held. That is safe: those events are
   re-delivered if uncommitted, and applying a change twice changes nothing.
4. Before partitions move (`hand_over`), everything dirty is flushed while this worker still
   owns the partitions and the writes are awaited. No flush runs while a rebalance is under
   way; the first one after it discards what the cache holds for partitions this worker no
   longer owns (a batch overtaken by the rebalance may have put there): nothing reaches a
   changelog partition another worker owns, and those events, never acknowledged, are
   read by the new owner from the committed offset. Within a partition still owned nothing
   is discarded, so state and the agent's in-memory view of the partition stay in step.
Memory stays bounded: a flush empties the cache (every entry is clean after it); the next
batch reads back from RocksDB what it needs.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from faust.streams import _current_event

from streams.metrics import counters

log = logging.getLogger(__name__)

V = TypeVar("V")


@dataclass
class _Partition(Generic[V]):
    values: dict[str, V] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    held: list = field(default_factory=list)  # events waiting for the next flush
    anchor: Any = None  # an event of this partition: Faust writes to its changelog partition


class WriteBackCache(Generic[V]):
    def __init__(self, table, *, encode: Callable[[V], bytes], decode: Callable[[bytes], V],
                 empty: Callable[[], V], flush_interval_s: float = 0.25, max_dirty: int = 5000) -> None:
        self.table = table  # a tables.order_progress.ChangelogSendsTable
        self.encode, self.decode, self.empty = encode, decode, empty
        self.flush_interval_s, self.max_dirty = flush_interval_s, max_dirty
        self._partitions: dict[int, _Partition[V]] = {}
        self._dirty_count = 0
        self._flushed_at = time.monotonic()
        self._releases: set[asyncio.Task] = set()  # the loop holds tasks only weakly

    def _partition(self, partition: int) -> _Partition[V]:
        found = self._partitions.get(partition)
        if found is None:
            found = self._partitions[partition] = _Partition()
        return found

    def get(self, partition: int, key: str) -> V:
        """The key's newest value (the caller's current event must be of `partition`)."""
        here = self._partition(partition)
        value = here.values.get(key)
        if value is None:
            raw = self.table.get(key)
            value = here.values[key] = self.empty() if raw is None else self.decode(raw)
        return value

    def peek(self, key: str) -> V | None:
        """The key's value if the cache holds it (newer than the table's), else None."""
        for here in self._partitions.values():
            if key in here.values:
                return here.values[key]
        return None

    def put(self, partition: int, key: str, value: V) -> None:
        here = self._partition(partition)
        if here.values.get(key) is value:
            return
        here.values[key] = value
        if key not in here.dirty:
            here.dirty.add(key)
            self._dirty_count += 1

    def hold(self, partition: int, events: list) -> None:
        """Acknowledge these events once a later flush's writes are acknowledged (guarantee 2)."""
        here = self._partition(partition)
        here.held.extend(events)
        here.anchor = events[-1]

    def stats(self) -> dict[str, int]:
        """What the cache holds now: keys, dirty keys, events waiting for a flush, releases
        waiting for the broker."""
        return {"keys": sum(len(p.values) for p in self._partitions.values()), "dirty": self._dirty_count,
                "held_events": sum(len(p.held) for p in self._partitions.values()),
                "releases_waiting": len(self._releases)}

    @property
    def flush_due(self) -> bool:
        if self.table.app.rebalancing:  # which partitions stay ours is not known yet
            return False
        return (self._dirty_count >= self.max_dirty
                or (time.monotonic() - self._flushed_at >= self.flush_interval_s
                    and any(p.held or p.dirty for p in self._partitions.values())))

    def flush(self) -> int:
        """Write every dirty key once; release the held events when the broker has the
        writes. Synchronous (no await), so it never interleaves with another flush.
        Returns the number of keys written."""
        written, released = 0, []
        owned = self.table.owned_partitions()
        for partition in [p for p in self._partitions if p not in owned]:
            gone = self._partitions.pop(partition)
            self._dirty_count -= len(gone.dirty)
            counters["state_dropped_with_partition"] += len(gone.dirty)
        for partition, here in self._partitions.items():
            if here.anchor is None:  # nothing held yet: the first batch is still running
                continue
            token = _current_event.set(weakref.ref(here.anchor))
            try:
                for key in here.dirty:
                    self.table[key] = self.encode(here.values[key])
            finally:
                _current_event.reset(token)
            written += len(here.dirty)
            self._dirty_count -= len(here.dirty)
            released += here.held
            here.values, here.dirty, here.held = {}, set(), []
        self._flushed_at = time.monotonic()
        counters["state_flushes"] += 1
        counters["state_writes"] += written
        if released:
            task = asyncio.ensure_future(self._release_when_durable(released, self.table.changelog_sends_pending()))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)
        return written

    async def hand_over(self, timeout_s: float) -> int:
        """Flush while the partitions are still ours and wait for every changelog write
        (guarantee 4); how many writes are still unacknowledged at the timeout."""
        self.flush()
        return await self.table.changelog_sent(timeout_s=timeout_s)

    @staticmethod
    async def _release_when_durable(events: list, changelog_sends: list) -> None:
        results = await asyncio.gather(*changelog_sends, return_exceptions=True)
        failures = [result for result in results if isinstance(result, BaseException)]
        if failures:  # uncommitted, so the partition's next owner processes them again
            counters["changelog_send_failures"] += len(failures)
            log.error("%d changelog writes failed (%s: %s); %d events stay uncommitted", len(failures),
                      type(failures[0]).__name__, failures[0], len(events))
            return
        for event in events:
            event.ack()  # not message.decref(): the last reference's ack is what Faust commits
