"""A column added to `orders` (ALTER TABLE) while the stream runs: the stream goes on
exactly as before, and Silver carries the new column from the change log (Delta schema
evolution)."""

from __future__ import annotations

import uuid

import pytest
from pyspark.sql import functions as F

from batch import flows, paths
from batch.fastlane.run import apply_until_drained
from batch.store import reads
from source import database
from stack.scratch import cdc_caught_up, scratch_lake
from tests.integration.scratch_stream import order_final, scratch_stream, write_orders


@pytest.mark.lake_long
@pytest.mark.parametrize("engine", ["spark", "fast lane"])
def test_a_column_added_to_orders_flows_to_silver_and_the_stream_is_unaffected(settings, spark, unique_name, engine):
    """The lake's tables are made by a one-shot Spark run; the column's rows are applied by
    `engine`: a one-shot run again, or the fast lane into the tables Spark made (with Spark's
    deferred work for the history)."""
    with scratch_lake(settings, f"t{uuid.uuid4().hex[:12]}") as lake_settings, \
            scratch_stream(lake_settings, unique_name, workers=1, web_port=16266) as (scratch, workers):
        before = write_orders(scratch, 100, rate=0)
        cdc_caught_up(scratch, database.connect(scratch))
        for layer in flows.CHANGE_LOG:  # the lake's tables exist without the column
            layer(spark, scratch)
        connection = database.connect(scratch)
        cursor = connection.cursor()
        cursor.execute("ALTER TABLE orders ADD COLUMN gift_note VARCHAR(60) NULL")
        after = write_orders(scratch, 100, rate=0)
        noted = sorted(after["complete"])[:5]
        cursor.execute(f"UPDATE orders SET gift_note = 'with love' WHERE id IN ({', '.join(['%s'] * len(noted))})",
                       noted)

        complete = {**before["complete"], **after["complete"]}
        emitted = order_final(scratch, len(complete), workers)
        assert sorted(value["order_id"] for value in emitted) == sorted(complete)  # each once, none missing
        assert all(value["num_products"] == complete[value["order_id"]]["num_products"] for value in emitted)
        assert workers[0].stats()["counts"].get("dead_lettered", 0) == 0

        cdc_caught_up(scratch, connection)
        if engine == "spark":
            runs = [layer(spark, scratch) for layer in flows.CHANGE_LOG]
            assert runs[1].total("quarantined") == 0
        else:
            batches = apply_until_drained(scratch)
            assert batches and sum(batch.quarantined for batch in batches) == 0
            flows.deferred(spark, scratch)

        for table in ("orders", "orders_history"):
            orders = reads.read(spark, paths.path(scratch, "silver", table))
            notes = {row["order_id"]: row["gift_note"] for row in orders.filter(F.col("gift_note").isNotNull()).collect()}
            assert notes == dict.fromkeys(noted, "with love"), table
            assert orders.filter(F.col("gift_note").isNull()).count() > 0  # rows from before keep a null
        facts = reads.read(spark, paths.path(scratch, "gold", "fact_orders"))
        live = reads.read(spark, paths.path(scratch, "silver", "orders")).filter("NOT is_deleted")
        assert facts.filter("NOT is_deleted").count() == live.count()
