"""Row changes from the raw CDC archive (batch.layers.bronze's rows): Debezium's envelope -> one
row per change of a source row, in the source's order. Pure.

A change is identified by its source position (binlog file number, position, row in the
event) and its key: Kafka Connect repeats records after a restart at other offsets, and the
same change read twice must count once. Snapshot reads (`r`) are inserts; a delete (`d`)
carries its row's last image (`before`), marked deleted.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch.rules import (CHANGED_AT, DATETIME_COLUMNS, DELETED, FIRST_LOAD_POSITION, INITIAL_SNAPSHOT,  # noqa: F401
                         OP, POSITION, POSITION_FORMAT, REFUSAL, ROW_OPS, DATETIME_MS_RANGE, TRUNCATE, UNREADABLE, envelope_paths,
                         extra_columns, position_text, quarantine_reason)
from batch.transforms.common import latest_per_key

ROW_TEXT = "map<string,string>"


def position(file: Column, pos: Column, row: Column) -> Column:
    """The change's place in the binlog as text whose order is the binlog's order."""
    file_number = F.regexp_extract(file, r"\.(\d+)$", 1).cast("long")
    return F.format_string(POSITION_FORMAT, file_number, pos, F.coalesce(row, F.lit(0)))


def is_row_change(archived: DataFrame) -> Column:
    """A Debezium change of a row with its place in the binlog (not a tombstone, truncate or
    foreign record)."""
    return (F.col("op").isin(*ROW_OPS) & F.col("source_file").rlike(r"\.\d+$")
            & F.col("source_pos").isNotNull() & ~refused(archived))


def envelope_part(part: str) -> Column:
    """An envelope's `part` (`after`, `source.snapshot`) as JSON text, in either of its shapes."""
    return F.coalesce(*(F.get_json_object("value", path) for path in envelope_paths(part)))


def refused(archived: DataFrame) -> Column:
    """Records the archiver refused (the reason in the archive's `refusal`)."""
    return F.col(REFUSAL).isNotNull() if REFUSAL in archived.columns else F.lit(False)


def tombstones(archived: DataFrame) -> Column:
    """Debezium's null-valued record after a delete (for log compaction): expected, no change."""
    return F.col("value").isNull() & ~refused(archived)


def unreadable(archived: DataFrame) -> DataFrame:
    """Records that are neither a row change nor a tombstone, with the reason, for the
    quarantine: topic, partition, offset, key, value, `_reason`."""
    if REFUSAL not in archived.columns:  # an archive written before refusals were recorded
        archived = archived.withColumn(REFUSAL, F.lit(None).cast("string"))
    return (archived.filter(~tombstones(archived) & ~F.coalesce(is_row_change(archived), F.lit(False)))
            .select("topic", "partition", "offset", "key", "value", F.expr(quarantine_reason()).alias("_reason")))


def row_changes(archived: DataFrame, table: str, columns: Sequence[str], keys: Sequence[str]) -> DataFrame:
    """The table's row changes: the source's `columns` (text, DATETIMEs as timestamps) from
    the row image (`before` for a delete), then `_op`, `_deleted`, `_position` and
    `_changed_at`. Each change once, however often the archive holds it."""
    image = F.from_json(F.when(F.col("op") == "d", envelope_part("before")).otherwise(envelope_part("after")),
                        ROW_TEXT)
    datetimes = DATETIME_COLUMNS.get(table, ())

    def column(name: str) -> Column:
        text = image[name]
        if name not in datetimes:
            return text
        millis = text.cast("long")  # no time of years 1 to 9999 is null, as in the fast lane
        return F.when(millis.between(*DATETIME_MS_RANGE), F.timestamp_millis(millis))

    return (archived.filter(is_row_change(archived))
            .select(*[column(name).alias(name) for name in columns],
                    F.col("op").alias(OP), (F.col("op") == "d").alias(DELETED),
                    position(F.col("source_file"), F.col("source_pos"), F.col("source_row")).alias(POSITION),
                    F.col("source_ts").alias(CHANGED_AT))
            .dropDuplicates([*keys, POSITION]))


def per_topic(archived: DataFrame) -> DataFrame:
    """Per topic: its records, those that are no row change (nor a tombstone), and the field
    names its row images carry (`fields`, each once, sorted): one pass over the records."""
    readable = F.coalesce(is_row_change(archived), F.lit(False)) | tombstones(archived)
    image = F.from_json(F.coalesce(envelope_part("after"), envelope_part("before")), ROW_TEXT)
    names = F.when(F.col("op").isin(*ROW_OPS), F.map_keys(image))
    return archived.groupBy("topic").agg(
        F.count("*").alias("records"), F.count_if(~readable).alias("unreadable"),
        F.array_sort(F.array_distinct(F.flatten(F.collect_set(names)))).alias("fields"))


def newest_per_key(changes: DataFrame, keys: Sequence[str], position_column: str = POSITION) -> DataFrame:
    """Each key's newest change, by source position."""
    return latest_per_key(changes, keys, [F.col(position_column).desc()])


def newer_than_stored(changes: DataFrame, stored: DataFrame, keys: Sequence[str],
                      position_column: str = POSITION, earliest: str | None = None) -> DataFrame:
    """The changes past the position the table already holds for their key (`stored`: keys
    and the position column): a replayed or late-read older change must not undo a newer one.
    `earliest`, a column of both: the stored value kept where it is earlier (a row's first commit)."""
    held = stored.select(*keys, F.col(position_column).alias("_held"),
                         *([F.col(earliest).alias("_held_earliest")] if earliest else []))
    newer = (changes.join(held, list(keys), "left")
             .filter(F.col("_held").isNull() | (F.col(position_column) > F.col("_held"))))
    if earliest:
        newer = newer.withColumn(earliest, F.least(earliest, "_held_earliest")).drop("_held_earliest")
    return newer.drop("_held")


def reaches_back(archived: DataFrame) -> bool:
    """Whether the archive holds the source from its beginning: it holds records of the
    connector's initial snapshot (the rest of the snapshot follows in later batches, so a
    first batch cut by `maxOffsetsPerTrigger` needs no JDBC copy), and it has every partition
    from offset 0 (Kafka's retention cut none of it before it was archived)."""
    snapshot_began = (archived.filter(envelope_part("source.snapshot").isin(*INITIAL_SNAPSHOT))
                      .limit(1).count())
    cut = (archived.groupBy("topic", "partition").agg(F.min("offset").alias("first"))
           .filter(F.col("first") > 0).limit(1).count())
    return bool(snapshot_began) and not cut


def snapshot_changes(rows: DataFrame, table: str, columns: Sequence[str]) -> DataFrame:
    """A JDBC snapshot's rows shaped as `row_changes` gives them, each placed before every
    change in the archive, so any change the archive holds for the key wins over it; their
    commit time is unknown (null)."""
    datetimes = DATETIME_COLUMNS.get(table, ())

    def column(name: str) -> Column:
        if name not in rows.columns:
            return F.lit(None).cast("timestamp" if name in datetimes else "string")
        return F.col(name).cast("timestamp") if name in datetimes else F.col(name).cast("string")

    return rows.select(*[column(name).alias(name) for name in columns], F.lit("r").alias(OP),
                       F.lit(False).alias(DELETED), F.lit(FIRST_LOAD_POSITION).alias(POSITION),
                       F.lit(None).cast("timestamp").alias(CHANGED_AT))
