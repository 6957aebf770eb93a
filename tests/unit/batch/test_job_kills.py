"""Spark's deferred work (Silver's history, Gold's dimensions, the order products, the marts) killed
after each table it writes and after each job's marks, then run again: every table ends as in a
run that was never killed. On a `file://` lake (no services): the fast lane applies the shop's
change log, the deferred work follows; the kill is the jobs' own kill point (batch.kill_points),
here an exception that abandons the run at that line, as a SIGKILL would. Every CI run kills
each job after its first table and after its marks; `LAKE_SUITE=long` after every table too."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import polars as pl
import pytest

from batch import flows, kill_points
from batch.fastlane.delta import Lake
from tests.unit.batch.change_log import shop_change_log
from tests.unit.batch.test_lane_kills import Killed, assert_same_tables, lake_settings, run_lane

PROCESSING_TIMES = {"archived_at"}  # when the lane wrote a row, not what the source said


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


def lake_tables(settings, folder: Path) -> dict[str, pl.DataFrame]:
    """Every Delta table of the lake in `folder`, read through delta-rs, in a comparable order."""
    local = lake_settings(settings, folder)
    found = {}
    for log in sorted(folder.rglob("_delta_log")):
        table = str(log.parent.relative_to(folder))
        rows = Lake(local).read(f"{local.lake_uri}{table}")
        rows = rows.drop(*(name for name in rows.columns if name in PROCESSING_TIMES))
        comparable = [name for name, dtype in rows.schema.items() if not isinstance(dtype, pl.List)]
        found[table] = rows.sort(comparable, nulls_last=True)
    return found


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


def test_deferred_work_killed_after_each_table_and_each_marks_and_run_again_leaves_every_table_exact(
        settings, spark, lake_before_deferred, tmp_path, monkeypatch):
    never_killed, killed = tmp_path / "never-killed", tmp_path / "killed"
    shutil.copytree(lake_before_deferred, never_killed)
    shutil.copytree(lake_before_deferred, killed)
    counted = lake_settings(settings, never_killed, kill_at="nowhere")
    flows.deferred(spark, counted)
    points = list(kill_points.of_process(counted.lake_kill_at).reached_count)
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
    assert_same_tables(lake_tables(settings, killed), lake_tables(settings, never_killed))
