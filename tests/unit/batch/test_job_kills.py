"""The whole lake as the fast lane and Spark's deferred work leave it, on a `file://` lake (no
services): the lane applies the shop's change log a micro-batch at a time, the deferred work
follows (Silver's history, Gold's dimensions, the order products, the marts).

- It equals a one-shot Spark run over the same archive: every table, its columns and rows.
- The deferred work killed after each table it writes and after each job's marks, then run
  again, ends as a run never killed. The kill is the jobs' own kill point (batch.kill_points),
  here an exception that abandons the run at that line, as a SIGKILL would. Every CI run kills
  each job after its first table and after its marks; `LAKE_SUITE=long` after every table too."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from batch import flows, kill_points
from tests.unit.batch.change_log import shop_change_log
from tests.unit.batch.lakes import Killed, assert_same_tables, lake_settings, lake_tables, run_lane

DIMENSIONS = ("customer", "date", "payment_method", "product")
MARTS = ("customer_segments", "daily_orders", "payment_mix", "top_products")
SILVER_TABLES = ("customers", "customers_quarantine", "order_details", "order_details_history",
                 "order_details_quarantine", "orders", "orders_history", "orders_quarantine", "payment_method",
                 "payment_method_quarantine")  # when the lane wrote a row, not what the source said


class KillChain:
    """Kills each run at the first of `points` it reaches that no earlier run was killed at: run
    after run, each point is killed once and the run after it starts from what the kill left."""

    def __init__(self, points: list[str]) -> None:
        self.points = set(points)
        self.killed: list[str] = []

    def reached(self, point: str) -> None:
        if point in self.points and point not in self.killed:
            self.killed.append(point)
            raise Killed(point)


def first_table_and_marks_of_each_job(points: list[str]) -> list[str]:
    """Of the points in the order a run reaches them: each job's first table (its others not
    written yet) and its marks (the next job not started)."""
    chosen, job_starts = [], True
    for point in points:
        if "/" in point or job_starts:
            chosen.append(point)
        job_starts = "/" in point
    return chosen


@pytest.fixture(scope="module")
def lake_before_deferred(settings, spark, tmp_path_factory) -> Path:
    """The lane's first micro-batch and a deferred run, then the rest of the change log: what the
    next deferred run has to do reaches every table it writes."""
    folder = tmp_path_factory.mktemp("before-deferred")
    batches = shop_change_log(settings)
    run_lane(lake_settings(settings, folder), batches[:1])
    flows.deferred(spark, lake_settings(settings, folder))
    run_lane(lake_settings(settings, folder), batches)
    return folder


@pytest.fixture(scope="module")
def never_killed(settings, spark, lake_before_deferred, tmp_path_factory) -> tuple[Path, list[str]]:
    """The lane's lake once the deferred work has run unkilled, and the points it reached in order."""
    folder = tmp_path_factory.mktemp("never-killed") / "lake"
    shutil.copytree(lake_before_deferred, folder)
    counting = "counting"
    flows.deferred(spark, lake_settings(settings, folder, kill_at=counting))
    return folder, list(kill_points.of_process(counting).reached_count)


def test_the_lane_and_its_deferred_work_leave_the_lake_a_one_shot_spark_run_of_the_same_archive_leaves(
        settings, spark, tmp_path):
    """The deferred work runs once, after the lane: a dimension's history holds the versions its
    runs saw (a customer's city changed between two runs is two versions), as a one-shot run's."""
    lane_lake, once = tmp_path / "lane", tmp_path / "once"
    run_lane(lake_settings(settings, lane_lake), shop_change_log(settings))
    flows.deferred(spark, lake_settings(settings, lane_lake))
    shutil.copytree(lane_lake / "bronze" / "cdc_raw", once / "bronze" / "cdc_raw")
    flows.silver(spark, lake_settings(settings, once))
    flows.gold(spark, lake_settings(settings, once))

    lane = lake_tables(settings, lane_lake)
    assert_same_tables(lane, lake_tables(settings, once))
    # the change log reached what the lane and a one-shot run could disagree on
    archived = lane["bronze/cdc_raw"].select("topic", "partition", "offset")
    sent = {(record.topic, record.partition, record.offset) for batch in shop_change_log(settings) for record in batch}
    assert set(archived.iter_rows()) == sent and archived.height == len(sent), "each record archived once"
    assert sorted(lane) == ["bronze/cdc_raw", *(f"gold/dimensions/dim_{name}" for name in DIMENSIONS),
                            "gold/facts/fact_order_products", "gold/facts/fact_orders",
                            *(f"gold/marts/mart_{name}" for name in MARTS), "silver/cdc_quarantine",
                            *(f"silver/{name}" for name in SILVER_TABLES)]
    assert lane["silver/orders_quarantine"]["order_id"].to_list() == ["broken-twice"]  # its newest version only
    assert lane["silver/order_details_quarantine"].select("order_id", "product_id").rows() == [("o1-004", 14)]
    assert {"late-customer", "fixed-later"} <= set(lane["silver/orders"]["order_id"])  # let out
    moved = lane["silver/order_details"].filter(pl.col("order_id") == "o1-006")
    assert moved["order_date"].cast(pl.String).to_list() == ["2026-11-19"]  # its order's time moved after it
    assert lane["silver/cdc_quarantine"].height == 1
    assert set(lane["gold/facts/fact_orders"]["status"]) == {"complete", "incomplete", "cancelled"}


def test_deferred_work_killed_after_each_table_and_each_marks_and_run_again_leaves_every_table_exact(
        settings, spark, lake_before_deferred, never_killed, tmp_path, monkeypatch):
    never_killed_lake, points = never_killed
    killed = tmp_path / "killed"
    shutil.copytree(lake_before_deferred, killed)
    killed_at = points if os.environ.get("LAKE_SUITE") == "long" else first_table_and_marks_of_each_job(points)
    chain = KillChain(killed_at)
    monkeypatch.setattr(kill_points.of_process("chain"), "reached", chain.reached)

    for _ in range(len(killed_at) + 1):
        try:
            flows.deferred(spark, lake_settings(settings, killed, kill_at="chain"))
            break
        except Killed:
            continue

    assert chain.killed == killed_at, "every point chosen killed once, in the order a run reaches them"
    assert {point.split(".")[0].split("/")[0] for point in points} == {"job:silver", "job:gold"}
    assert sum(point.startswith("job:gold.mart_") for point in points) == 4
    assert_same_tables(lake_tables(settings, killed), lake_tables(settings, never_killed_lake))
