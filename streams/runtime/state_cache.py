"""A write-back cache in front of a changelogged Faust table: one changelog write per dirty
key per flush instead of one per assignment.

Faust sends a changelog record for every assignment to a table, each with its own future,
callbacks and persisted-offset write (docs/benchmarks.md has the cost). An order is touched by several batches (its header, its details, the
`emitted` notice), so writing through cost about four changelog records per order. The
cache keeps the decoded values of the keys a partition's events touched, marks the changed
ones dirty, and writes each dirty key once when it flushes (every `flush_interval_s`, or
sooner once `max_dirty` keys wait).

Guarantees, and why they hold:
1. Read-your-writes: `get` answers from the cache first, then from the table, so the agent
   never sees a value older than its own last `put`.
2. An event handed to `hold` is acknowledged (its offset may then be committed) only after
   a flush that follows it has written the dirty keys (streams.runtime.changelog: RocksDB, then the
   changelog as one producer batch per partition) and the broker has acknowledged that
   flush's batches and every earlier flush's. The changelog therefore holds the effect of
   every committed event, so a partition's next owner recovers all of it. A write that
   fails leaves its events, and those of the flushes already under way, unacknowledged, so
   uncommitted: they are read again. Its keys are dirty again, so the next flush writes
   them even if the events, applied a second time, change nothing; from that flush on,
   events are released again.
3. A flush writes a key with the value it has at that moment; a flush in the middle of a
   batch may write effects of events not yet held. That is safe: those events are
   re-delivered if uncommitted, and applying a change twice changes nothing. Flushes
   reach the producer one after another, so the changelog keeps each key's writes in order.
4. Before partitions move (`hand_over`), everything dirty is flushed while this worker still
   owns the partitions and the writes are awaited. No flush runs while a rebalance is under
   way; the first one after it discards what the cache holds for partitions this worker no
   longer owns (a batch overtaken by the rebalance may have put there): nothing reaches a
   changelog partition another worker owns, and those events, never acknowledged, are
   read by the new owner from the committed offset. Within a partition still owned nothing
   is discarded, so state and the agent's in-memory view of the partition stay in step.
5. After a flush every entry is clean (equal to the table's value); those loaded last stay
   (once more than `keep_clean` are held, the newest half of them), so an order touched
   again soon (its details, the `emitted` notice) is not read back from RocksDB and decoded
   again. A hand-over forgets them all: a partition this worker gets back later may have
   been changed by another owner meanwhile.
Memory stays bounded: at most `keep_clean` clean entries, plus what changed since the last
flush.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from streams.runtime.metrics import counters

log = logging.getLogger(__name__)

V = TypeVar("V")


@dataclass
class _Partition(Generic[V]):
    values: dict[str, V] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    held: list = field(default_factory=list)  # events waiting for the next flush
    dropped: set[str] = field(default_factory=set)  # dirty keys the next flush deletes


class WriteBackCache(Generic[V]):
    def __init__(self, table, *, encode: Callable[[V], bytes], decode: Callable[[bytes], V],
                 empty: Callable[[], V], flush_interval_s: float = 0.25, max_dirty: int = 5000,
                 keep_clean: int = 20_000,
                 on_write_failure: Callable[[], None] = lambda: None,
                 release: Callable[[object], None] = lambda held: held.ack()) -> None:
        self.table = table  # a streams.runtime.changelog.BatchWrittenTable
        self.release = release  # acknowledges a held record (its offset may be committed)
        self.on_write_failure = on_write_failure  # e.g. the consumer re-reads from committed offsets
        self.encode, self.decode, self.empty = encode, decode, empty
        self.flush_interval_s, self.max_dirty, self.keep_clean = flush_interval_s, max_dirty, keep_clean
        self._partitions: dict[int, _Partition[V]] = {}
        self._dirty_count = 0
        self._flushed_at = time.monotonic()
        self._writes: set[asyncio.Task] = set()  # the loop holds tasks only weakly
        self._last_write: asyncio.Task | None = None
        self._write_failures = 0  # a flush under way when one fails does not release its events
        self._submitting = asyncio.Lock()  # FIFO: flushes reach the producer in order

    def _partition(self, partition: int) -> _Partition[V]:
        found = self._partitions.get(partition)
        if found is None:
            found = self._partitions[partition] = _Partition()
        return found

    def get(self, partition: int, key: str) -> V:
        """The key's newest value."""
        cached = self._partition(partition)
        value = cached.values.get(key)
        if value is None:
            raw = self.table.get_local(partition, key)
            value = cached.values[key] = self.empty() if raw is None else self.decode(raw)
        return value

    def peek(self, key: str) -> V | None:
        """The key's value if the cache holds it (newer than the table's), else None."""
        for cached in self._partitions.values():
            if key in cached.values:
                return cached.values[key]
        return None

    def put(self, partition: int, key: str, value: V) -> None:
        cached = self._partition(partition)
        if cached.values.get(key) is value:
            return
        cached.values[key] = value
        if cached.dropped:
            cached.dropped.discard(key)
        if key not in cached.dirty:
            cached.dirty.add(key)
            self._dirty_count += 1

    def drop(self, partition: int, key: str) -> None:
        """Forget the key: reads see an empty value at once; the next flush deletes it from
        the table (a tombstone in its changelog) unless a later `put` gave it a value."""
        self.put(partition, key, self.empty())
        self._partition(partition).dropped.add(key)

    def hold(self, partition: int, events: list) -> None:
        """Acknowledge these events once a later flush's writes are acknowledged (guarantee 2)."""
        self._partition(partition).held.extend(events)

    def stats(self) -> dict[str, int]:
        """What the cache holds now: keys, dirty keys, events waiting for a flush, releases
        waiting for the broker."""
        return {"keys": sum(len(p.values) for p in self._partitions.values()), "dirty": self._dirty_count,
                "held_events": sum(len(p.held) for p in self._partitions.values()),
                "flushes_waiting": len(self._writes)}

    @property
    def flush_due(self) -> bool:
        if self.table.app.rebalancing:  # which partitions stay ours is not known yet
            return False
        return (self._dirty_count >= self.max_dirty
                or (time.monotonic() - self._flushed_at >= self.flush_interval_s
                    and any(p.held or p.dirty for p in self._partitions.values())))

    def flush(self) -> int:
        """Write every dirty key once (RocksDB now, the changelog in the background); release
        the held events when the broker has this flush's writes and every earlier flush's.
        Synchronous up to the hand-off, so flushes never interleave. Returns the keys written."""
        written, outgoing, released, flushed = 0, [], [], {}
        owned = self.table.owned_partitions()
        for partition in [p for p in self._partitions if p not in owned]:
            gone = self._partitions.pop(partition)
            self._dirty_count -= len(gone.dirty)
            counters["state_dropped_with_partition"] += len(gone.dirty)
            if gone.dirty or gone.held:
                log.info("partition %d is no longer ours: %d changed orders and %d events left to its next owner",
                         partition, len(gone.dirty), len(gone.held))
        for partition, cached in self._partitions.items():
            if cached.dirty:
                outgoing.append((partition, self.table.put_local(partition, [
                    (key, None if key in cached.dropped else self.encode(cached.values[key]))
                    for key in cached.dirty])))
            written += len(cached.dirty)
            self._dirty_count -= len(cached.dirty)
            released += cached.held
            flushed[partition] = cached.dirty
            cached.dirty, cached.held, cached.dropped = set(), [], set()
        self._forget_oldest_clean()
        self._flushed_at = time.monotonic()
        counters["state_flushes"] += 1
        counters["state_writes"] += written
        if outgoing or released:
            self._last_write = task = asyncio.ensure_future(self._write_then_release(
                outgoing, released, self._last_write, flushed, self._write_failures))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        return written

    def _forget_oldest_clean(self) -> None:
        """Once a partition holds more than its share of `keep_clean` entries (every entry is
        clean right after a flush), keep the newest half of its share: dicts keep insertion
        order, oldest first. (Trimming to the whole share at every flush would copy a share's
        entries at every flush.)"""
        if not self._partitions:
            return
        share = self.keep_clean // len(self._partitions)
        for cached in self._partitions.values():
            if len(cached.values) > share:
                cached.values = dict(list(cached.values.items())[len(cached.values) - share // 2:])

    async def hand_over(self, timeout_s: float) -> int:
        """Flush while the partitions are still ours, forget the clean entries, and wait for
        every changelog write (guarantees 4 and 5); how many flushes are still
        unacknowledged at the timeout."""
        self.flush()
        self._partitions.clear()  # all clean now: nothing dirty or held is lost
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=timeout_s)
        return len(self._writes)

    async def _write_then_release(self, outgoing: list[tuple[int, list]], events: list,
                                  earlier: asyncio.Task | None, flushed: dict[int, set[str]],
                                  failures_before: int) -> bool:
        """Send this flush's changelog batches after the earlier flush's (changelog order =
        flush order), then acknowledge its events once all of them and every earlier flush
        are acknowledged by the broker. True when the events were released.

        A failed or cancelled write leaves its events unacknowledged, and Faust would then
        commit nothing past them for as long as this worker keeps the partitions; so the
        consumer is asked to read every partition again from its committed offset
        (`on_write_failure`) and the flush's keys are marked dirty again (`_write_again`).
        A flush already under way then releases nothing either (it may lack those keys);
        the flushes after it release as usual."""
        try:
            async with self._submitting:
                batches = [(partition, await self.table.send_changelog_batches(partition, records))
                           for partition, records in outgoing]
            acks = [(partition, count, await future) for partition, sent in batches for future, count in sent]
            if earlier is not None:  # its outcome is in _write_failures: a cancelled one must not cancel this
                await asyncio.wait({earlier})
        except BaseException as error:  # noqa: BLE001 - cancelled counts as failed
            self._write_failures += 1
            counters["changelog_write_failures"] += 1
            log.error("changelog write failed (%s: %s); %d events stay uncommitted and are read again",
                      type(error).__name__, error, len(events))
            self._write_again(flushed)
            self.on_write_failure()
            if isinstance(error, asyncio.CancelledError):
                raise
            return False
        if self._write_failures != failures_before:
            return False  # a flush under way with this one failed and asked for the re-read
        for partition, count, metadata in acks:
            self.table.persist_offset(partition, metadata.offset + count - 1)
        for event in events:
            self.release(event)
        return True

    def _write_again(self, flushed: dict[int, set[str]]) -> None:
        """Mark a failed flush's keys dirty again, each with what the table holds now (a key
        the table no longer has is written as a tombstone): the re-read of its events may
        change nothing, a change applied twice being no change, and the changelog must still
        get these values before those events are released. A key dirty now is written anyway.
        The keys of a partition this worker no longer owns are left to its next owner, which
        reads the events again (a flush drops them if it is gone by then)."""
        owned = self.table.owned_partitions()
        for partition, keys in flushed.items():
            if partition not in owned:
                continue
            cached = self._partition(partition)
            for key in keys - cached.dirty:
                # Clean, so the cache holds what the table does: a later flush may have written
                # the key since, so its value, not the failed flush's, is what to write again.
                raw = self.table.get_local(partition, key)
                if key not in cached.values:
                    cached.values[key] = self.empty() if raw is None else self.decode(raw)
                cached.dirty.add(key)
                self._dirty_count += 1
                if raw is None:
                    cached.dropped.add(key)
