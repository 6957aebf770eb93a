"""The fast lane's micro-batches capped by records and by bytes (batch.fastlane.source.Waiting):
every record read is handed on once, in the order it came, each micro-batch within both caps."""

from __future__ import annotations

from batch.fastlane.archive import Record
from batch.fastlane.source import Waiting


def record(offset: int, size: int) -> Record:
    return Record("mysql.shop.customers", 0, offset, b"k", b"v" * (size - 1), None)


def drained(waiting: Waiting, max_records: int, max_bytes: int) -> list[list[int]]:
    batches = []
    while waiting:
        batches.append([record.offset for record in waiting.take(max_records, max_bytes)])
    return batches


def test_a_micro_batch_stops_at_the_byte_cap_and_the_rest_wait_in_order():
    waiting = Waiting()
    for offset in range(10):
        waiting.add(record(offset, 100))
    assert waiting.bytes == 1_000 and waiting.full(max_records=100, max_bytes=1_000)
    assert not waiting.full(max_records=100, max_bytes=1_001)

    assert drained(waiting, max_records=100, max_bytes=350) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert waiting.bytes == 0 and not waiting.capped


def test_a_micro_batch_that_fills_a_cap_exactly_says_it_stopped_there():
    for max_records, max_bytes in [(3, 1_000), (100, 300)]:
        waiting = Waiting()
        for offset in range(3):
            waiting.add(record(offset, 100))

        assert len(waiting.take(max_records, max_bytes)) == 3 and not waiting
        assert waiting.capped, (max_records, max_bytes)


def test_the_record_cap_holds_too_and_a_record_over_the_byte_cap_goes_alone():
    waiting = Waiting()
    for offset, size in enumerate([10, 10, 10, 5_000, 10, 10]):
        waiting.add(record(offset, size))

    assert drained(waiting, max_records=2, max_bytes=100) == [[0, 1], [2], [3], [4, 5]]
