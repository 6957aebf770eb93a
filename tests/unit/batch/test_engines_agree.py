"""The fast lane (Polars) and Spark's Silver job apply the rules batch.rules states once: the
shop's change log (tests/unit/batch/change_log.py) applied a micro-batch at a time by each engine
leaves the same Silver tables and quarantines, row for row and column for column. On `file://`
lakes: the lane applies each micro-batch; on the other lake the same records are archived and
Spark's Silver runs after every second one, as `python -m batch silver` does when no lane runs
(each run takes what two micro-batches archived: what a later micro-batch changes of an earlier
one's rows reaches Spark both within a run and from one run to the next). `test_job_kills.py`
holds a one-shot Spark run over the whole change log to the lane's."""

from __future__ import annotations

from batch.fastlane.lane import FastLane
from batch.layers.silver import SilverJob
from batch.paths import CDC_QUARANTINE, quarantine_name
from batch.rules import TABLES
from tests.unit.batch.change_log import shop_change_log
from tests.unit.batch.lakes import assert_same_tables, lake_settings, lake_tables, run_lane

SILVER = [f"silver/{name}" for table in TABLES for name in (table.name, quarantine_name(table.name))]


def test_spark_s_silver_runs_between_micro_batches_leave_the_tables_the_fast_lane_leaves(settings, spark, tmp_path):
    batches = shop_change_log(settings)
    lane_lake, spark_lake = tmp_path / "lane", tmp_path / "spark"
    run_lane(lake_settings(settings, lane_lake), batches)
    archive = FastLane(lake_settings(settings, spark_lake))
    for number, records in enumerate(batches, start=1):
        archive.append(records)
        if number % 2 == 0:
            SilverJob(spark, lake_settings(settings, spark_lake)).run()

    lane, by_spark = lake_tables(settings, lane_lake), lake_tables(settings, spark_lake)
    silver = {name: rows for name, rows in lane.items() if name in [*SILVER, f"silver/{CDC_QUARANTINE}"]}
    assert sorted(silver) == sorted([*SILVER, f"silver/{CDC_QUARANTINE}"])
    assert_same_tables({name: by_spark[name] for name in silver}, silver)
    # what a later micro-batch changes of an earlier one's rows: quarantined rows let out, a
    # version broken again, a detail's order time moved
    assert lane["silver/orders_quarantine"]["order_id"].to_list() == ["broken-twice"]
    assert {"late-customer", "fixed-later"} <= set(lane["silver/orders"]["order_id"])
    assert lane["silver/order_details"]["order_ts"].null_count() == 0
