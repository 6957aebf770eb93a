"""Kafka records -> the archive's rows (`bronze/cdc_raw`), and each table's row changes from
them. Pure: Polars frames in and out, the envelope decoded once by `streams.codec`.

Every record is kept as it came (key and value as text), with what Debezium's envelope says
beside it; a value that is not Debezium JSON (or a tombstone) keeps nulls there. A change of a
row is identified by its key and its source position, so a record Kafka Connect repeated at
another offset counts once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import polars as pl

from batch.rules import CHANGED_AT, DATETIME_COLUMNS, DELETED, OP, POSITION, ROW_OPS, TRUNCATE, UNREADABLE
from streams.codec import Envelope, decode_envelope

UTC_MICROS = pl.Datetime("us", "UTC")
ARCHIVE_SCHEMA = {
    "topic": pl.String, "partition": pl.Int32, "offset": pl.Int64, "key": pl.String, "value": pl.String,
    "op": pl.String, "source_file": pl.String, "source_pos": pl.Int64, "source_row": pl.Int32,
    "source_ts": UTC_MICROS, "captured_at": UTC_MICROS, "kafka_ts": UTC_MICROS, "archived_at": UTC_MICROS,
}
# The same columns as Spark names their types (for a Spark frame of archive rows made in Python).
ARCHIVE_DDL = ("topic string, partition int, offset long, key string, value string, op string, source_file string, "
               "source_pos long, source_row int, source_ts timestamp, captured_at timestamp, kafka_ts timestamp, "
               "archived_at timestamp")
BINLOG_FILE = re.compile(r"\.(\d+)$")


class Record(NamedTuple):
    """A Kafka record as the consumer hands it on."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None


@dataclass(frozen=True)
class Archived:
    """Records as the archive holds them (`rows`, ARCHIVE_SCHEMA) with their decoded row
    images beside (`images[i]` is row i's: after, or before for a delete; None if no row)."""

    rows: pl.DataFrame
    images: list[dict[str, Any] | None]

    def __len__(self) -> int:
        return self.rows.height

    def of_topic(self, topic: str) -> Archived:
        at = self.rows.with_row_index("_i").filter(pl.col("topic") == topic)["_i"].to_list()
        return Archived(self.rows[at], [self.images[i] for i in at])

    def fields(self) -> list[str]:
        """The field names the row images carry, each once, sorted."""
        return sorted({name for image in self.images if image for name in image})


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", errors="replace")


def archive(records: Sequence[Record], archived_at: datetime) -> Archived:
    """The archive's rows of `records`, in their order."""
    envelopes: list[Envelope] = [decode_envelope(record.value) for record in records]
    columns = {
        "topic": [record.topic for record in records],
        "partition": [record.partition for record in records],
        "offset": [record.offset for record in records],
        "key": [_text(record.key) for record in records],
        "value": [_text(record.value) for record in records],
        "op": [envelope.op for envelope in envelopes],
        "source_file": [envelope.source_file for envelope in envelopes],
        "source_pos": [envelope.source_pos for envelope in envelopes],
        "source_row": [envelope.source_row for envelope in envelopes],
        "source_ts": [envelope.committed_ms for envelope in envelopes],
        "captured_at": [envelope.captured_ms for envelope in envelopes],
        "kafka_ts": [record.timestamp_ms for record in records],
    }
    millis = ("source_ts", "captured_at", "kafka_ts")
    rows = pl.DataFrame({name: values for name, values in columns.items()},
                        schema={name: pl.Int64 if name in millis else ARCHIVE_SCHEMA[name] for name in columns})
    rows = rows.with_columns(*(pl.from_epoch(name, "ms").dt.replace_time_zone("UTC").cast(UTC_MICROS)
                               for name in millis),
                             pl.lit(archived_at).cast(UTC_MICROS).alias("archived_at"))
    return Archived(rows, [envelope.row for envelope in envelopes])


def rearchive(rows: pl.DataFrame) -> Archived:
    """Archived rows read back from the table, with their row images decoded again."""
    return Archived(rows, [decode_envelope(value.encode()).row if value is not None else None
                           for value in rows["value"].to_list()])


def is_row_change() -> pl.Expr:
    """A Debezium change of a row with its place in the binlog (not a tombstone, truncate or
    foreign record)."""
    return (pl.col("op").is_in(ROW_OPS) & pl.col("source_file").str.contains(BINLOG_FILE.pattern)
            & pl.col("source_pos").is_not_null()).fill_null(False)


def unreadable(archived: Archived) -> pl.DataFrame:
    """Records that are neither a row change nor a tombstone, with the reason (`_reason`), for
    Silver's `cdc_quarantine`."""
    return (archived.rows.filter(pl.col("value").is_not_null() & ~is_row_change())
            .select("topic", "partition", "offset", "key", "value",
                    pl.when(pl.col("op") == "t").then(pl.lit(TRUNCATE)).otherwise(pl.lit(UNREADABLE))
                    .alias("_reason")))


def _as_text(value: Any) -> str | None:
    """A row image's value as Spark's `from_json(..., map<string,string>)` gives it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def row_changes(archived: Archived, table: str, columns: Sequence[str], keys: Sequence[str]) -> pl.DataFrame:
    """The table's row changes: the source's `columns` as text (DATETIMEs as timestamps) from
    each change's row image, then `_op`, `_deleted`, `_position` and `_changed_at`. Each change
    once, however often the records hold it."""
    changing = archived.rows.with_row_index("_i").filter(is_row_change())
    images = [archived.images[i] or {} for i in changing["_i"].to_list()]
    values = pl.DataFrame({name: [_as_text(image.get(name)) for image in images] for name in columns},
                          schema={name: pl.String for name in columns})
    datetimes = DATETIME_COLUMNS.get(table, ())
    file_number = pl.col("source_file").str.extract(BINLOG_FILE.pattern, 1).cast(pl.Int64)
    position = pl.format("{}:{}:{}", file_number.cast(pl.String).str.zfill(10),  # POSITION_FORMAT's text
                         pl.col("source_pos").cast(pl.String).str.zfill(20),
                         pl.col("source_row").fill_null(0).cast(pl.String).str.zfill(6))
    return (pl.concat([values, changing.select(
                pl.col("op").alias(OP), (pl.col("op") == "d").alias(DELETED), position.alias(POSITION),
                pl.col("source_ts").alias(CHANGED_AT))], how="horizontal")
            .with_columns(pl.from_epoch(pl.col(name).cast(pl.Int64, strict=False), "ms")
                          .dt.replace_time_zone("UTC").cast(UTC_MICROS) for name in columns if name in datetimes)
            .unique([*keys, POSITION], keep="first", maintain_order=True))
