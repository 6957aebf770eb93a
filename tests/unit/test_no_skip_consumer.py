"""streams.runtime.consumer: each partition reaches the agents in order from its committed offset."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.structs import ConsumerRecord
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message
from mode.services import WaitResults

from streams.app import app
from streams.runtime.consumer import ANY_OFFSET, FETCH_MAX_WAIT_MS, NoSkipConsumer

ORDERS_3 = TP("mysql.project_db.orders", 3)


@pytest.fixture
def gate(monkeypatch):
    """A fresh consumer whose deliveries and rewinds are recorded instead of performed."""
    delivered, rewinds = [], []

    async def agent_side(message) -> None:
        delivered.append(message.offset)

    async def rebalance(*_) -> None: ...

    consumer = app.transport.create_consumer(callback=agent_side, on_partitions_revoked=rebalance,
                                             on_partitions_assigned=rebalance)
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: topic == ORDERS_3.topic)
    monkeypatch.setattr(consumer, "_rewind_soon", rewinds.append)
    app.flow_control.resume()  # as a started worker's; suspended again below

    def fetch(*offsets: int, tp: TP = ORDERS_3, generation: int | None = None) -> None:
        generation = app.consumer_generation_id if generation is None else generation

        async def fetch_loop() -> None:
            for offset in offsets:
                await consumer._deliver(tp, SimpleNamespace(tp=tp, topic=tp.topic, offset=offset,
                                                            generation_id=generation))
        asyncio.run(fetch_loop())

    yield SimpleNamespace(consumer=consumer, fetch=fetch, delivered=delivered, rewinds=rewinds)
    app.flow_control.suspend()


def test_the_app_consumes_with_the_no_skip_consumer():
    assert isinstance(app.consumer, NoSkipConsumer)


def test_records_fetched_before_the_seek_to_the_committed_offset_are_held_back(gate, monkeypatch):
    monkeypatch.setattr(app, "rebalancing", True)  # the seek comes at the rebalance's end
    gate.fetch(40, 41)

    assert gate.delivered == []
    assert gate.rewinds == []


def test_records_after_a_rebalance_that_ended_without_a_seek_make_one(gate):
    gate.fetch(40, 41)

    assert gate.delivered == []
    assert gate.rewinds == [None, None]  # None: seek every partition to its committed offset


def test_a_partition_is_delivered_from_its_committed_offset_in_order(gate):
    gate.consumer._next[ORDERS_3] = 5  # Faust sought to the committed offset 5
    gate.fetch(3, 5, 6, 9, 10, 7, 5, 8, 9)

    assert gate.delivered == [5, 6, 7, 8, 9]
    assert gate.rewinds == [ORDERS_3, ORDERS_3]  # 9 and 10 arrived past the missing 7


def test_a_record_fetched_before_the_rebalance_is_not_delivered_and_the_gate_waits_for_it_again(gate, monkeypatch):
    monkeypatch.setattr(app, "consumer_generation_id", 8)
    gate.consumer._next[ORDERS_3] = 5  # the seek at the end of generation 8's rebalance
    gate.fetch(5, 6, generation=7)  # fetched before that seek, arriving after it
    stale = (list(gate.delivered), gate.consumer._next[ORDERS_3])
    gate.fetch(5, 6)  # the seek's own reading

    assert stale == ([], 5)
    assert gate.delivered == [5, 6]


def test_a_partition_never_committed_starts_at_its_first_record(gate):
    gate.consumer._next[ORDERS_3] = ANY_OFFSET
    gate.fetch(12, 13)

    assert gate.delivered == [12, 13]


def test_changelog_records_pass_ungated(gate):
    gate.fetch(7, 3, tp=TP("orderpipe-order_progress-changelog", 3))

    assert gate.delivered == [7, 3]


def test_a_record_is_delivered_directly_only_when_nothing_can_make_the_delivery_wait(gate, monkeypatch):
    consumer = gate.consumer
    stream_buffer = SimpleNamespace(full=lambda: False)
    monkeypatch.setitem(app.topics._tp_index, ORDERS_3, [SimpleNamespace(queue=stream_buffer)])
    free = consumer._delivers_at_once(ORDERS_3, None)

    monkeypatch.setattr(stream_buffer, "full", lambda: True)
    stream_buffer_full = consumer._delivers_at_once(ORDERS_3, None)
    monkeypatch.setattr(stream_buffer, "full", lambda: False)

    bound = app.producer.buffer.max_messages
    monkeypatch.setattr(app.producer.buffer, "max_messages", -1)
    producer_buffer_full = consumer._delivers_at_once(ORDERS_3, None)
    monkeypatch.setattr(app.producer.buffer, "max_messages", bound)

    consumer.stop_flow()  # a rebalance began
    flow_suspended = consumer._delivers_at_once(ORDERS_3, None)

    assert (free, stream_buffer_full, producer_buffer_full, flow_suspended) == (True, False, False, False)


def test_a_record_for_a_feed_waits_only_when_the_feed_is_full(gate):
    consumer = gate.consumer
    feed = SimpleNamespace(full=lambda: False)
    room = consumer._delivers_at_once(ORDERS_3, feed)
    feed.full = lambda: True
    full = consumer._delivers_at_once(ORDERS_3, feed)

    assert (room, full) == (True, False)


def test_records_of_the_feeds_topics_go_to_the_feed_in_order_and_others_to_the_streams(gate, monkeypatch):
    fed = []
    feed = SimpleNamespace(topics=frozenset({ORDERS_3.topic}), full=lambda: False, put=lambda m: fed.append(m.offset))
    monkeypatch.setattr(gate.consumer, "feed", feed)
    gate.consumer._next[ORDERS_3] = 5
    gate.fetch(5, 7, 6)
    gate.fetch(1, tp=TP("orderpipe-order_progress-changelog", 3))

    assert (fed, gate.delivered) == ([5, 6], [1])


class RecordingFeed:
    """The feed as the fetch loop sees it: which records came in one put, which alone."""

    def __init__(self, room: int = 1000) -> None:
        self.topics, self.free = frozenset({ORDERS_3.topic}), room
        self.runs: list[list[int]] = []
        self.alone: list[int] = []

    def room(self) -> int:
        return self.free

    def full(self) -> bool:
        return self.free <= 0

    def put_many(self, messages) -> None:
        self.runs.append([m.offset for m in messages])

    def put(self, message) -> None:
        self.alone.append(message.offset)


def fetched(*offsets: int, tp: TP = ORDERS_3) -> list[ConsumerRecord]:
    return [ConsumerRecord(tp.topic, tp.partition, offset, 0, 0, b"k", b"v", None, 1, 1, ()) for offset in offsets]


@pytest.fixture
def fetch_loop(gate, monkeypatch):
    """The loop's handling of one fetch, `{tp: records}`, into a RecordingFeed."""
    feed = RecordingFeed()
    monkeypatch.setattr(gate.consumer, "feed", feed)
    monkeypatch.setattr(gate.consumer, "highwater", lambda tp: 0)  # the Kafka consumer's figure

    def deliver(records) -> None:
        asyncio.run(gate.consumer._deliver_fetched(records, None))
    return SimpleNamespace(consumer=gate.consumer, feed=feed, deliver=deliver, rewinds=gate.rewinds)


def test_a_partitions_fetched_run_of_next_records_goes_to_the_feed_in_one_put(fetch_loop):
    fetch_loop.consumer._next[ORDERS_3] = 5
    fetch_loop.deliver({ORDERS_3: fetched(5, 6, 7)})
    fetch_loop.deliver({ORDERS_3: fetched(8, 9)})

    assert (fetch_loop.feed.runs, fetch_loop.feed.alone) == ([[5, 6, 7], [8, 9]], [])
    assert fetch_loop.consumer._next[ORDERS_3] == 10
    assert fetch_loop.consumer._read_from[ORDERS_3] == 5


@pytest.mark.parametrize(("offsets", "alone", "rewound"), [
    ((3, 4, 5, 6), [5, 6], []),  # some delivered already in this generation
    ((5, 6, 8, 9), [5, 6], [ORDERS_3, ORDERS_3]),  # a hole after 6
    ((6, 7), [], [ORDERS_3, ORDERS_3]),  # past the offset the gate waits for
])
def test_a_fetched_run_that_is_not_exactly_the_next_records_is_gated_one_record_at_a_time(fetch_loop, offsets, alone,
                                                                                          rewound):
    fetch_loop.consumer._next[ORDERS_3] = 5
    fetch_loop.deliver({ORDERS_3: fetched(*offsets)})

    assert (fetch_loop.feed.runs, fetch_loop.feed.alone, fetch_loop.rewinds) == ([], alone, rewound)


def test_a_run_goes_in_one_put_only_when_the_feed_has_room_for_all_of_it(fetch_loop):
    fetch_loop.consumer._next[ORDERS_3] = 5
    fetch_loop.feed.free = 2
    put = fetch_loop.consumer._put_run(ORDERS_3, fetched(5, 6, 7))

    assert (put, fetch_loop.feed.runs, fetch_loop.consumer._next[ORDERS_3]) == (False, [], 5)


def test_a_partition_before_the_seek_gets_nothing_in_one_put(fetch_loop, monkeypatch):
    monkeypatch.setattr(app, "rebalancing", True)
    fetch_loop.deliver({ORDERS_3: fetched(5, 6)})

    assert (fetch_loop.feed.runs, fetch_loop.feed.alone) == ([], [])


def test_a_fetch_stops_at_a_new_generation_and_its_later_partitions_are_read_again(fetch_loop, monkeypatch):
    orders_4 = TP(ORDERS_3.topic, 4)
    monkeypatch.setattr(app.topics, "acks_enabled_for", lambda topic: True)
    fetch_loop.consumer._next.update({ORDERS_3: 5, orders_4: 0})
    put_many = fetch_loop.feed.put_many

    def put_then_rebalance(messages) -> None:
        put_many(messages)
        app.consumer_generation_id += 1  # a rebalance while the loop yields

    monkeypatch.setattr(app, "consumer_generation_id", 3)
    monkeypatch.setattr(fetch_loop.feed, "put_many", put_then_rebalance)
    fetch_loop.deliver({ORDERS_3: fetched(5, 6), orders_4: fetched(0, 1, tp=orders_4)})

    assert fetch_loop.feed.runs == [[5, 6]]
    assert fetch_loop.consumer._next[orders_4] == 0


def hole_then_commit(add_gap, tp: TP) -> int | None:
    """Records 3-4 processed, 5-8 never delivered, 9-10 processed: the offset Faust would commit."""
    consumer = app.consumer
    consumer._committed_offset[tp] = 3
    asyncio.run(add_gap(consumer, tp, 5, 9))  # what the fetch loop calls when 9 follows 4
    consumer._acked[tp].extend([3, 4, 9, 10])
    return consumer._new_offset(tp)


def test_the_commit_stops_at_the_first_offset_not_delivered():
    assert hole_then_commit(NoSkipConsumer._add_gap, TP("mysql.project_db.order_details", 3)) == 5


def test_faust_alone_would_commit_past_the_records_it_never_delivered():
    # why streams.runtime.consumer exists: records 5-8 would never be read again
    assert hole_then_commit(Consumer._add_gap, TP("mysql.project_db.order_details", 2)) > 8


def test_a_delivery_abandoned_for_a_flow_suspension_is_delivered_when_the_record_comes_again(gate):
    consumer = gate.consumer
    consumer._next[ORDERS_3] = 5

    async def suspension_wins(delivering, suspended):
        """mode's race as it ends when a rebalance suspends the flow first: the delivery,
        still waiting for room in the stream buffer, is cancelled."""
        delivering.close()
        suspended.close()
        return WaitResults([suspended], [None], False)

    async def abandoned_then_read_again() -> None:
        consumer.stop_flow()
        consumer.wait_first = suspension_wins
        await consumer._deliver(ORDERS_3, SimpleNamespace(tp=ORDERS_3, topic=ORDERS_3.topic, offset=5,
                                                          generation_id=app.consumer_generation_id))
        del consumer.wait_first  # mode's own again
        consumer.resume_flow()
        for offset in (5, 6):  # read again after the rebalance's seek
            await consumer._deliver(ORDERS_3, SimpleNamespace(tp=ORDERS_3, topic=ORDERS_3.topic, offset=offset,
                                                              generation_id=app.consumer_generation_id))

    asyncio.run(abandoned_then_read_again())
    assert gate.delivered == [5, 6]


def test_the_app_names_the_faust_release_its_runtime_was_proven_with():
    from streams.runtime.order_pipe_app import PROVEN_FAUST, faust_version_warning

    assert faust_version_warning(PROVEN_FAUST) is None
    assert "0.15.9" in faust_version_warning("0.15.9") and "fault suite" in faust_version_warning("0.15.9")


def test_a_partition_whose_commit_stays_behind_what_was_delivered_is_read_again(gate):
    consumer = gate.consumer
    other = TP("mysql.project_db.order_details", 3)
    consumer._next.update({ORDERS_3: 40, other: 12})
    consumer._committed_offset.update({ORDERS_3: 30, other: 12})  # other: everything delivered is committed

    first_look = consumer.stuck_partitions(now=100.0)
    still_within = consumer.stuck_partitions(now=110.0)
    stuck_later = consumer.stuck_partitions(now=116.0)
    consumer._committed_offset[ORDERS_3] = 35  # a commit moves: the clock starts again
    after_a_commit = consumer.stuck_partitions(now=120.0)

    assert (first_look, still_within, stuck_later, after_a_commit) == ([], [], [ORDERS_3], [])


def test_the_committed_offset_is_where_reading_resumed_until_a_commit_moves_it(gate):
    consumer = gate.consumer
    never = consumer.committed_offset(ORDERS_3)
    consumer._committed_offset[ORDERS_3] = 30  # as perform_seek records it

    assert (never, consumer.committed_offset(ORDERS_3)) == (None, 30)


def test_no_commit_passes_a_record_that_was_not_acknowledged(gate):
    consumer = gate.consumer
    consumer._committed_offset[ORDERS_3] = 30  # the next record to read is 30
    consumer._acked[ORDERS_3].extend([31, 32])  # 30 was never processed

    past_the_head = consumer._new_offset(ORDERS_3)  # Faust's own check returns 33 here
    consumer._acked[ORDERS_3].insert(0, 30)
    consumer._acked_index[ORDERS_3].update({30, 31, 32})
    once_acknowledged = consumer._new_offset(ORDERS_3)

    assert (past_the_head, once_acknowledged) == (None, 33)


def test_between_a_revoke_and_the_seek_nothing_is_committed_and_late_acks_below_the_seek_are_dropped(gate):
    consumer = gate.consumer
    consumer._read_from.clear()
    consumer._committed_offset.pop(ORDERS_3, None)  # as Faust's revoke leaves it
    consumer._acked[ORDERS_3].extend([50, 51, 52])  # released late: 40-49 were never processed

    before_the_seek = consumer._new_offset(ORDERS_3)
    consumer._committed_offset[ORDERS_3] = 52  # the seek (perform_seek records it)
    after_the_seek = consumer._new_offset(ORDERS_3)

    assert (before_the_seek, after_the_seek) == (None, 53)
    assert consumer._acked[ORDERS_3] == []


def test_a_stuck_partition_says_what_became_of_its_head_record(gate):
    consumer = gate.consumer
    consumer._committed_offset[ORDERS_3] = 30
    never_read = consumer.describe_head(ORDERS_3)
    head = SimpleNamespace(tp=ORDERS_3, offset=30, refcount=1, generation_id=4)
    consumer._unacked_messages = [head]  # a stream tracked it and has not acknowledged it

    still_held = consumer.describe_head(ORDERS_3)
    consumer._acked_index[ORDERS_3].add(30)  # acknowledged, but no commit went through

    assert "never read by a stream" in never_read
    assert "held (1 references, generation 4" in still_held
    assert "commits themselves did not go through" in consumer.describe_head(ORDERS_3)


def test_a_head_record_lost_on_its_way_to_the_stream_is_read_again_within_seconds(gate, monkeypatch):
    consumer = gate.consumer
    monkeypatch.setattr(consumer.app.monitor, "tp_read_offsets", {})
    consumer._next[ORDERS_3] = 40
    consumer._committed_offset[ORDERS_3] = 30
    consumer.app.monitor.tp_read_offsets[ORDERS_3] = 29  # the stream has not reached 30 yet

    first_look = consumer.stuck_partitions(now=100.0)
    not_reached = consumer.stuck_partitions(now=103.0)
    consumer.app.monitor.tp_read_offsets[ORDERS_3] = 35  # it read past 30, which it never got
    lost = consumer.stuck_partitions(now=103.0)
    described = consumer.describe_head(ORDERS_3)
    consumer._acked_index[ORDERS_3].add(30)  # acknowledged: the commit is only late
    acknowledged = consumer.stuck_partitions(now=103.0)

    assert (first_look, not_reached, lost, acknowledged) == ([], [], [ORDERS_3], [])
    assert "lost on its way to the stream, which has read up to 35" in described


def test_acks_of_an_earlier_generation_are_not_counted(gate):
    consumer = gate.consumer
    generation = consumer.app.consumer_generation_id
    consumer._committed_offset[ORDERS_3] = 30
    old, current = (Message(ORDERS_3.topic, ORDERS_3.partition, 30, 0.0, 0, {}, b"k", b"v", None,
                            generation_id=generation_of) for generation_of in (generation - 1, generation))

    counted_old, counted_current = consumer.ack(old), consumer.ack(current)

    assert (counted_old, counted_current) == (False, True)
    assert consumer._acked[ORDERS_3] == [30]


def test_an_assignment_forgets_acks_that_arrived_after_the_revoke(gate, monkeypatch):
    consumer = gate.consumer
    monkeypatch.setattr(consumer.app.monitor, "tp_read_offsets", {ORDERS_3: 12})
    consumer._acked[ORDERS_3].extend([50, 51])  # released late, after Faust's revoke dropped acks
    consumer._acked_index[ORDERS_3].update({50, 51})

    async def assign() -> None:
        await consumer.on_partitions_assigned({ORDERS_3}, generation_id=7)

    asyncio.run(assign())
    assert (dict(consumer._acked), dict(consumer._acked_index)) == ({}, {})
    assert consumer.app.monitor.tp_read_offsets == {}


def test_a_partition_never_committed_is_watched_from_where_its_reading_started(gate, monkeypatch):
    consumer = gate.consumer
    monkeypatch.setattr(consumer.app.monitor, "tp_read_offsets", {})
    consumer._committed_offset.pop(ORDERS_3, None)  # the group never committed this partition
    consumer._read_from[ORDERS_3] = 0  # perform_seek read it from its start
    consumer._next[ORDERS_3] = 40
    consumer.app.monitor.tp_read_offsets[ORDERS_3] = 35  # the stream read past 0, which it never got

    first_look = consumer.stuck_partitions(now=100.0)
    lost = consumer.stuck_partitions(now=103.0)
    described = consumer.describe_head(ORDERS_3)
    consumer._read_from.pop(ORDERS_3)  # before the seek nothing is known: nothing to judge
    unknown = consumer.stuck_partitions(now=120.0)

    assert (first_look, lost, unknown) == ([], [ORDERS_3], [])
    assert "lost on its way to the stream, which has read up to 35" in described


def test_the_workers_kafka_consumer_lets_the_broker_hold_an_empty_fetch_only_briefly():
    """Faust builds the aiokafka consumer with a 1,500 ms broker wait; ours asks for less
    (why: streams.runtime.consumer), and is otherwise Faust's."""

    async def rebalance(*_) -> None: ...

    async def built():
        consumer = app.transport.create_consumer(callback=rebalance, on_partitions_revoked=rebalance,
                                                 on_partitions_assigned=rebalance)
        kafka = consumer._thread._create_worker_consumer(app.transport)
        try:
            return kafka._fetch_max_wait_ms, kafka._group_id
        finally:
            await kafka.stop()

    wait_ms, group = asyncio.run(built())
    assert wait_ms == FETCH_MAX_WAIT_MS <= 100
    assert group == app.conf.id


def test_a_partition_never_committed_is_sought_to_its_start_at_each_assignment_in_the_consumer_s_thread(
        gate, monkeypatch):
    """Kept through a rebalance, its fetch position survives (at the log end once a backlog was
    fetched, its records dropped at the revoke): only a seek brings them back. Through
    `seek_wait`, which runs in the consumer's thread: Faust's `seek` would change aiokafka's
    fetch buffers from this thread while a fetch reads them in that one."""
    consumer, committed_tp = gate.consumer, TP("mysql.project_db.orders", 1)
    sought = []

    async def no_faust_seek(self) -> None: ...

    async def starts(*tps: TP) -> dict:
        return {tp: 0 for tp in tps}

    async def seek_wait(partitions: dict) -> None:
        sought.append(dict(partitions))

    async def seek_from_this_thread(tp: TP, offset: int) -> None:
        raise AssertionError(f"{tp} sought from the calling thread")

    monkeypatch.setattr(Consumer, "perform_seek", no_faust_seek)  # Faust's: no commit, no seek
    monkeypatch.setattr(consumer, "assignment", lambda: {ORDERS_3, committed_tp})
    monkeypatch.setattr(consumer, "earliest_offsets", starts)
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(consumer, "seek", seek_from_this_thread)
    consumer._committed_offset.pop(ORDERS_3, None)
    consumer._committed_offset[committed_tp] = 30
    asyncio.run(consumer.perform_seek())

    assert sought == [{ORDERS_3: 0}]
    assert (consumer._next[ORDERS_3], consumer._next[committed_tp]) == (0, 30)


def test_a_starved_partition_is_sought_back_to_its_next_offset_and_a_changelog_never(gate, monkeypatch):
    changelog = TP("orderpipe-order_progress-changelog", 3)
    gate.consumer._next.update({ORDERS_3: 5, changelog: 0})  # the changelog: paused after recovery
    log_ends = {ORDERS_3: 9, changelog: 40}

    async def highwaters(*tps):
        return {tp: log_ends[tp] for tp in tps}
    monkeypatch.setattr(gate.consumer, "highwaters", highwaters)
    monkeypatch.setattr(app, "rebalancing", False)

    assert asyncio.run(gate.consumer.seek_starved(now=0)) == []
    assert asyncio.run(gate.consumer.seek_starved(now=10)) == [ORDERS_3]
    assert gate.rewinds == [ORDERS_3]

    gate.consumer._next[ORDERS_3] = 9  # read to its log end since
    assert asyncio.run(gate.consumer.seek_starved(now=30)) == []
    assert gate.rewinds == [ORDERS_3]


def test_no_partition_is_starved_in_a_recovery_or_while_the_feed_is_full(gate, monkeypatch):
    gate.consumer._next[ORDERS_3] = 5

    async def highwaters(*tps):
        return {tp: 9 for tp in tps}
    monkeypatch.setattr(gate.consumer, "highwaters", highwaters)
    monkeypatch.setattr(app, "rebalancing", False)
    monkeypatch.setattr(app, "in_recovery", True)  # the tables' changelogs read, the partitions paused on purpose
    assert [asyncio.run(gate.consumer.seek_starved(now=now)) for now in (0, 10, 20)] == [[], [], []]

    monkeypatch.setattr(app, "in_recovery", False)
    monkeypatch.setattr(gate.consumer, "feed", SimpleNamespace(topics={ORDERS_3.topic}, full=lambda: True))
    assert [asyncio.run(gate.consumer.seek_starved(now=now)) for now in (30, 40, 50)] == [[], [], []]
    assert gate.rewinds == []


def test_a_rebalance_that_begins_while_the_log_ends_are_asked_for_seeks_nothing(gate, monkeypatch):
    gate.consumer._next[ORDERS_3] = 5
    monkeypatch.setattr(app, "rebalancing", False)
    asked: list = []

    async def highwaters_then_a_rebalance(*tps):
        asked.append(tps)
        monkeypatch.setattr(app, "rebalancing", True)  # the group rebalances while the broker answers
        return {tp: 9 for tp in tps}
    monkeypatch.setattr(gate.consumer, "highwaters", highwaters_then_a_rebalance)

    assert asyncio.run(gate.consumer.seek_starved(now=0)) == []
    assert asyncio.run(gate.consumer.seek_starved(now=10)) == []
    assert asked == [(ORDERS_3,)] and gate.rewinds == []
