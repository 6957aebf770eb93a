"""The lake on MinIO: where each table lives, and the Delta Lake reads and writes every job
shares.

Each write is one Delta commit: readers see a table before it or after it, never half of it,
and a job killed mid-write leaves only files no commit references. Writes MERGE just the
rows that differ, so a re-run that brings no news commits nothing. Every table keeps a
change feed, which is how the next layer reads only what changed.

A table's version and its last commit's metrics are read from the Delta log's files
directly (the protocol: the newest `_delta_log/<version>.json` is the version, its
`commitInfo` line holds the metrics): `DeltaTable.history` would answer the same with a
Spark job and a snapshot update, and an incremental run asks about twenty times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.fastlane.lease import fresh
from batch.paths import fast_lane_state, path  # noqa: F401 - the layer jobs' `lake.path`
from batch.transforms.common import KNOWN, changed_rows, latest_per_key, of_keys
from config import Settings

DELETE = "_delete"


def exists(spark: SparkSession, location: str) -> bool:
    return version(spark, location) is not None


def read(spark: SparkSession, location: str, version: int | None = None) -> DataFrame:
    """The table now, or as of `version`."""
    reader = spark.read.format("delta")
    return (reader if version is None else reader.option("versionAsOf", version)).load(location)


def drop(spark: SparkSession, location: str) -> None:
    """Delete a table's folder, data and log (for derived tables being rebuilt)."""
    hadoop_path, fs = _filesystem(spark, location)
    fs.delete(hadoop_path, True)


def driver_jvm(spark: SparkSession) -> tuple[Any, Any]:
    """The driver's JVM (py4j's view of its packages) and its Hadoop configuration, through
    PySpark's private `_jvm` and `_jsc`: the one place the lake and its benchmarks use them
    (Hadoop's FileSystem and the JVM's management beans have no Python API;
    tests/unit/test_runtime_boundary.py keeps every other private name out)."""
    return spark._jvm, spark._jsc.hadoopConfiguration()


def _filesystem(spark: SparkSession, location: str):
    jvm, hadoop_configuration = driver_jvm(spark)
    hadoop_path = jvm.org.apache.hadoop.fs.Path(location)
    return hadoop_path, hadoop_path.getFileSystem(hadoop_configuration)


def listed_names(spark: SparkSession, location: str) -> list[str]:
    """The names in a folder; empty if it does not exist."""
    hadoop_path, fs = _filesystem(spark, location)
    if not fs.exists(hadoop_path):
        return []
    return [status.getPath().getName() for status in fs.listStatus(hadoop_path)]


def read_text(spark: SparkSession, location: str) -> str | None:
    """A file's text, None when it does not exist."""
    hadoop_path, fs = _filesystem(spark, location)
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        return driver_jvm(spark)[0].org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def _write_bytes(spark: SparkSession, location: str, content: bytes) -> None:
    """Write (or replace) a file; on S3 the object appears whole when the stream closes."""
    hadoop_path, fs = _filesystem(spark, location)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(content))
    finally:
        stream.close()


def fast_lane(spark: SparkSession, settings: Settings) -> dict | None:
    """The fast lane's state while its lease is fresh (it owns the hot tables), else None."""
    stored = read_text(spark, fast_lane_state(settings))
    state = orjson.loads(stored) if stored else None
    return state if fresh(state) else None


def tables(spark: SparkSession, settings: Settings, layer: str) -> list[str]:
    """Every Delta table of a layer (its data tables and quarantines), found by their
    `_delta_log` folders up to two levels down (Gold's `facts/fact_orders`)."""
    found, folders = [], [settings.lake_path(layer)]
    for _ in range(2):
        children = []
        for folder in folders:
            hadoop_path, fs = _filesystem(spark, folder)
            if not fs.exists(hadoop_path):
                continue
            for status in fs.listStatus(hadoop_path):
                if status.isDirectory():
                    child = status.getPath().toString()
                    (found if exists(spark, child) else children).append(child)
        folders = children
    return sorted(found)


def stored_files(spark: SparkSession, location: str) -> int:
    """Parquet files under a table's folder, referenced by its current version or not."""
    hadoop_path, fs = _filesystem(spark, location)
    listing, count = fs.listFiles(hadoop_path, True), 0
    while listing.hasNext():
        count += listing.next().getPath().getName().endswith(".parquet")
    return count


def version(spark: SparkSession, location: str) -> int | None:
    """The table's current version: its newest commit file (None: not a Delta table)."""
    hadoop_path, fs = _filesystem(spark, f"{location}/_delta_log")
    if not fs.exists(hadoop_path):
        return None
    names = (status.getPath().getName() for status in fs.listStatus(hadoop_path))
    commits = [int(name[:-5]) for name in names if name.endswith(".json") and name[:-5].isdigit()]
    return max(commits, default=None)


def commit_times(spark: SparkSession, location: str) -> dict[int, float]:
    """The table's versions still in its log -> when each was committed (epoch seconds: its
    commit file's time); empty when it is no Delta table."""
    hadoop_path, fs = _filesystem(spark, f"{location}/_delta_log")
    if not fs.exists(hadoop_path):
        return {}
    return {int(status.getPath().getName()[:-5]): status.getModificationTime() / 1000
            for status in fs.listStatus(hadoop_path)
            if status.getPath().getName().endswith(".json") and status.getPath().getName()[:-5].isdigit()}


def rows_changed(spark: SparkSession, location: str, after: int, now: int) -> bool:
    """Whether a commit after version `after`, up to `now`, changed the table's rows or schema:
    it added or removed a file as a data change (a compaction rewrites files with
    `dataChange` false; a vacuum adds or removes none) or changed the metadata. A version
    behind `after` (the table rebuilt since) or a commit no longer in the log counts as a change."""
    if now < after:
        return True
    for number in range(after + 1, now + 1):
        commit = read_text(spark, f"{location}/_delta_log/{number:020d}.json")
        if commit is None:
            return True
        for action in map(orjson.loads, commit.splitlines()):
            if "metaData" in action or any(action.get(kind, {}).get("dataChange") for kind in ("add", "remove")):
                return True
    return False


def _last_commit_metrics(spark: SparkSession, location: str, number: int | None = None) -> dict[str, int]:
    """The operation metrics of the table's newest commit (or commit `number`; this job is
    its only writer)."""
    number = version(spark, location) if number is None else number
    commit = read_text(spark, f"{location}/_delta_log/{number:020d}.json")
    info = next(action["commitInfo"] for action in map(orjson.loads, commit.splitlines())
                if "commitInfo" in action)
    return {name: int(value) for name, value in (info.get("operationMetrics") or {}).items()}


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
class HeldTables:
    """Tables kept in memory across runs (the continuous lake holds one for its life), each
    read again only when its version moved: the key sets and dimensions every micro-batch
    joins with, which would otherwise be scanned whole each time."""

    spark: SparkSession
    held: dict[tuple[str, tuple[str, ...]], tuple[int, DataFrame]] = field(default_factory=dict)

    def read(self, location: str, columns: Sequence[str]) -> DataFrame | None:
        """The table's `columns` as of its version now; None when it does not exist."""
        now = version(self.spark, location)
        if now is None:
            return None
        held = self.held.get((location, tuple(columns)))
        if held is None or held[0] != now:
            if held is not None:
                held[1].unpersist()
            held = self.held[location, tuple(columns)] = (now, read(self.spark, location, now).select(*columns).cache())
        return held[1]


@dataclass(frozen=True)
class Written:
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    commits: int = 0
    # What this write changed, as `changes_since` would read it back: the rows written (each
    # key once) with the change-feed columns, and the table's version after it. None when the
    # write created the table.
    feed: DataFrame | None = field(default=None, compare=False)
    version: int | None = field(default=None, compare=False)

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.deleted

    def follows(self, seen: str | None) -> bool:
        """Whether this write's feed is everything after version `seen` (a reader's mark)."""
        return self.feed is not None and seen is not None and int(seen) == self.version - self.commits


def upsert(spark: SparkSession, location: str, rows: DataFrame, keys: Sequence[str], *,
           deletes: DataFrame | None = None, partition_by: Sequence[str] = (),
           current: DataFrame | None = None) -> Written:
    """MERGE `rows` into the table by `keys` and delete the `deletes` keys; the first write
    creates the table. Rows identical to the table's are left out; with nothing left, no
    commit is made. When every row left is new, it is appended: same result, a fraction of
    a MERGE's time (the usual case of an incremental run). `current`: the table's rows of
    (at least) `rows`' keys, when the caller holds them already."""
    if not exists(spark, location):
        rows.write.format("delta").partitionBy(*partition_by).save(location)
        return Written(inserted=_last_commit_metrics(spark, location).get("numOutputRows", 0), commits=1)
    altered = int(bool(add_new_columns(spark, location, rows)))
    target = DeltaTable.forPath(spark, location)
    if current is None or altered:
        current = of_keys(target.toDF(), rows, keys)
    source = changed_rows(rows, current, keys).withColumn(DELETE, F.lit(False))
    if deletes is not None:
        source = source.unionByName(deletes.select(*keys).withColumns({DELETE: F.lit(True), KNOWN: F.lit(True)}),
                                    allowMissingColumns=True)
    # Computed once; the counts and the write reuse it. A checkpoint, not a cache: its plan
    # no longer names the target's columns, so MERGE can take it without copying it again.
    source = source.localCheckpoint()
    return _write_changes(target, location, source, keys, rows.columns, altered)


def _write_changes(target: DeltaTable, location: str, source: DataFrame, keys: Sequence[str],
                   columns: Sequence[str], altered: int) -> Written:
    """`upsert`'s write of the rows that differ (`source`, with DELETE and KNOWN): nothing,
    an append, or a MERGE."""
    shape = source.agg(F.count("*").alias("rows"), F.count_if(DELETE).alias("deletes"),
                       F.count_if(KNOWN).alias("known")).first()
    spark = source.sparkSession
    if shape["rows"] == 0:  # no news (a re-run, a dimension that gained nothing)
        now = version(spark, location)
        return Written(commits=altered, feed=_feed(source, now), version=now)
    if shape["deletes"] == 0 and shape["known"] == 0:
        source.drop(DELETE, KNOWN).write.format("delta").mode("append").save(location)
        now = version(spark, location)
        return Written(inserted=shape["rows"], commits=1 + altered, feed=_feed(source, now), version=now)
    matched = " AND ".join(f"t.`{key}` <=> s.`{key}`" for key in keys)
    values = {f"`{name}`": f"s.`{name}`" for name in columns}
    (target.alias("t").merge(source.alias("s"), matched)
     .whenMatchedDelete(f"s.{DELETE}")
     .whenMatchedUpdate(set=values)
     .whenNotMatchedInsert(condition=f"NOT s.{DELETE}", values=values)
     .execute())
    now = version(spark, location)
    metrics = _last_commit_metrics(spark, location, now)
    return Written(*(metrics.get(f"numTargetRows{kind}", 0) for kind in ("Inserted", "Updated", "Deleted")),
                   commits=1 + altered, feed=_feed(source, now), version=now)


def _feed(source: DataFrame, now: int) -> DataFrame:
    """An upsert's source as its commit's change feed: deletes (keys only) and the rows'
    new images (inserts and updates alike: a reader takes both as the key's newest row)."""
    return (source.withColumn("_change_type", F.when(F.col(DELETE), F.lit("delete"))
                              .when(F.col(KNOWN), F.lit("update_postimage")).otherwise(F.lit("insert")))
            .withColumns({"_commit_version": F.lit(now).cast("long"), "_commit_timestamp": F.current_timestamp()})
            .drop(DELETE, KNOWN))


def replace(spark: SparkSession, location: str, rows: DataFrame) -> Written:
    """For small derived tables (the marts): overwrite the whole table in one commit, which
    computes `rows` once; fewer Spark jobs than a MERGE of the differences, or than finding
    whether any row differs first (the caller replaces only when its inputs moved). Counts
    the rows written."""
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(location)
    return Written(inserted=_last_commit_metrics(spark, location).get("numOutputRows", 0), commits=1)


def add_new_columns(spark: SparkSession, location: str, rows: DataFrame) -> list[str]:
    """Schema evolution: columns of `rows` the table lacks are added to it (null in the rows
    it holds), so a column added at the source flows through instead of failing the write."""
    known = set(read(spark, location).columns)
    new = [field for field in rows.schema.fields if field.name not in known]
    if new:
        columns = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in new)
        spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS ({columns})")
    return [field.name for field in new]


# --- marks: how far each layer has read its input ------------------------------------------
# One small JSON object per job (`<layer>/_marks.json`: table -> mark, and when it was
# written; a second job of a layer names its own file), replaced whole after the job's data
# is committed. A Delta table of marks (the older form, still read when a lake has no JSON
# marks) costs a snapshot and several Spark jobs per read.
MARKS = "_marks"


def _marks_location(settings: Settings, layer: str, name: str) -> str:
    return settings.lake_path(layer, f"{name}.json")


def read_marks(spark: SparkSession, settings: Settings, layer: str, name: str = MARKS) -> dict[str, str]:
    """The job's stored marks (table -> mark), empty before its first run."""
    stored = read_text(spark, _marks_location(settings, layer, name))
    if stored is not None:
        return orjson.loads(stored)["marks"]
    legacy = path(settings, layer, "_marks")  # a lake written before the JSON marks
    if not exists(spark, legacy):
        return {}
    newest = latest_per_key(read(spark, legacy), ["table"], [F.col("written_at").desc()])
    return {row["table"]: row["mark"] for row in newest.collect()}


def write_marks(spark: SparkSession, settings: Settings, layer: str, marks: dict[str, str], *,
                stored: dict[str, str], name: str = MARKS) -> None:
    """Store the layer's marks when any differs from `stored` (as `read_marks` gave them),
    after its data is committed: a crash in between only makes the next run read some rows
    again, which turns into no change."""
    if all(stored.get(table) == mark for table, mark in marks.items()):
        return
    written_at = datetime.now(timezone.utc).isoformat()
    _write_bytes(spark, _marks_location(settings, layer, name),
                 orjson.dumps({"marks": {**stored, **marks}, "written_at": written_at}))
