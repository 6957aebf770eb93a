"""A write-back cache in front of a changelogged Faust table: one changelog write per dirty
key per flush instead of one per assignment.

Faust sends a changelog record for every assignment to a table, each with its own future,
callbacks and persisted-offset write (docs/benchmarks.md has the cost). An order is touched by
several batches (its header, its details, the `emitted` notice), so writing through cost about
four changelog records per order. The cache keeps the decoded values of the keys a partition's
events touched, marks the changed ones dirty, and at each flush writes every dirty key once to
RocksDB and hands back the encoded records for the changelog. When to flush, the changelog
write and what waits for it belong to the commit protocol (streams.runtime.commit_protocol).

What the cache promises:
1. Read-your-writes: `get` answers from the cache first, then from the table, so the agent
   never sees a value older than its own last `put`.
2. A flush writes a key with the value it has at that moment; a flush in the middle of a
   batch may write effects of events not yet held. That is safe: those events are
   re-delivered if uncommitted, and applying a change twice changes nothing.
3. A flush discards what the cache holds for partitions this worker no longer owns (a batch
   overtaken by a rebalance may have put there): nothing reaches a changelog partition another
   worker owns. Within a partition still owned nothing is discarded, so state and the agent's
   in-memory view of the partition stay in step.
4. After a flush every entry is clean (equal to the table's value); those loaded last stay
   (once more than `keep_clean` are held, the newest half of them), so an order touched again
   soon (its details, the `emitted` notice) is not read back from RocksDB and decoded again.
   `forget` (at a hand-over) drops them all: a partition this worker gets back later may have
   been changed by another owner meanwhile.
Memory stays bounded: at most `keep_clean` clean entries, plus what changed since the last
flush.
"""

from __future__ import annotations

import logging
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
    dropped: set[str] = field(default_factory=set)  # dirty keys the next flush deletes


@dataclass
class Flush:
    """One flush: written to RocksDB, its changelog records still to send."""
    records: list[tuple[int, list[tuple[bytes, bytes | None]]]]  # per partition, encoded, in order
    keys: dict[int, set[str]]  # per partition, the keys written (to write again if the changelog fails)
    written: int


class WriteBackCache(Generic[V]):
    def __init__(self, table, *, encode: Callable[[V], bytes], decode: Callable[[bytes], V],
                 empty: Callable[[], V], keep_clean: int = 20_000) -> None:
        self.table = table  # a streams.runtime.changelog_table.BatchWrittenTable
        self.encode, self.decode, self.empty = encode, decode, empty
        self.keep_clean = keep_clean
        self._partitions: dict[int, _Partition[V]] = {}
        self.dirty_count = 0

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
            self.dirty_count += 1

    def drop(self, partition: int, key: str) -> None:
        """Forget the key: reads see an empty value at once; the next flush deletes it from
        the table (a tombstone in its changelog) unless a later `put` gave it a value."""
        self.put(partition, key, self.empty())
        self._partition(partition).dropped.add(key)

    def stats(self) -> dict[str, int]:
        """What the cache holds now: keys, dirty keys."""
        return {"keys": sum(len(p.values) for p in self._partitions.values()), "dirty": self.dirty_count}

    def flush(self, owned: frozenset[int]) -> Flush:
        """Write every dirty key of the `owned` partitions once to RocksDB, discarding what the
        cache holds for any other (promise 3); the records for the changelog."""
        records, keys, written = [], {}, 0
        for partition in [p for p in self._partitions if p not in owned]:
            gone = self._partitions.pop(partition)
            self.dirty_count -= len(gone.dirty)
            counters["state_dropped_with_partition"] += len(gone.dirty)
            if gone.dirty:
                log.info("partition %d is no longer ours: %d changed orders left to its next owner",
                         partition, len(gone.dirty))
        for partition, cached in self._partitions.items():
            if cached.dirty:
                records.append((partition, self.table.put_local(partition, [
                    (key, None if key in cached.dropped else self.encode(cached.values[key]))
                    for key in cached.dirty])))
            written += len(cached.dirty)
            self.dirty_count -= len(cached.dirty)
            keys[partition] = cached.dirty
            cached.dirty, cached.dropped = set(), set()
        self._forget_oldest_clean()
        counters["state_flushes"] += 1
        counters["state_writes"] += written
        return Flush(records, keys, written)

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

    def forget(self) -> None:
        """Drop every entry (all clean right after a flush): promise 4."""
        self._partitions.clear()

    def write_again(self, keys: dict[int, set[str]]) -> None:
        """Mark a failed flush's keys dirty again, each with what the table holds now (a key
        the table no longer has is written as a tombstone): the re-read of its events may
        change nothing, a change applied twice being no change, and the changelog must still
        get these values before those events are released. A key dirty now is written anyway.
        The keys of a partition this worker no longer owns are left to its next owner, which
        reads the events again (a flush drops them if it is gone by then)."""
        owned = self.table.owned_partitions()
        for partition, written in keys.items():
            if partition not in owned:
                continue
            cached = self._partition(partition)
            for key in written - cached.dirty:
                # Clean, so the cache holds what the table does: a later flush may have written
                # the key since, so its value, not the failed flush's, is what to write again.
                raw = self.table.get_local(partition, key)
                if key not in cached.values:
                    cached.values[key] = self.empty() if raw is None else self.decode(raw)
                cached.dirty.add(key)
                self.dirty_count += 1
                if raw is None:
                    cached.dropped.add(key)
