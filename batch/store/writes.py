"""Writing the lake's Delta tables from Spark. Each write is one Delta commit: readers see a
table before it or after it, never half of it, and a job killed mid-write leaves only files no
commit references. Writes MERGE just the rows that differ, so a re-run that brings no news
commits nothing. Every table keeps a change feed, which is how the next layer reads only what
changed."""

from __future__ import annotations

from collections.abc import Sequence

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.runs import Written
from batch.store.delta_log import commit_metrics, exists, version
from batch.store.reads import read
from batch.rules import DELETE, KNOWN, merge_condition
from batch.transforms.common import changed_rows, of_keys


def upsert(spark: SparkSession, location: str, rows: DataFrame, keys: Sequence[str], *,
           deletes: DataFrame | None = None, partition_by: Sequence[str] = (),
           current: DataFrame | None = None, nullable_keys: Sequence[str] = ()) -> Written:
    """MERGE `rows` into the table by `keys` and delete the `deletes` keys; the first write
    creates the table. Rows identical to the table's are left out; with nothing left, no
    commit is made. When every row left is new, it is appended: same result, a fraction of
    a MERGE's time (the usual case of an incremental run). `current`: the table's rows of
    (at least) `rows`' keys, when the caller holds them already; `nullable_keys`, keys a row may
    lack (a quarantine's), matched null to null."""
    if not exists(spark, location):
        rows.write.format("delta").partitionBy(*partition_by).save(location)
        return Written(inserted=commit_metrics(spark, location).get("numOutputRows", 0), commits=1)
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
    return _write_changes(target, location, source, merge_condition(keys, nullable_keys), rows.columns, altered)


def _write_changes(target: DeltaTable, location: str, source: DataFrame, matched: str,
                   columns: Sequence[str], altered: int) -> Written:
    """`upsert`'s write of the rows that differ (`source`, with DELETE and KNOWN): nothing,
    an append, or a MERGE."""
    shape = source.agg(F.count("*").alias("rows"), F.count_if(DELETE).alias("deletes"),
                       F.count_if(KNOWN).alias("known")).first()
    spark = source.sparkSession
    if shape["rows"] == 0:  # no news (a re-run, a dimension that gained nothing)
        return Written(commits=altered, version=version(spark, location))
    if shape["deletes"] == 0 and shape["known"] == 0:
        source.drop(DELETE, KNOWN).write.format("delta").mode("append").save(location)
        return Written(inserted=shape["rows"], commits=1 + altered, version=version(spark, location))
    values = {f"`{name}`": f"s.`{name}`" for name in columns}
    (target.alias("t").merge(source.alias("s"), matched)
     .whenMatchedDelete(f"s.{DELETE}")
     .whenMatchedUpdate(set=values)
     .whenNotMatchedInsert(condition=f"NOT s.{DELETE}", values=values)
     .execute())
    now = version(spark, location)
    metrics = commit_metrics(spark, location, now)
    return Written(*(metrics.get(f"numTargetRows{kind}", 0) for kind in ("Inserted", "Updated", "Deleted")),
                   commits=1 + altered, version=now)


def replace(spark: SparkSession, location: str, rows: DataFrame) -> Written:
    """For small derived tables (the marts): overwrite the whole table in one commit, which
    computes `rows` once; fewer Spark jobs than a MERGE of the differences, or than finding
    whether any row differs first (the caller replaces only when its inputs moved). Counts
    the rows written."""
    rows.write.format("delta").mode("overwrite").option("overwriteSchema", "true").save(location)
    return Written(inserted=commit_metrics(spark, location).get("numOutputRows", 0), commits=1)


def add_new_columns(spark: SparkSession, location: str, rows: DataFrame) -> list[str]:
    """Schema evolution: columns of `rows` the table lacks are added to it (null in the rows
    it holds), so a column added at the source flows through instead of failing the write."""
    known = set(read(spark, location).columns)
    new = [field for field in rows.schema.fields if field.name not in known]
    if new:
        columns = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in new)
        spark.sql(f"ALTER TABLE delta.`{location}` ADD COLUMNS ({columns})")
    return [field.name for field in new]
