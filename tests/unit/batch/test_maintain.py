"""Compaction of the tables every micro-batch reads, on a local folder (no services)."""

from __future__ import annotations

from batch import lake
from batch.tools.maintain import compact_hot_tables, live_files


def test_only_hot_tables_with_more_files_than_the_bound_are_compacted_and_keep_their_rows(spark, settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    orders, details = lake.path(local, "silver", "orders"), lake.path(local, "silver", "order_details")
    spark.range(400).selectExpr("cast(id AS string) AS order_id").repartition(40).write.format("delta").save(orders)
    spark.range(400).selectExpr("cast(id AS string) AS order_id").repartition(4).write.format("delta").save(details)

    done = compact_hot_tables(spark, local, above=8)

    assert (live_files(spark, orders), live_files(spark, details)) == (1, 4)
    assert done == ["silver.orders: compacted, files in the current version 40 -> 1"]
    assert lake.read(spark, orders).count() == 400
    assert lake.changes_since(spark, orders, 0)[0].count() == 0  # no data changed: the change feed reads nothing
