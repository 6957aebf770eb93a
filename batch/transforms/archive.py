"""The raw CDC archive's rows, from Kafka's records as Spark's Kafka source gives them. Pure.

Every record is kept as it came (key and value as text), with what Debezium's envelope says
about it pulled out beside; a value that is not Debezium JSON (or a tombstone) keeps nulls
there and is archived all the same.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def _field(json: Column, path: str) -> Column:
    return F.get_json_object(json, path)


def _millis(json: Column, path: str) -> Column:
    return F.timestamp_millis(_field(json, path).cast("long"))


def cdc_records(kafka_records: DataFrame) -> DataFrame:
    """topic, partition, offset, key, value, op, the source position (binlog file, position,
    row), when the source committed it, when Debezium read it, Kafka's timestamp, and when
    it was archived."""
    value = F.col("value").cast("string")
    return kafka_records.select(
        "topic", "partition", "offset",
        F.col("key").cast("string").alias("key"),
        value.alias("value"),
        _field(value, "$.op").alias("op"),
        _field(value, "$.source.file").alias("source_file"),
        _field(value, "$.source.pos").cast("long").alias("source_pos"),
        _field(value, "$.source.row").cast("int").alias("source_row"),
        _millis(value, "$.source.ts_ms").alias("source_ts"),
        _millis(value, "$.ts_ms").alias("captured_at"),
        F.col("timestamp").alias("kafka_ts"),
        F.current_timestamp().alias("archived_at"))
