from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

from batch.layers.bronze import ArchiveBatches
from batch.names import Appended
from batch.transforms.archive import cdc_records

KAFKA = "key binary, value binary, topic string, partition int, offset long, timestamp timestamp"
DEBEZIUM = (b'{"before":null,"after":{"id":"o1"},"source":{"file":"mysql-bin.000003","pos":1234,"row":0,'
            b'"ts_ms":1763800000000},"op":"c","ts_ms":1763800000250}')
AT = datetime(2026, 11, 23, 8, 0)


def test_a_debezium_record_keeps_its_text_and_its_envelope_beside(spark):
    rows = spark.createDataFrame([(b'"o1"', DEBEZIUM, "mysql.db.orders", 2, 41, AT)], KAFKA)

    [row] = cdc_records(rows).collect()

    assert (row.topic, row.partition, row.offset, row.key, row.op) == ("mysql.db.orders", 2, 41, '"o1"', "c")
    assert row.value == DEBEZIUM.decode()
    assert (row.source_file, row.source_pos, row.source_row) == ("mysql-bin.000003", 1234, 0)
    assert row.source_ts == datetime(2025, 11, 22, 8, 26, 40)
    assert row.captured_at == datetime(2025, 11, 22, 8, 26, 40, 250000)
    assert row.kafka_ts == AT and row.archived_at is not None


def test_tombstones_and_values_that_are_not_json_are_archived_as_they_came(spark):
    rows = spark.createDataFrame([(b'"o1"', None, "t", 0, 7, AT), (b"k", b"\xffnot json", "t", 0, 8, AT)], KAFKA)

    archived = {row.offset: row for row in cdc_records(rows).collect()}

    assert set(archived) == {7, 8}
    assert archived[7].value is None and archived[7].op is None
    assert archived[8].value is not None and archived[8].op is None and archived[8].source_pos is None


def test_a_micro_batch_is_appended_and_handed_on_inside_its_turn(spark, tmp_path):
    held: list[str] = []

    @contextmanager
    def turn():
        held.append("taken")
        yield
        held.append("let go")

    def after(batch_id: int, appended: Appended) -> None:
        # the append is committed by now, still inside the turn
        held.append(f"batch {batch_id}: {appended.rows} records at version {appended.version}")

    batches = ArchiveBatches(str(tmp_path / "cdc_raw"), after, turn)
    batches.query_id = "query"
    batches.started.set()
    batches(spark.createDataFrame([(b'"o1"', DEBEZIUM, "mysql.db.orders", 2, 41, AT)], KAFKA), 7)

    assert held == ["taken", "batch 7: 1 records at version 0", "let go"]
