"""Kafka records -> the archive's rows (`bronze/cdc_raw`), and each table's row changes from
them. Pure: Polars frames in and out, the envelope decoded once by `streams.codec`.

Every record is kept as it came (key and value as text), with what Debezium's envelope says
beside it; a value that is not Debezium JSON (or a tombstone) keeps nulls there. A record the
lake cannot apply (the decoder fails on it, it is too large, its row names a column no table may
have, its positions do not fit, a tombstone without a key) keeps nulls there too and says why in
`refusal`: both engines quarantine it with that reason and go on. A change of a row is identified
by its key and its source position, so a record Kafka Connect repeated at another offset counts once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from datetime import datetime
from typing import Any, NamedTuple

import orjson
import polars as pl

from batch.clocks import MAX_RECORD_BYTES
from batch.rules import (CHANGED_AT, DATETIME_COLUMNS, DATETIME_MS_RANGE, DELETED, LIFECYCLE_COLUMNS, OP, POSITION,
                         POSITION_WIDTHS, REFUSAL, ROW_OPS, quarantine_reason)
from streams.codec import Envelope, decode_envelope

UTC_MICROS = pl.Datetime("us", "UTC")
ARCHIVE_SCHEMA = {
    "topic": pl.String, "partition": pl.Int32, "offset": pl.Int64, "key": pl.String, "value": pl.String,
    "op": pl.String, "source_file": pl.String, "source_pos": pl.Int64, "source_row": pl.Int32,
    "source_ts": UTC_MICROS, "captured_at": UTC_MICROS, "kafka_ts": UTC_MICROS, "archived_at": UTC_MICROS,
    REFUSAL: pl.String,
}
# The same columns as Spark names their types (for a Spark frame of archive rows made in Python).
ARCHIVE_DDL = ("topic string, partition int, offset long, key string, value string, op string, source_file string, "
               "source_pos long, source_row int, source_ts timestamp, captured_at timestamp, kafka_ts timestamp, "
               "archived_at timestamp, refusal string")
BINLOG_FILE = re.compile(r"\.(\d+)$")
PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,127}")  # a column name both engines and Delta take as it is
RESERVED = frozenset(LIFECYCLE_COLUMNS)  # and every name starting with "_": the lane's own columns
NO_ENVELOPE = decode_envelope(None)
EARLIEST_MS, LATEST_MS = DATETIME_MS_RANGE
LONG, INT = (-(2 ** 63), 2 ** 63 - 1), (-(2 ** 31), 2 ** 31 - 1)


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


def read_envelope(key: bytes | str | None, value: bytes | None) -> tuple[Envelope, str | None]:
    """A record's envelope, or no envelope and why the lake refuses the record."""
    if value is None:
        return NO_ENVELOPE, None if key is not None else "a tombstone without a key"
    if len(value) > MAX_RECORD_BYTES:
        return NO_ENVELOPE, f"a value of {len(value):,} bytes, over the lake's {MAX_RECORD_BYTES:,}"
    try:
        envelope = decode_envelope(value)
        problem = _unappliable(envelope)
    except Exception as error:  # noqa: BLE001 - whatever a value makes the decoder do is the record's fault
        return NO_ENVELOPE, f"undecodable: {type(error).__name__}: {str(error)[:200]}"
    return (NO_ENVELOPE, problem) if problem else (envelope, None)


def _unappliable(envelope: Envelope) -> str | None:
    """Why a decoded envelope cannot become a row change, if it cannot (its positions are checked
    only when a micro-batch's columns refuse them: `_out_of_range`). On every record: kept lean."""
    committed, captured = envelope.committed_ms, envelope.captured_ms
    if committed is not None and not EARLIEST_MS <= committed <= LATEST_MS:
        return f"source.ts_ms {committed} is no time of years 1 to 9999"
    if captured is not None and not EARLIEST_MS <= captured <= LATEST_MS:
        return f"ts_ms {captured} is no time of years 1 to 9999"
    row = envelope.row
    if row is None:
        return None
    unfit = _unfit_names(tuple(row))
    if unfit is not None:
        return unfit
    for value in row.values():
        if type(value) is dict or type(value) is list:
            _as_text(value)  # raises on what no column can hold (nested beyond orjson's depth, say)
    return None


def _out_of_range(envelope: Envelope) -> str | None:
    """Why an envelope's numbers do not fit the archive's columns, if they do not."""
    for name, number, (low, high) in (("source.pos", envelope.source_pos, LONG), ("source.row", envelope.source_row, INT),
                                      ("source.ts_ms", envelope.committed_ms, LONG), ("ts_ms", envelope.captured_ms, LONG)):
        if number is not None and (number < low or number > high):
            return f"{name} {number} out of range"
    return None


@lru_cache(maxsize=1024)
def _unfit_names(names: tuple[str, ...]) -> str | None:
    """The refusal for row field names no table may have (a table's rows share their names: cached)."""
    bad = sorted(name for name in names if not PLAIN_NAME.fullmatch(name) or name in RESERVED)
    return f"row field names no table may have: {', '.join(map(repr, bad))[:200]}" if bad else None


def archive(records: Sequence[Record], archived_at: datetime) -> Archived:
    """The archive's rows of `records`, in their order."""
    read = [read_envelope(record.key, record.value) for record in records]
    try:
        return _archived(records, read, archived_at)
    except (OverflowError, TypeError):  # a number past its column: refuse those records, keep the rest
        read = [(NO_ENVELOPE, problem) if (problem := _out_of_range(envelope)) else (envelope, refusal)
                for envelope, refusal in read]
        return _archived(records, read, archived_at)


def _archived(records: Sequence[Record], read: list[tuple[Envelope, str | None]], archived_at: datetime) -> Archived:
    envelopes: list[Envelope] = [envelope for envelope, _ in read]
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
        "kafka_ts": [record.timestamp_ms if record.timestamp_ms is None
                     or DATETIME_MS_RANGE[0] <= record.timestamp_ms <= DATETIME_MS_RANGE[1] else None
                     for record in records],
        REFUSAL: [refusal for _, refusal in read],
    }
    millis = ("source_ts", "captured_at", "kafka_ts")
    rows = pl.DataFrame({name: values for name, values in columns.items()},
                        schema={name: pl.Int64 if name in millis else ARCHIVE_SCHEMA[name] for name in columns})
    rows = rows.with_columns(*(pl.from_epoch(name, "ms").dt.replace_time_zone("UTC").cast(UTC_MICROS)
                               for name in millis),
                             pl.lit(archived_at).cast(UTC_MICROS).alias("archived_at")).select(list(ARCHIVE_SCHEMA))
    return Archived(rows, [envelope.row for envelope in envelopes])


def rearchive(rows: pl.DataFrame) -> Archived:
    """Archived rows read back from the table, with their row images decoded again (an archive
    written before `refusal` existed is read through the same refusals)."""
    if REFUSAL not in rows.columns:
        refusals = [read_envelope(key, None if value is None else value.encode())[1]
                    for key, value in rows.select("key", "value").iter_rows()]
        rows = rows.with_columns(pl.Series(REFUSAL, refusals, pl.String))
    return Archived(rows, [None if value is None or refusal is not None else decode_envelope(value.encode()).row
                           for value, refusal in rows.select("value", REFUSAL).iter_rows()])


def is_row_change() -> pl.Expr:
    """A Debezium change of a row with its place in the binlog (not a tombstone, truncate or
    foreign record)."""
    return (pl.col("op").is_in(ROW_OPS) & pl.col("source_file").str.contains(BINLOG_FILE.pattern)
            & pl.col("source_pos").is_not_null() & pl.col(REFUSAL).is_null()).fill_null(False)


def unreadable(archived: Archived) -> pl.DataFrame:
    """Records that are neither a row change nor a tombstone, with the reason (`_reason`), for
    Silver's `cdc_quarantine`."""
    return (archived.rows.filter((pl.col("value").is_not_null() & ~is_row_change()) | pl.col(REFUSAL).is_not_null())
            .select("topic", "partition", "offset", "key", "value",
                    pl.sql_expr(quarantine_reason()).alias("_reason")))


def _as_text(value: Any) -> str | None:
    """A row image's value as Spark's `from_json(..., map<string,string>)` gives it."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value).decode()


def _millis(text: pl.Expr) -> pl.Expr:
    """A DATETIME's epoch milliseconds, null when it is none or no time of years 1 to 9999 (Silver's
    rules then quarantine the row)."""
    millis = text.cast(pl.Int64, strict=False)
    return pl.when(millis.is_between(*DATETIME_MS_RANGE)).then(millis)


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
    position = pl.format("{}:{}:{}", *(part.cast(pl.String).str.zfill(width) for part, width in zip(
        (file_number, pl.col("source_pos"), pl.col("source_row").fill_null(0)), POSITION_WIDTHS)))
    return (pl.concat([values, changing.select(
                pl.col("op").alias(OP), (pl.col("op") == "d").alias(DELETED), position.alias(POSITION),
                pl.col("source_ts").alias(CHANGED_AT))], how="horizontal")
            .with_columns(pl.from_epoch(_millis(pl.col(name)), "ms").dt.replace_time_zone("UTC").cast(UTC_MICROS)
                          for name in columns if name in datetimes)
            .unique([*keys, POSITION], keep="first", maintain_order=True))
