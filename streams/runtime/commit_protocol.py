"""The commit protocol in one object: when a processed record's offset may be committed.

Processing is at-least-once, and exactness rests on one rule: an offset is committed only once
the changelog holds the effect of every record before it. `CommitProtocol` owns that rule's
steps, and its parts each do one thing: the consumer (streams.runtime.consumer) delivers every
record in order and commits nothing past an unacknowledged one (`may_commit`, the floor); the
feed (streams.runtime.feed) hands the records to the agent; the state cache
(streams.runtime.state_cache) holds the agent's writes; the changelog table
(streams.runtime.changelog_table) writes them to RocksDB and the changelog. In order:

1. `batches`: every record of a partition, in order from its committed offset (the consumer's
   gate), in batches from the feed.
2. the agent applies, decides, claims and sends (agents/), reading and writing the state cache.
3. `processed`: the batch's records are held; `flush_if_due` / `flush` writes every dirty key
   once (RocksDB, then the changelog as one producer batch per partition, flushes in order);
   `_make_durable` waits for this flush's changelog batches and every earlier flush's, then
   `_acknowledge`s its records. A failure (`ChangelogWriteFailed`) leaves them, and those of the
   flushes under way, unacknowledged, marks the keys dirty again and has every partition read
   again from its committed offset.
4. `hand_over`: before partitions move, flush and wait for every changelog write
   (`HandOverIncomplete` at the timeout). No flush runs while a rebalance is under way; the first
   after it leaves what was held for partitions given up to their next owner, unacknowledged.
5. the floor (`may_commit`, asked by the consumer's `_new_offset` at each of Faust's commits):
   a partition is committed only while the record at its committed offset is acknowledged.
6. `_make_durable` persists the changelog offsets (where a recovery here resumes) of writes
   acknowledged while the partition is still owned (the changelog table checks).
7. `reread_if_stuck`: a partition whose committed offset stays put while later records were
   delivered is read again from there (the safety net).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from streams.runtime.metrics import counters
from streams.runtime.state_cache import Flush, WriteBackCache

log = logging.getLogger(__name__)

# Step 7: a partition whose committed offset stays put this long while records past it were
# delivered is read again from it: something between the gate and the commit dropped them.
STUCK_AFTER_S = 15.0
# ... or this long, when a stream has read records after it but not the record at it (a
# delivered record lost on its way to the stream, seen after a partition is assigned).
LOST_HEAD_AFTER_S = 2.0


class CommitProtocolError(Exception):
    """A step of the commit protocol could not be completed."""


class ChangelogWriteFailed(CommitProtocolError):
    """A flush's changelog write failed or was cancelled: its records stay unacknowledged (so
    uncommitted) and are read again."""


class HandOverIncomplete(CommitProtocolError):
    """Changelog writes were still unacknowledged when partitions had to move."""

    def __init__(self, pending: int, timeout_s: float) -> None:
        super().__init__(f"{pending} state flushes still unacknowledged after {timeout_s:.0f} s")
        self.pending = pending


def may_commit(acked: list[int], floor: int | None) -> bool:
    """May a partition whose acknowledged offsets are `acked` be committed? Only from a known
    floor (its committed offset, or where this generation's reading started), and only while
    the record at the floor is acknowledged: a Kafka committed offset is the next record to read."""
    return floor is not None and bool(acked) and min(acked) == floor


class CommitProtocol:
    def __init__(self, app, states: WriteBackCache, changelog, *, flush_interval_s: float = 0.25,
                 max_dirty: int = 5000, acknowledge: Callable[[object], None] | None = None,
                 reread: Callable[[], None] | None = None) -> None:
        """`app`: the Faust app (its feed, consumer and rebalancing); `changelog`: the table
        (streams.runtime.changelog_table.BatchWrittenTable); `acknowledge`, `reread`: the consumer's,
        unless a test hands its own."""
        self.app, self.states, self.changelog = app, states, changelog
        self.flush_interval_s, self.max_dirty = flush_interval_s, max_dirty
        # Not message.decref(): the last reference's ack is what Faust commits. One record at a
        # time: taking Faust's ack lock once around a whole flush's acks was slower (the worker
        # idled more; docs/benchmarks.md).
        self._acknowledge = acknowledge or (lambda message: message.ack(app.consumer))
        self._reread = reread or (lambda: app.consumer.reread_uncommitted())
        self._held: dict[int, list] = {}  # per partition, records waiting for the next flush
        self._flushed_at = time.monotonic()
        self._writes: set[asyncio.Task] = set()  # the loop holds tasks only weakly
        self._last_write: asyncio.Task | None = None
        self._write_failures = 0  # a flush under way when one fails does not release its records
        self._submitting = asyncio.Lock()  # FIFO: flushes reach the producer in order

    def batches(self, stream, max_records: int, within_s: float):
        """Step 1: the agent's records, every partition's in order, up to `max_records` at a time."""
        return self.app.feed.batches(stream, max_records, within_s)

    def processed(self, partition: int, records: list) -> None:
        """Step 3: acknowledge these records once a later flush's writes are acknowledged."""
        held = self._held.get(partition)
        if held is None:
            self._held[partition] = list(records)
        else:
            held.extend(records)

    @property
    def flush_due(self) -> bool:
        if self.app.rebalancing:  # which partitions stay ours is not known yet
            return False
        return (self.states.dirty_count >= self.max_dirty
                or (time.monotonic() - self._flushed_at >= self.flush_interval_s
                    and (self.states.dirty_count > 0 or any(self._held.values()))))

    def flush_if_due(self) -> None:
        if self.flush_due:
            self.flush()

    def flush(self) -> int:
        """Write every dirty key once (RocksDB now, the changelog in the background); acknowledge
        the held records when the broker has this flush's writes and every earlier flush's.
        Synchronous up to the hand-off, so flushes never interleave. Returns the keys written."""
        owned = self.changelog.owned_partitions()
        for partition in [p for p in self._held if p not in owned]:
            left = self._held.pop(partition)
            if left:
                log.info("partition %d is no longer ours: %d events left to its next owner", partition, len(left))
        flush = self.states.flush(owned)
        records = [record for held in self._held.values() for record in held]
        self._held = {}
        self._flushed_at = time.monotonic()
        if flush.records or records:
            self._last_write = task = asyncio.ensure_future(
                self._make_durable(flush, records, self._last_write, self._write_failures))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)
        return flush.written

    async def _make_durable(self, flush: Flush, records: list, earlier: asyncio.Task | None,
                            failures_before: int) -> bool:
        """Steps 3 and 6 for one flush, in order: its changelog batches sent after the earlier
        flush's (changelog order = flush order) and acknowledged, every earlier flush
        acknowledged, the changelog offsets persisted, its records acknowledged (the consumer
        may then commit them). True when they were.

        A failed write leaves its records unacknowledged, and Faust would then commit nothing
        past them for as long as this worker keeps the partitions: so every partition is read
        again from its committed offset and the flush's keys are marked dirty again. A flush
        already under way then acknowledges nothing either (it may lack those keys); the
        flushes after it do as usual."""
        try:
            acks = await self._changelog_acknowledged(flush, earlier)
        except ChangelogWriteFailed as failed:
            self._write_failures += 1
            counters["changelog_write_failures"] += 1
            log.error("%s; %d events stay uncommitted and are read again", failed, len(records))
            self.states.write_again(flush.keys)
            self._reread()
            if isinstance(failed.__cause__, asyncio.CancelledError):
                raise failed.__cause__ from None
            return False
        if self._write_failures != failures_before:
            return False  # a flush under way with this one failed and asked for the re-read
        for partition, count, metadata in acks:
            self.changelog.persist_offset(partition, metadata.offset + count - 1)
        for record in records:
            self._acknowledge(record)
        return True

    async def _changelog_acknowledged(self, flush: Flush, earlier: asyncio.Task | None) -> list[tuple]:
        """Send the flush's changelog batches, in order after every earlier flush's; per batch, once
        the broker acknowledged it and every earlier flush finished: (partition, records, metadata)."""
        try:
            async with self._submitting:
                batches = [(partition, await self.changelog.send_changelog_batches(partition, records))
                           for partition, records in flush.records]
            acks = [(partition, count, await future) for partition, sent in batches for future, count in sent]
            if earlier is not None:  # its outcome is in _write_failures: a cancelled one must not cancel this
                await asyncio.wait({earlier})
        except BaseException as error:  # noqa: BLE001 - cancelled counts as failed
            raise ChangelogWriteFailed(f"changelog write failed ({type(error).__name__}: {error})") from error
        return acks

    async def hand_over(self, timeout_s: float) -> None:
        """Step 4: flush while the partitions are still ours, forget the clean entries, and wait
        for every changelog write; HandOverIncomplete if some are unacknowledged at the timeout."""
        self.flush()
        self.states.forget()  # all clean now: nothing dirty or held is lost
        if self._writes:
            await asyncio.wait(set(self._writes), timeout=timeout_s)
        if self._writes:
            raise HandOverIncomplete(len(self._writes), timeout_s)

    def reread_if_stuck(self) -> None:
        """Step 7: read every partition again from its committed offset when one is stuck (its
        committed offset stays put while later records were delivered: the consumer's
        `stuck_partitions`), saying what became of each one's first uncommitted record."""
        consumer = self.app.consumer
        if self.app.rebalancing:
            return
        stuck = consumer.stuck_partitions(time.monotonic())
        if not stuck:
            return
        log.warning("no commit for at least %.0f s past %s though records after it were delivered; reading "
                    "from the committed offsets again", LOST_HEAD_AFTER_S,
                    ", ".join(f"{tp.topic}[{tp.partition}]@{consumer.resumed_at(tp)}" for tp in stuck))
        for tp in stuck:
            log.warning("  %s[%d]: the record at the committed offset %s", tp.topic, tp.partition,
                        consumer.describe_head(tp))
        consumer.forget_stuck()
        self._reread()

    def stats(self) -> dict[str, int]:
        """The state cache's keys and dirty keys, records waiting for a flush, flushes waiting for the broker."""
        return {**self.states.stats(), "held_events": sum(len(held) for held in self._held.values()),
                "flushes_waiting": len(self._writes)}
