"""Reading the lake's Delta tables: a table as of a version, and what changed since one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.store.delta_log import version


def read(spark: SparkSession, location: str, version: int | None = None) -> DataFrame:
    """The table now, or as of `version`."""
    reader = spark.read.format("delta")
    return (reader if version is None else reader.option("versionAsOf", version)).load(location)


def changes_since(spark: SparkSession, location: str, seen: int | None,
                  until: int | None = None) -> tuple[DataFrame, int]:
    """The table's changes after version `seen` (all of it when None) up to its version now
    (or `until`), and that version.

    Rows carry Delta's change-feed columns; a first read is the snapshot, as inserts, and so
    is a read of a table rebuilt since (its version is behind `seen`)."""
    now = version(spark, location) if until is None else until
    if seen is not None and seen > now:
        seen = None
    if seen is not None and seen < now:
        return (spark.read.format("delta").option("readChangeFeed", "true")
                .option("startingVersion", seen + 1).option("endingVersion", now).load(location)), now
    snapshot = spark.read.format("delta").option("versionAsOf", now).load(location)
    if seen is not None:
        snapshot = snapshot.limit(0)  # seen it all
    return snapshot.withColumns({"_change_type": F.lit("insert"),
                                 "_commit_version": F.lit(now).cast("long"),
                                 "_commit_timestamp": F.current_timestamp()}), now


@dataclass
class CachedColumns:
    """Columns of tables a job joins with more than once in a run (the referenced tables' keys,
    the dimensions), cached in the executors' memory and read again when the table's version
    moved (Silver writes `orders` before `order_details` refers to its keys)."""

    spark: SparkSession
    cached: dict[tuple[str, tuple[str, ...]], tuple[int, DataFrame]] = field(default_factory=dict)

    def read(self, location: str, columns: Sequence[str]) -> DataFrame | None:
        """The table's `columns` as of its version now; None when it does not exist."""
        now = version(self.spark, location)
        if now is None:
            return None
        cached = self.cached.get((location, tuple(columns)))
        if cached is None or cached[0] != now:
            if cached is not None:
                cached[1].unpersist()
            cached = self.cached[location, tuple(columns)] = (now, read(self.spark, location, now).select(*columns).cache())
        return cached[1]
