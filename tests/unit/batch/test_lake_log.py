"""The lake's own reads of the Delta log and its marks, on a local folder (no services)."""

from __future__ import annotations

from datetime import datetime, timezone

from delta.tables import DeltaTable
from pyspark.sql import functions as F

from batch import paths
from batch.runs import Written
from batch.store import delta_log, reads, writes
from batch.store.marks import read_marks, write_marks


def test_version_and_commit_metrics_match_what_delta_reports(spark, tmp_path):
    location = f"file://{tmp_path}/orders"
    assert delta_log.version(spark, location) is None and not delta_log.exists(spark, location)

    written = writes.upsert(spark, location, spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), ["id"])
    changed = writes.upsert(spark, location, spark.createDataFrame([(2, "B"), (3, "c")], "id int, v string"), ["id"],
                            deletes=spark.createDataFrame([(1,)], "id int"))

    again = writes.upsert(spark, location, spark.createDataFrame([(2, "B")], "id int, v string"), ["id"])

    history = DeltaTable.forPath(spark, location).history(1).first()
    assert delta_log.version(spark, location) == history["version"] == 1
    assert (written, changed) == (Written(inserted=2, commits=1),
                                  Written(inserted=1, updated=1, deleted=1, commits=1))
    assert again == Written()  # no news: no commit


def test_marks_round_trip_and_a_write_without_news_leaves_the_file(spark, settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    assert read_marks(spark, local, "silver") == {}

    write_marks(spark, local, "silver", {"orders": "3", "customers": "1"}, stored={})
    marks_file = tmp_path / "silver" / "_marks.json"
    first = marks_file.read_bytes()
    write_marks(spark, local, "silver", {"orders": "3"}, stored={"orders": "3", "customers": "1"})
    assert marks_file.read_bytes() == first  # nothing moved: nothing written
    write_marks(spark, local, "silver", {"orders": "4"}, stored={"orders": "3", "customers": "1"})

    assert read_marks(spark, local, "silver") == {"orders": "4", "customers": "1"}


def test_marks_of_a_lake_written_before_the_json_file_are_read_from_its_delta_table(spark, settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    moments = [datetime(2026, 1, day, tzinfo=timezone.utc) for day in (1, 2)]
    (spark.createDataFrame([("orders", "v1", moments[0]), ("orders", "v2", moments[1]), ("customers", "c", moments[0])],
                           "table string, mark string, written_at timestamp")
     .write.format("delta").save(paths.path(local, "bronze", "_marks")))

    assert read_marks(spark, local, "bronze") == {"orders": "v2", "customers": "c"}
    write_marks(spark, local, "bronze", {"orders": "v3"}, stored={"orders": "v2", "customers": "c"})
    assert read_marks(spark, local, "bronze") == {"orders": "v3", "customers": "c"}


def test_a_compaction_changes_no_rows_but_a_write_or_a_new_column_does(spark, tmp_path):
    location = f"file://{tmp_path}/facts"
    for value in ("a", "b"):  # two files
        spark.createDataFrame([(1, value)], "id int, v string").write.format("delta").mode("append").save(location)
    DeltaTable.forPath(spark, location).optimize().executeCompaction()
    compacted = delta_log.version(spark, location)

    assert not delta_log.rows_changed(spark, location, 1, compacted)
    assert delta_log.rows_changed(spark, location, 0, compacted)  # version 1 appended a row

    writes.upsert(spark, location, spark.createDataFrame([(2, "c")], "id int, v string"), ["id"])
    assert delta_log.rows_changed(spark, location, compacted, delta_log.version(spark, location))
    widened = delta_log.version(spark, location)
    writes.add_new_columns(spark, location, spark.createDataFrame([(3, "d", "x")], "id int, v string, w string"))
    assert delta_log.rows_changed(spark, location, widened, delta_log.version(spark, location))
    assert delta_log.rows_changed(spark, location, widened + 5, widened)  # behind the mark: rebuilt


def test_changes_since_reads_back_a_merge_s_deletes_updates_and_inserts_at_its_version(spark, tmp_path):
    location = f"file://{tmp_path}/orders"
    writes.upsert(spark, location, spark.createDataFrame([(1, "a"), (2, "b")], "id int, v string"), ["id"])
    written = writes.upsert(spark, location, spark.createDataFrame([(2, "B"), (3, "c")], "id int, v string"), ["id"],
                            deletes=spark.createDataFrame([(1,)], "id int"))

    read_back, version = reads.changes_since(spark, location, 0)
    newest = read_back.filter("_change_type != 'update_preimage'").withColumn(
        "v", F.when(F.col("_change_type") == "delete", None).otherwise(F.col("v")))

    assert written.version == version == 1
    assert sorted((row["id"], row["v"], row["_change_type"], row["_commit_version"]) for row in newest.collect()) == [
        (1, None, "delete", 1), (2, "B", "update_postimage", 1), (3, "c", "insert", 1)]
    assert reads.changes_since(spark, location, 1)[0].count() == 0  # seen it all


def test_cached_columns_are_read_again_only_when_their_version_moves(spark, tmp_path):
    location = f"file://{tmp_path}/customers"
    spark.createDataFrame([(1, "a")], "id int, v string").write.format("delta").save(location)
    cached = reads.CachedColumns(spark)

    first = cached.read(location, ["id"])
    assert cached.read(location, ["id"]) is first and first.columns == ["id"]
    writes.upsert(spark, location, spark.createDataFrame([(2, "b")], "id int, v string"), ["id"])

    assert sorted(row["id"] for row in cached.read(location, ["id"]).collect()) == [1, 2]
    assert cached.read(f"file://{tmp_path}/missing", ["id"]) is None
