"""The CDC archive's records as Silver's Spark jobs read them: those after a job's mark, with
what the jobs need to know of them, and the columns a change's row image lacks looked up in Silver."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch import paths
from batch.paths import ARCHIVE_MARK  # noqa: F401 - the Silver jobs' mark, as both engines name it
from batch.rules import REFUSAL
from batch.names import SILVER, archive_location
from batch.store import delta_log, reads
from batch.transforms import changes, silver
from batch.transforms.common import of_keys
from config import Settings

ARCHIVE_COLUMNS = ("topic", "partition", "offset", "key", "value", "op", "source_file", "source_pos",
                   "source_row", "source_ts", REFUSAL)


@dataclass(frozen=True)
class NewRecords:
    """The archive's records after a mark, with what Silver needs to know of them."""

    archived: DataFrame  # ARCHIVE_COLUMNS
    version: int
    records: dict[str, int]  # topic -> records
    unreadable: int
    fields: dict[str, list[str]]  # topic -> the field names its row images carry

    def columns(self, settings: Settings, table: silver.SilverTable) -> list[str]:
        """The row-image columns of the table's changes: its spec's, then any the source added."""
        found = self.fields.get(settings.cdc_topic(table.name), [])
        return [*table.image_columns, *changes.extra_columns(found, table.image_columns)]

    def of(self, settings: Settings, table: silver.SilverTable) -> DataFrame:
        return self.archived.filter(F.col("topic") == settings.cdc_topic(table.name))


def new_records(spark: SparkSession, settings: Settings, seen: str | None,
                until: int | None = None, topics: Collection[str] | None = None) -> NewRecords | None:
    """The archive's records after version `seen` (up to `until` if given; None: no news), of
    `topics` only when given (the archive's partitions: the others' files are never read)."""
    location = archive_location(settings)
    if not delta_log.exists(spark, location):
        raise RuntimeError(f"no CDC archive at {location}: run `python -m batch bronze` "
                           "(or `python -m batch`), which drains the CDC topics into it")
    archived, version = reads.changes_since(spark, location, None if seen is None else int(seen), until)
    if str(version) == seen:
        return None
    if REFUSAL not in archived.columns:  # written before the archiver recorded refusals
        archived = archived.withColumn(REFUSAL, F.lit(None).cast("string"))
    if topics is not None:
        archived = archived.filter(F.col("topic").isin(*topics))
    archived = archived.select(*ARCHIVE_COLUMNS).localCheckpoint()
    topics = {row["topic"]: row for row in changes.per_topic(archived).collect()}
    return NewRecords(archived, version, {topic: row["records"] for topic, row in topics.items()},
                      sum(row["unreadable"] for row in topics.values()),
                      {topic: row["fields"] for topic, row in topics.items() if row["fields"]})


def look_up(spark: SparkSession, settings: Settings, row_changes: DataFrame, table: silver.SilverTable) -> DataFrame:
    """Join in the read columns a change's row image lacks (a detail's order time), from
    Silver's orders of the orders these changes name."""
    if not table.looked_up:
        return row_changes
    orders = paths.path(settings, SILVER, silver.ORDERS.name)
    if not delta_log.exists(spark, orders):
        return row_changes.withColumn("order_timestamp", F.lit(None).cast("timestamp"))
    named = row_changes.select(F.trim("order_id").alias("order_id"))
    times = of_keys(reads.read(spark, orders), named, ["order_id"]).select(
        F.col("order_id").alias("_order"), F.col("order_ts").alias("order_timestamp"))
    return (row_changes.join(times, F.trim(row_changes["order_id"]) == times["_order"], "left")
            .drop("_order"))
