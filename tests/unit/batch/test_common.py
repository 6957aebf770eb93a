from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch.transforms.common import changed_rows, latest_per_key, missing_keys, of_keys

SCHEMA = "id int, name string, city string"


def test_changed_rows_keeps_new_and_altered_rows_and_compares_nulls_as_equal(spark):
    current = spark.createDataFrame([(1, "Ann", None), (2, "Bob", "Oslo"), (3, "Cy", "Rome")], SCHEMA)
    candidates = spark.createDataFrame(
        [(1, "Ann", None),       # identical, null included: not a change
         (2, "Bob", "Bergen"),   # altered
         (3, "Cy", None),        # altered to null
         (4, "Di", "Nice")],     # new
        SCHEMA)

    assertDataFrameEqual(
        changed_rows(candidates, current, ["id"]),
        spark.createDataFrame([(2, "Bob", "Bergen", True), (3, "Cy", None, True), (4, "Di", "Nice", False)],
                              f"{SCHEMA}, _known boolean"))


def test_changed_rows_of_a_rerun_is_empty(spark):
    rows = spark.createDataFrame([(1, "Ann", None), (2, "Bob", "Oslo")], SCHEMA)
    assert changed_rows(rows, rows, ["id"]).count() == 0


def test_changed_rows_match_keys_null_safely_and_ignore_columns_the_candidates_lack(spark):
    current = spark.createDataFrame([(1, None, "Oslo", "x"), (2, "b", "Rome", "y")],
                                    "id int, part string, city string, extra string")
    candidates = spark.createDataFrame(
        [(1, None, "Oslo"),   # identical on its columns, a null in the key: not a change
         (2, "b", "Milan"),   # altered: an update
         (2, None, "Rome")],  # a key (2, null) the table lacks: an insert
        "id int, part string, city string")

    assertDataFrameEqual(
        changed_rows(candidates, current, ["id", "part"]),
        spark.createDataFrame([(2, "b", "Milan", True), (2, None, "Rome", False)],
                              "id int, part string, city string, _known boolean"))


def test_missing_keys_are_the_rows_the_source_lost(spark):
    current = spark.createDataFrame([(1, "Ann", None), (2, "Bob", "Oslo")], SCHEMA)
    candidates = spark.createDataFrame([(2, "Bob", "Bergen")], SCHEMA)
    assertDataFrameEqual(missing_keys(current, candidates, ["id"]), spark.createDataFrame([(1,)], "id int"))


def test_latest_per_key_picks_the_first_by_the_given_order(spark):
    rows = spark.createDataFrame([(1, "old", 1), (1, "new", 3), (1, "mid", 2), (2, "only", 1)],
                                 "id int, value string, version int")
    assertDataFrameEqual(latest_per_key(rows, ["id"], [F.col("version").desc()]),
                         spark.createDataFrame([(1, "new", 3), (2, "only", 1)], rows.schema))


def test_of_keys_keeps_the_rows_of_the_batchs_keys_null_keys_included(spark):
    table = spark.createDataFrame([(1, "x", "a"), (2, "x", "b"), (None, "x", "c"), (1, "y", "d")],
                                  "id int, part string, v string")
    batch = spark.createDataFrame([(1, "x"), (None, "x"), (3, "x")], "id int, part string")

    assertDataFrameEqual(of_keys(table, batch, ["id", "part"]),
                         spark.createDataFrame([(1, "x", "a"), (None, "x", "c")], "id int, part string, v string"))
