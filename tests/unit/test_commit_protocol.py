"""streams.runtime.commit_protocol over the state cache: one changelog write per dirty key per
flush; records acknowledged only once the writes are; nothing written to a partition this worker
gave up; the floor."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from streams.runtime.commit_protocol import CommitProtocol, HandOverIncomplete, may_commit
from streams.runtime.state_cache import WriteBackCache


class ChangelogTable:
    """The table's side of the contract (streams.runtime.changelog_table), in memory: every flush's writes
    are one pending changelog batch per partition, acknowledged (or failed) by the test."""

    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}
        self.writes: list[tuple[str, bytes]] = []
        self.batches: list[asyncio.Future] = []
        self.persisted: dict[int, int] = {}
        self.owned = frozenset({0, 1, 2, 3})  # the worker's assignment
        self.app = SimpleNamespace(rebalancing=False)

    def owned_partitions(self) -> frozenset[int]:
        return self.owned

    def get_local(self, partition: int, key: str) -> bytes | None:
        return self.rows.get(key)

    def put_local(self, partition: int, items) -> list[tuple[str, bytes | None]]:
        items = list(items)
        for key, value in items:
            if value is None:
                self.rows.pop(key, None)
            else:
                self.rows[key] = value
        self.writes.extend(items)
        return items

    async def send_changelog_batches(self, partition: int, records: list) -> list[tuple[asyncio.Future, int]]:
        self.batches.append(asyncio.get_running_loop().create_future())
        return [(self.batches[-1], len(records))]

    def persist_offset(self, partition: int, offset: int) -> None:
        self.persisted[partition] = offset

    def pending(self) -> list[asyncio.Future]:
        return [batch for batch in self.batches if not batch.done()]

    def acknowledge_all(self, base_offset: int = 100) -> None:
        for batch in self.pending():
            batch.set_result(SimpleNamespace(offset=base_offset))


class HeldEvent:
    def __init__(self, partition: int = 0) -> None:
        self.message = SimpleNamespace(partition=partition, topic="t")
        self.acks = 0

    def ack(self) -> None:
        self.acks += 1


def counter_protocol(table: ChangelogTable, *, keep_clean: int = 20_000, rereads: list | None = None,
                     **options) -> CommitProtocol:
    """A commit protocol over a cache of int counters; a re-read it asks for is noted in `rereads`."""
    cache = WriteBackCache(table, encode=lambda n: str(n).encode(), decode=lambda raw: int(raw), empty=lambda: 0,
                           keep_clean=keep_clean)
    return CommitProtocol(table.app, cache, table, acknowledge=lambda event: event.ack(),
                          reread=lambda: (rereads if rereads is not None else []).append("from committed offsets"),
                          **options)


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def flush_with(commits: CommitProtocol, changes: dict[str, int], events: list[HeldEvent], partition: int = 0) -> None:
    """One batch's work: its changes put, its events held, then a flush."""
    for key, value in changes.items():
        commits.states.put(partition, key, value)
    commits.processed(partition, events)
    commits.flush()


def test_a_key_changed_by_many_batches_is_written_once_per_flush_and_read_back_in_between():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        for batch in range(3):
            cache.put(0, "order-1", cache.get(0, "order-1") + 1)
            commits.processed(0, [HeldEvent()])
        reads_before_flush = cache.get(0, "order-1")
        writes_before_flush = list(table.writes)
        written = commits.flush()
        reads_after_flush = cache.get(0, "order-1")  # clean now, equal to the table
        return reads_before_flush, writes_before_flush, written, table.writes, reads_after_flush

    reads_before, writes_before, written, writes, reads_after = asyncio.run(scenario())
    assert (reads_before, writes_before) == (3, [])
    assert (written, writes) == (1, [("order-1", b"3")])
    assert reads_after == 3


def test_an_unchanged_value_is_not_written():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        value = cache.get(0, "order-1")
        cache.put(0, "order-1", value)  # the rule returned the same state
        commits.processed(0, [HeldEvent()])
        return commits.flush(), table.writes

    assert asyncio.run(scenario()) == (0, [])


def test_held_events_are_released_only_once_every_pending_write_is_acknowledged():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        first, second = HeldEvent(), HeldEvent(1)
        cache.put(0, "order-1", 1)
        cache.put(1, "order-2", 1)
        commits.processed(0, [first])
        commits.processed(1, [second])
        commits.flush()
        await settle()
        held_while_pending = (first.acks, second.acks)
        table.batches[0].set_result(SimpleNamespace(offset=10))
        await settle()
        held_while_one_pending = (first.acks, second.acks)
        table.acknowledge_all()
        await settle()
        return held_while_pending, held_while_one_pending, (first.acks, second.acks)

    assert asyncio.run(scenario()) == ((0, 0), (0, 0), (1, 1))


def test_a_failed_write_keeps_its_events_unacknowledged_and_asks_for_a_re_read():
    async def scenario():
        table = ChangelogTable()
        rereads = []
        commits = counter_protocol(table, rereads=rereads)
        cache = commits.states
        event = HeldEvent()
        cache.put(0, "order-1", 1)
        commits.processed(0, [event])
        commits.flush()
        await settle()
        table.batches[0].set_exception(TimeoutError("no leader"))
        await settle()
        return event.acks, rereads

    assert asyncio.run(scenario()) == (0, ["from committed offsets"])


def test_after_a_failed_write_the_next_flush_writes_its_keys_again_and_releases_its_events():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        lost, reread = HeldEvent(), HeldEvent()
        cache.put(0, "order-1", 1)
        cache.drop(0, "order-2")
        commits.processed(0, [lost])
        commits.flush()
        await settle()
        table.batches[0].set_exception(ConnectionError("broker gone"))
        await settle()
        cache.put(0, "order-1", cache.get(0, "order-1"))  # the re-read event changes nothing
        commits.processed(0, [reread])
        commits.flush()
        await settle()
        table.acknowledge_all()
        await settle()
        return lost.acks, reread.acks, table.writes[2:]

    lost_acks, reread_acks, rewritten = asyncio.run(scenario())
    assert (lost_acks, reread_acks) == (0, 1)
    assert sorted(rewritten) == [("order-1", b"1"), ("order-2", None)]


def test_a_cancelled_write_fails_only_the_flushes_under_way_with_it():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        events = [HeldEvent() for _ in range(3)]
        flush_with(commits, {"order-1": 1}, [events[0]])
        cancelled = commits._last_write
        flush_with(commits, {"order-2": 1}, [events[1]])  # under way with the one cancelled
        await settle()
        cancelled.cancel()
        await settle()
        table.acknowledge_all()
        await settle()
        flush_with(commits, {"order-3": 1}, [events[2]])
        await settle()
        table.acknowledge_all()
        await settle()
        return [event.acks for event in events]

    assert asyncio.run(scenario()) == [0, 0, 1]


def failed_first_of_two_flushes(first_change, second_change) -> list:
    """Flush 1 makes `first_change`, flush 2 `second_change` (both to order-1) and is
    acknowledged; then flush 1 fails. The changelog's writes after that, in order."""
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        flush_with(commits, {"order-1": 3}, [])
        await settle()
        table.acknowledge_all()
        await settle()
        first_change(cache)
        commits.flush()
        await settle()
        second_change(cache)
        commits.flush()
        await settle()
        table.batches[-1].set_result(SimpleNamespace(offset=50))
        table.batches[-2].set_exception(ConnectionError("broker gone"))
        await settle()
        written_before = len(table.writes)
        commits.flush()
        return table.writes[written_before:], table.rows

    return asyncio.run(scenario())


def test_a_failed_drop_overtaken_by_a_written_put_is_written_again_as_the_put():
    writes, rows = failed_first_of_two_flushes(lambda cache: cache.drop(0, "order-1"),
                                               lambda cache: cache.put(0, "order-1", 7))

    assert (writes, rows) == ([("order-1", b"7")], {"order-1": b"7"})


def test_a_failed_put_overtaken_by_a_written_drop_is_written_again_as_the_drop():
    writes, rows = failed_first_of_two_flushes(lambda cache: cache.put(0, "order-1", 5),
                                               lambda cache: cache.drop(0, "order-1"))

    assert (writes, rows) == ([("order-1", None)], {})


def test_a_failed_write_of_a_partition_given_up_since_is_left_to_its_next_owner():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        flush_with(commits, {"order-1": 1}, [], partition=1)
        await settle()
        table.owned = frozenset({0})
        table.batches[0].set_exception(ConnectionError("broker gone"))
        await settle()
        return commits.flush(), table.writes[1:]

    assert asyncio.run(scenario()) == (0, [])


def test_a_hand_over_flushes_and_a_partition_given_up_is_neither_written_nor_released():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        before = HeldEvent(1)
        cache.put(1, "order-1", 1)
        commits.processed(1, [before])
        with pytest.raises(HandOverIncomplete) as incomplete:
            await commits.hand_over(timeout_s=0.01)  # partition 1 still ours here
        pending_at_hand_over = incomplete.value.pending
        table.app.rebalancing = True
        late = HeldEvent(1)  # a batch overtaken by the rebalance finishes
        cache.put(1, "order-1", 2)
        commits.processed(1, [late])
        due_while_rebalancing = commits.flush_due
        table.owned, table.app.rebalancing = frozenset({0}), False  # partition 1 went elsewhere
        table.acknowledge_all()
        commits.flush()
        await settle()
        return pending_at_hand_over, due_while_rebalancing, table.writes, before.acks, late.acks

    pending, due_while_rebalancing, writes, before_acks, late_acks = asyncio.run(scenario())
    assert pending == 1  # the hand-over flushed order-1 while this worker owned partition 1
    assert due_while_rebalancing is False
    assert writes == [("order-1", b"1")]
    assert (before_acks, late_acks) == (1, 0)


def test_a_flush_is_due_after_the_interval_or_once_enough_keys_are_dirty():
    async def scenario():
        commits = counter_protocol(ChangelogTable(), flush_interval_s=3600, max_dirty=2)
        cache = commits.states
        due_when_clean = commits.flush_due
        cache.put(0, "a", 1)
        due_with_one = commits.flush_due
        cache.put(0, "b", 1)
        return due_when_clean, due_with_one, commits.flush_due

    assert asyncio.run(scenario()) == (False, False, True)


def test_peek_answers_from_the_cache_only():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        cache.put(2, "order-1", 5)
        return cache.peek("order-1"), cache.peek("order-2")

    assert asyncio.run(scenario()) == (5, None)


def test_a_later_flush_waits_for_the_earlier_one_and_offsets_persist_per_batch():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        first, second = HeldEvent(), HeldEvent()
        flush_with(commits, {"order-1": 1, "order-2": 1}, [first])
        flush_with(commits, {"order-1": 2}, [second])
        await settle()
        table.batches[1].set_result(SimpleNamespace(offset=42))  # the later flush is acknowledged first
        await settle()
        second_before_first = second.acks
        table.batches[0].set_exception(TimeoutError("no leader"))
        await settle()
        return second_before_first, first.acks, second.acks, table.persisted

    second_before_first, first_acks, second_acks, persisted = asyncio.run(scenario())
    assert second_before_first == 0
    assert (first_acks, second_acks) == (0, 0)  # the earlier write failed: neither is committed
    assert persisted == {}


def test_acknowledged_batches_persist_their_last_offset():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        flush_with(commits, {"order-1": 1, "order-2": 1}, [HeldEvent(3)], partition=3)
        await settle()
        table.acknowledge_all(base_offset=200)
        await settle()
        return table.persisted

    assert asyncio.run(scenario()) == {3: 201}  # two records from base offset 200


class CountedReads(ChangelogTable):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get_local(self, partition: int, key: str) -> bytes | None:
        self.reads.append(key)
        return super().get_local(partition, key)


def test_a_flush_keeps_the_entries_loaded_last_clean_and_a_hand_over_forgets_them():
    async def scenario():
        table = CountedReads()
        commits = counter_protocol(table, keep_clean=4)
        cache = commits.states
        for key in ("a", "x", "y", "b", "c"):  # more than 4: the newest half of 4 stay
            cache.put(0, key, cache.get(0, key) + 1)
        commits.flush()
        table.reads.clear()
        after_flush = (cache.get(0, "b"), cache.get(0, "c"), cache.get(0, "a"))
        read_after_flush = list(table.reads)
        await settle()
        table.acknowledge_all()
        await commits.hand_over(timeout_s=1)  # every write acknowledged: no HandOverIncomplete
        table.reads.clear()
        after_hand_over = cache.get(0, "b")
        return after_flush, read_after_flush, after_hand_over, list(table.reads)

    after_flush, read_after_flush, after_hand_over, read_after_hand_over = asyncio.run(scenario())

    assert after_flush == (1, 1, 1)
    assert read_after_flush == ["a"]  # b and c were kept (loaded last), a was not
    assert (after_hand_over, read_after_hand_over) == (1, ["b"])


def test_a_dropped_key_reads_empty_at_once_and_is_deleted_by_the_next_flush_unless_set_again():
    async def scenario():
        table = ChangelogTable()
        commits = counter_protocol(table)
        cache = commits.states
        for key in ("gone", "back"):
            cache.put(0, key, 5)
        commits.flush()
        cache.drop(0, "gone")
        cache.drop(0, "back")
        cache.put(0, "back", cache.get(0, "back") + 1)  # a change after the drop
        reads = cache.get(0, "gone"), cache.get(0, "back")
        commits.flush()
        return reads, table.writes[2:], table.rows

    reads, writes, rows = asyncio.run(scenario())
    assert reads == (0, 1)
    assert sorted(writes) == [("back", b"1"), ("gone", None)]
    assert rows == {"back": b"1"}


def test_the_floor_lets_a_partition_commit_only_while_the_record_at_it_is_acknowledged():
    assert may_commit([30, 31, 32], floor=30)
    assert not may_commit([31, 32], floor=30)  # the record at the committed offset is not acknowledged
    assert not may_commit([30, 31], floor=None)  # between a revoke and the seek
    assert not may_commit([], floor=30)


class StuckConsumer:
    """The consumer's side of the safety net: which partitions are stuck, and what it was told."""

    def __init__(self, stuck: list) -> None:
        self.stuck, self.forgotten = stuck, 0

    def stuck_partitions(self, now: float) -> list:
        return self.stuck

    def resumed_at(self, tp) -> int:
        return 30

    def describe_head(self, tp) -> str:
        return "was never read by a stream"

    def forget_stuck(self) -> None:
        self.forgotten += 1


@pytest.mark.parametrize("stuck, rebalancing, rereads_asked", [
    ([SimpleNamespace(topic="orders", partition=3)], False, ["from committed offsets"]),
    ([], False, []),
    ([SimpleNamespace(topic="orders", partition=3)], True, []),  # the rebalance ends with a seek of its own
])
def test_a_stuck_partition_has_every_partition_read_again_outside_a_rebalance(stuck, rebalancing, rereads_asked):
    table, rereads = ChangelogTable(), []
    table.app = SimpleNamespace(rebalancing=rebalancing, consumer=StuckConsumer(stuck))
    counter_protocol(table, rereads=rereads).reread_if_stuck()

    assert rereads == rereads_asked
    assert table.app.consumer.forgotten == len(rereads_asked)
