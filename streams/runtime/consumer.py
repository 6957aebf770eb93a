"""Faust's Kafka consumer, changed so that agents get every record of a partition, in order.

Found with the scale 1 -> 3 -> 1 fault test, in faust-streaming 0.15.3 (faust-streaming/faust#216
and #221 describe the same jump). A worker that keeps a partition through a rebalance can
resume *after* records it never processed: records fetched before the rebalance are dropped
with the stream buffers, the fetch position is not where the committed offset is, and the
records fetched before Faust's seek to the committed offset still arrive after it, pushing
its read offset ahead so that the re-read records below it are dropped as "already read".
The first record past such a drop looks like a hole in the partition (a compacted or
transactional topic has such holes), and Faust marks the offsets in between as done: the
next commit passes them and nothing reads them again.

The CDC and tick topics have no holes (not compacted, no transactions), so this consumer
- gates every record of an acknowledged topic: per partition it delivers the committed
  offset first (once Faust has sought there) and then only the next offset; a record past
  a hole is held back and the partition is sought back to the first missing offset;
- keeps no read offset for Faust's fetch loop, which would drop records below it and mark
  offsets done above it: commits wait for the events' acknowledgements.
Agents therefore see each partition in order from its committed offset, as Kafka promises.

Its fetch loop (`_drain_messages`, Faust's loop without read offsets) hands the records of
the completion agent's topics to its feed (streams.runtime.feed), not through Faust's conductor and
stream; other topics' records take Faust's path. It delivers directly when nothing can make
that wait: Faust wraps every delivery in `wait_first(deliver, suspend_flow)` (four tasks and
an `asyncio.wait`, most of its per-record cost) so that a delivery blocked on a full buffer
is abandoned when a rebalance suspends the flow. When the flow is active, the producer
buffer is below its bound and the feed (or every receiving stream buffer) has room, the
delivery completes without yielding, so there is nothing to abandon. A partition's fetched
records that are exactly its next ones, in a row, go to the feed in one put when it has room
for them all (what delivering each alone would do, without a gate check, a coroutine and
Faust's per-record `getmany` step each).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, Set

from faust.transport.consumer import CONSUMER_FETCHING, ensure_TP
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message

from streams.runtime.commit_protocol import LOST_HEAD_AFTER_S, STUCK_AFTER_S, may_commit
from streams.runtime.feed import Feed
from streams.runtime.metrics import counters
from streams.runtime.starvation import Starvation

log = logging.getLogger(__name__)

ANY_OFFSET = -1  # the partition's start could not be read: take the first record as it
# How long the broker may hold a fetch that finds no new record (Faust fixes 1,500 ms).
# aiokafka keeps one fetch in flight per broker and leaves out the partitions whose fetched
# records are not consumed yet, so while a backlog's records are processed the fetch in
# flight names only quiet partitions (ticks, reference topics) and the broker holds it: the
# busy partitions, consumed meanwhile, wait for it to come back before they are fetched
# again, and the agent sits idle for up to that long.
FETCH_MAX_WAIT_MS = 50


class NoReadOffsets(dict):
    """Faust's fetch loop drops records below a partition's read offset and reports holes
    above it; the gate does both from what it delivered, so no read offset is kept (a stale
    one made the loop drop the very records a seek had gone back for)."""

    def __getitem__(self, tp: TP) -> None:
        return None

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        pass

    def update(self, *args: Any, **kwargs: Any) -> None:
        pass


class _NoFeed:
    topics: frozenset[str] = frozenset()


_NO_FEED = _NoFeed()


class ShortFetchWaitThread(AIOKafkaConsumerThread):
    """Faust's consumer thread, its aiokafka consumer's broker wait FETCH_MAX_WAIT_MS."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # handed to its fetcher when it starts
        return consumer


class NoSkipConsumer(Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = NoReadOffsets()
        # Per partition, the offset its agent gets next; absent until Faust has sought to
        # the committed offset in this generation (records before that are held back).
        self._next: dict[TP, int] = {}
        self._rewinds: dict[TP | None, asyncio.Task] = {}
        self._rewound_to: dict[TP, int] = {}
        self._commit_seen: dict[TP, tuple[int, float]] = {}  # committed offset, since when
        # Per partition, where this generation's reading started: no commit may pass an
        # offset from there on that was not acknowledged.
        self._read_from: dict[TP, int] = {}
        self._starvation: Starvation[TP] = Starvation()
        # Records of the topics an agent reads through a feed go there (streams.app.feed).
        self.feed: Feed = getattr(self.app, "feed", None) or _NO_FEED

    def _new_consumer_thread(self) -> ShortFetchWaitThread:
        return ShortFetchWaitThread(self, loop=self.loop, beacon=self.beacon)

    async def on_partitions_revoked(self, revoked: Set[TP]) -> None:
        self._read_from.clear()
        await super().on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Set[TP], generation_id: int = 0) -> None:
        self._next.clear()
        self._read_from.clear()
        # Faust drops acks at the revoke; those that came after it (the commit protocol
        # acknowledges records when their changelog writes are acknowledged) are the last generation's.
        # This one reads again from the committed offsets and acknowledges for itself.
        self._acked.clear()
        self._acked_index.clear()
        self.app.monitor.tp_read_offsets.clear()  # what this generation's streams read
        await super().on_partitions_assigned(assigned, generation_id)

    async def perform_seek(self) -> None:
        await super().perform_seek()
        never_committed = []
        for tp in self.assignment():
            committed = self._committed_offset.get(tp)
            if committed is None:
                never_committed.append(tp)
            else:
                self._next[tp] = self._read_from[tp] = committed
        if never_committed:  # read from the start
            starts = await self.earliest_offsets(*never_committed)
            seeks = {}
            for tp in never_committed:
                self._next[tp] = starts.get(tp, ANY_OFFSET)
                if self._next[tp] != ANY_OFFSET:
                    self._read_from[tp] = seeks[tp] = self._next[tp]
            # A partition kept through a rebalance keeps its fetch position: fetched to its end
            # and dropped at the revoke, its records would never come again. Sought in the
            # consumer's thread: Faust's `seek` changes aiokafka's fetch buffers from this one,
            # under a fetch in progress there (aiokafka's `fetched_records` then fails with a
            # KeyError and the worker stops).
            if seeks:
                await self.seek_wait(seeks)

    def ack(self, message: Message) -> bool:
        """Faust's, for this generation's messages only. An older generation's message is
        read again from the committed offset; its ack, kept, would be refused to the new
        reading of the same offset (Faust keeps one ack per offset) and could let a commit
        vouch for the old reading."""
        if message.generation_id != self.app.consumer_generation_id:
            message.acked = True
            self._unacked_messages.discard(message)
            counters["acks_of_an_earlier_generation"] += 1
            return False
        return super().ack(message)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: Faust's, but only if every record from the committed offset
        on up to it was acknowledged (the commit protocol's floor, `may_commit`). Faust's own check lets a commit pass the record *at*
        the committed offset (it tests `min(acked) - committed > 1`, and a Kafka committed
        offset is the next record to read), and between a revoke and the seek, with no
        committed offset known, it commits whatever was acknowledged: a partition kept
        through a rebalance would be committed past records that were never processed."""
        acked = self._acked.get(tp)
        if not acked:
            return None
        floor = self._committed_offset.get(tp)
        if floor is None:
            floor = self._read_from.get(tp)
        if floor is None:  # between a revoke and the seek to the committed offsets
            return None
        if min(acked) < floor:  # acknowledged late, from an earlier generation's reading
            acked[:] = [offset for offset in acked if offset >= floor]
            self._acked_index[tp].intersection_update(acked)
        if not may_commit(acked, floor):
            return None
        return super()._new_offset(tp)

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Faust would mark `offset_from` .. `offset_to` done (unreachable without read offsets)."""

    def stuck_partitions(self, now: float) -> list[TP]:
        """Gated partitions whose committed offset has not moved for STUCK_AFTER_S although
        records past it were delivered, or for LOST_HEAD_AFTER_S when the record at it is
        lost (a stream read past it, and it is neither held nor acknowledged). The gate
        counted such records as delivered, so without a seek nothing would read them again."""
        stuck = []
        for tp, delivering in self._next.items():
            committed = self.resumed_at(tp)
            if committed is None or delivering == ANY_OFFSET or delivering <= committed:
                self._commit_seen.pop(tp, None)
                continue
            seen = self._commit_seen.get(tp)
            if seen is None or seen[0] != committed:
                self._commit_seen[tp] = (committed, now)
            elif now - seen[1] > STUCK_AFTER_S or (now - seen[1] > LOST_HEAD_AFTER_S and self._head_lost(tp)):
                stuck.append(tp)
        return stuck

    def _head_lost(self, tp: TP) -> bool:
        """A stream read records of `tp` past the committed offset, but the record at it is
        neither held by a stream nor acknowledged: it will never be. (A partition's records
        reach its stream in order, so a record read later means the head's turn has passed.)"""
        committed = self.resumed_at(tp)
        read = self.app.monitor.tp_read_offsets.get(tp)
        if committed is None or read is None or read <= committed:
            return False
        return committed not in self._acked_index.get(tp, ()) and self._held_message(tp, committed) is None

    def resumed_at(self, tp: TP) -> int | None:
        """The committed offset; on a partition the group never committed, where this
        generation's reading started (a head record lost there stalled commits for good)."""
        committed = self._committed_offset.get(tp)
        return committed if committed is not None else self._read_from.get(tp)

    def _held_message(self, tp: TP, offset: int) -> Message | None:
        for message in list(self._unacked_messages):
            if message.tp == tp and message.offset == offset:
                return message
        return None

    def forget_stuck(self) -> None:
        """Start the stuck-partition clocks again (after a re-read was asked for)."""
        self._commit_seen.clear()

    def describe_head(self, tp: TP) -> str:
        """What became of the stuck partition's first uncommitted record: acknowledged (the
        commits fail), still held (a stream read it), or never read by a stream (skipped, or
        dropped)."""
        committed = self.resumed_at(tp)
        if committed in self._acked_index.get(tp, ()):
            return "is acknowledged: the commits themselves did not go through (is the group coordinator reachable?)"
        message = self._held_message(tp, committed)
        if message is not None:
            return (f"was read by a stream and is held ({message.refcount} references, generation "
                    f"{message.generation_id}, now {self.app.consumer_generation_id})")
        read = self.app.monitor.tp_read_offsets.get(tp)
        if read is not None and read > committed:
            return f"was lost on its way to the stream, which has read up to {read}"
        return "was never read by a stream, or was dropped unacknowledged"

    async def seek_starved(self, now: float, timeout_s: float = 5.0) -> list[TP]:
        """Read every starved partition (streams.runtime.starvation) again from its next
        offset, saying what this consumer knew of it; the partitions sought. Not in a rebalance or
        a recovery (the partitions are paused on purpose until the tables are whole), nor for a
        partition held back by back-pressure (a full feed: the agent is slow, not starved)."""
        if not self._steady():
            self._starvation.clear()
            return []
        generation = self.app.consumer_generation_id
        acknowledged = self.app.topics.acks_enabled_for  # not changelogs: paused once recovered, on purpose
        gated = {tp: offset for tp, offset in self._next.items()
                 if offset != ANY_OFFSET and acknowledged(tp.topic) and not self._under_pressure(tp)}
        unmoved = self._starvation.unmoved(gated, now)
        if not unmoved:
            return []
        ends = await asyncio.wait_for(self.highwaters(*unmoved), timeout_s)
        if not self._steady() or self.app.consumer_generation_id != generation:  # a rebalance began meanwhile
            self._starvation.clear()
            return []
        starved = self._starvation.starved(unmoved, gated, ends, now)
        for tp in starved:
            counters["starved_partitions"] += 1
            log.warning("%s[%d]: nothing delivered for %.0f s though the log end (%s) is past offset %d (%s); "
                        "reading from %d again", tp.topic, tp.partition, self._starvation.after_s, ends.get(tp),
                        gated[tp], self.describe_flow(tp), gated[tp])
            self._rewind_soon(tp)
        return starved

    def _steady(self) -> bool:
        """No rebalance, no recovery, the flow on: partitions are paused only by accident."""
        return not (self.app.rebalancing or self.app.in_recovery) and self.flow_active

    def _under_pressure(self, tp: TP) -> bool:
        """Are `tp`'s deliveries waiting for room (the feed full, a stream buffer full)?"""
        return (tp.topic in self.feed.topics and self.feed.full()) or tp in self._buffered_partitions

    def describe_flow(self, tp: TP) -> str:
        """What holds `tp`'s records back, as far as this consumer knows."""
        rewind = self._rewinds.get(tp)
        facts = [
            "fetched" if tp in self._get_active_partitions() else "left out of the fetches",
            *(["paused"] if tp in self._paused_partitions else []),
            *(["its stream buffer full"] if tp in self._buffered_partitions else []),
            *(["a seek back under way"] if rewind is not None and not rewind.done() else []),
            *(["the flow suspended"] if not self.flow_active else []),
            f"{self.feed.room()} free places in the feed" if tp.topic in self.feed.topics else "",
        ]
        return ", ".join(fact for fact in facts if fact)

    def reread_uncommitted(self) -> None:
        """Seek every partition back to its committed offset: what was delivered but will not
        be committed (its state write failed) is delivered again."""
        counters["rereads_requested"] += 1
        self._rewind_soon(None)

    def committed_offset(self, tp: TP) -> int | None:
        """The offset this partition's reading resumed from or has been committed to since:
        everything before it is processed (None if the group never committed one)."""
        return self._committed_offset.get(tp)

    def next_offsets(self) -> dict[str, dict[str, int]]:
        """Per gated partition, the offset its agent gets next (for /stats)."""
        found: dict[str, dict[str, int]] = {}
        for tp, offset in sorted(self._next.items()):
            found.setdefault(tp.topic, {})[str(tp.partition)] = offset
        return found

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's fetch loop (faust/transport/consumer.py and its `getmany`), gated by
        `_in_order`, with the direct delivery described in the module docstring."""
        consumer_stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active_partitions = await self._wait_next_records(1.0)
                await self.sleep(0)  # the fetch may return at once, over and over
                if records and not self.should_stop:
                    await self._deliver_fetched(records, active_partitions)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as error:
            log.exception("Drain messages raised: %r", error)
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver_fetched(self, records: Mapping[TP, list], active_partitions: set[TP] | None) -> None:
        """One fetch's records, partition by partition, with `getmany`'s checks: stop when the
        flow is suspended or the generation changes, skip partitions no longer active. A feed
        partition's records that are its next ones, in a row, go to the feed in one put
        (`_put_run`); any other record is delivered alone (`_deliver`)."""
        app, to_message = self.app, self._to_message
        generation = app.consumer_generation_id
        since_yield = 0
        for tp, fetched in records.items():
            if not self.flow_active or app.consumer_generation_id != generation:
                return
            if active_partitions is not None and tp not in active_partitions \
                    and tp not in self._buffered_partitions:
                continue
            app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            if self._commit_every is not None and self._n_acked >= self._commit_every:
                self._n_acked = 0
                await self.commit()
            if self._put_run(tp, fetched):
                since_yield += len(fetched)
            else:
                for record in fetched:
                    if not self.flow_active or app.consumer_generation_id != generation:
                        return
                    await self._deliver(tp, to_message(tp, record))
                    since_yield += 1
                    if since_yield > 100:
                        await asyncio.sleep(0)
                        since_yield = 0
            if since_yield > 100:
                await asyncio.sleep(0)
                since_yield = 0

    def _put_run(self, tp: TP, fetched: list) -> bool:
        """Put `fetched` into the feed at once if that is what `_deliver` would do with each
        record: a feed topic's gated partition, the records exactly its next offsets in a row,
        and room for all of them. False: nothing was put."""
        feed = self.feed
        if tp.topic not in feed.topics or not self.app.topics.acks_enabled_for(tp.topic):
            return False
        expected, first = self._next.get(tp), fetched[0].offset
        if expected != first or fetched[-1].offset != first + len(fetched) - 1:
            return False  # before the seek, a hole, records delivered already: one at a time
        if feed.room() < len(fetched) or not self._delivers_at_once(tp, feed):
            return False
        to_message = self._to_message
        feed.put_many([to_message(tp, record) for record in fetched])
        self._read_from.setdefault(tp, first)
        self._next[tp] = first + len(fetched)
        return True

    async def _deliver(self, tp: TP, message: Message) -> None:
        """Hand one fetched record to its agent's feed (streams.runtime.feed) or to the streams (the
        conductor's on_message), if it is the partition's next; it counts as delivered only
        once they have it (a delivery abandoned for a flow suspension leaves the record to
        be read again)."""
        if not self._in_order(message):
            return
        feed = self.feed if tp.topic in self.feed.topics else None
        if self._delivers_at_once(tp, feed):
            if feed is not None:
                feed.put(message)
            else:
                await self.callback(message)
        else:
            delivering = feed.put_when_room(message) if feed is not None else self.callback(message)
            outcome = await self.wait_first(delivering, self.suspend_flow.wait())
            if delivering not in outcome.done:
                return
        if tp in self._next:  # a gated partition (changelogs pass ungated)
            self._read_from.setdefault(tp, message.offset)  # for a partition whose start was unknown
            self._next[tp] = message.offset + 1

    def _delivers_at_once(self, tp: TP, feed: Feed | None) -> bool:
        """True when delivering a record of `tp` cannot wait: no flow suspension, room in
        the producer buffer and in the feed or every receiving stream buffer (the
        conductor's waits)."""
        app = self.app
        if not (self.flow_active and app.flow_control.is_active()):
            return False
        buffer = app.producer.buffer
        if buffer.size > buffer.max_messages:
            return False
        if feed is not None:
            return not feed.full()
        return not any(channel.queue.full() for channel in app.topics._tp_index.get(tp, ()))

    def _in_order(self, message: Message) -> bool:
        """Is this record the next its partition's agent is to get? (`_deliver` advances.)"""
        if not self.app.topics.acks_enabled_for(message.topic):
            return True  # changelogs: read by table recovery, which counts its own offsets
        if message.generation_id != self.app.consumer_generation_id:
            # Fetched before the last rebalance's seek and handed over after it: it can sit at
            # the very offset the gate waits for, and the agent drops an earlier generation's
            # records, so delivering it would skip that offset for good. The seek reads it again.
            counters["records_of_an_earlier_generation"] += 1
            return False
        tp = ensure_TP(message.tp)
        expected = self._next.get(tp)
        if expected is None:
            counters["records_before_seek"] += 1  # fetched before the seek: read again after it
            if not self.app.rebalancing:  # a rebalance that ended without the seek
                self._rewind_soon(None)
            return False
        if expected == ANY_OFFSET or message.offset == expected:
            return True
        if message.offset > expected:
            counters["records_past_a_hole"] += 1
            self._rewind_soon(tp)
        return False  # below: delivered already in this generation

    def _rewind_soon(self, tp: TP | None) -> None:
        """Seek `tp` back to its next offset; None: every partition to its committed offset."""
        if tp not in self._rewinds:  # one at a time
            self._rewinds[tp] = asyncio.ensure_future(self._rewind(tp) if tp else self._seek_committed())

    async def _seek_committed(self) -> None:
        try:
            log.warning("records arrived before any seek to the committed offsets; seeking there now")
            await self.perform_seek()
        except Exception as error:
            log.error("could not seek to the committed offsets (%s: %s)", type(error).__name__, error, exc_info=True)
        finally:
            self._rewinds.pop(None, None)

    async def _rewind(self, tp: TP) -> None:
        try:
            while self.app.rebalancing:  # the rebalance ends with a seek of its own
                await asyncio.sleep(0.05)
            offset = self._next.get(tp)
            if offset is None or offset == ANY_OFFSET or tp not in self.assignment():
                return
            counters["rewinds"] += 1
            if self._rewound_to.get(tp) != offset:  # records fetched before the seek can repeat it
                self._rewound_to[tp] = offset
                log.warning("%s[%d]: records arrived past offset %d, which was not delivered; reading from "
                            "%d again", tp.topic, tp.partition, offset, offset)
            self.pause_partitions({tp})  # records fetched before the seek are not delivered
            try:
                await self.seek_wait({tp: offset})  # in the consumer thread
            finally:
                if not self.app.rebalancing:
                    self.resume_partitions({tp})
        except Exception as error:  # the records stay unacknowledged, so uncommitted
            log.error("%s[%d]: could not seek back to %s (%s: %s)", tp.topic, tp.partition, self._next.get(tp),
                      type(error).__name__, error, exc_info=True)
        finally:
            self._rewinds.pop(tp, None)
