"""The lake as the demo, the report and the benchmarks read it (`LakeReader`, delta-rs, no JVM),
on a `file://` lake: Gold's statuses, the first commit holding each final status, whether the
deferred work is current with its inputs, Gold's row counts and its marts."""

from __future__ import annotations

import time

import polars as pl
import pytest

from batch.fastlane.delta import Lake, Objects
from batch.flows import DEFERRED
from batch.layers.marts import MARTS
from batch.names import gold_location
from batch.tools.lake_reader import LakeReader
from tests.unit.batch.change_log import shop_change_log
from tests.unit.batch.lakes import lake_settings, run_lane


def facts(statuses: dict[str, str], amount: float = 1.0) -> pl.DataFrame:
    return pl.DataFrame({"order_id": list(statuses), "status": list(statuses.values()), "amount": amount})


def test_an_order_is_first_visible_at_the_commit_that_gave_it_its_final_status(settings, tmp_path):
    local = lake_settings(settings, tmp_path)
    lake, location = Lake(local), gold_location(local, "fact_orders")
    lake.upsert(location, facts({"a": "incomplete", "b": "complete", "e": "complete"}), ["order_id"])
    time.sleep(0.02)  # commit times in milliseconds: the two commits apart
    lake.upsert(location, facts({"a": "complete", "c": "cancelled", "e": "complete"}, amount=2.0), ["order_id"])
    committed = {entry["version"]: entry["timestamp"] for entry in lake.table(location).history()}

    reader = LakeReader(local)
    visible = reader.first_visible({"a": "complete", "b": "complete", "c": "cancelled", "d": "complete",
                                    "e": "complete"})

    # e: complete since the first commit, changed again in the second; d: never in Gold
    assert visible == {"a": committed[1], "b": committed[0], "c": committed[1], "e": committed[0]}
    assert reader.fact_statuses({"a", "c", "d"}) == {"a": "complete", "c": "cancelled"}
    assert reader.rows("gold", "fact_orders") == 4 and reader.rows("gold", "dim_customer") == 0


def test_the_deferred_work_is_behind_until_its_marks_hold_every_input_s_version(settings, tmp_path):
    local = lake_settings(settings, tmp_path)
    change_log = shop_change_log(local)
    run_lane(local, change_log[:2])
    reader, objects, lake = LakeReader(local), Objects(local), Lake(local)

    def mark_every_input_read() -> None:
        for job in DEFERRED:
            versions = {name: lake.version(location) for name, location in job.inputs(local).items()}
            objects.write_marks(job.layer, {name: str(v) for name, v in versions.items() if v is not None},
                                job.marks_file)

    behind = reader.deferred_behind()
    assert set(behind) == {job.__name__ for job in DEFERRED}
    assert behind["HistoryJob"] is not None and behind["DimensionsJob"] is not None  # the lane wrote their inputs
    assert not reader.deferred_current()

    mark_every_input_read()
    assert reader.deferred_current(), reader.deferred_behind()

    run_lane(local, change_log)  # the lane reads on from its offsets: two more micro-batches
    assert reader.deferred_behind()["HistoryJob"] is not None
    mark_every_input_read()
    assert reader.deferred_current()


def test_the_marts_are_read_whole_once_every_one_is_written(settings, tmp_path):
    local = lake_settings(settings, tmp_path)
    reader, lake = LakeReader(local), Lake(local)
    for name in MARTS[:-1]:
        lake.upsert(gold_location(local, name), pl.DataFrame({"key": [1, 2], "orders": [3, 4]}), ["key"])

    with pytest.raises(FileNotFoundError, match=f"no {MARTS[-1]} in the lake yet"):
        reader.marts()

    lake.upsert(gold_location(local, MARTS[-1]), pl.DataFrame({"key": [1], "orders": [5]}), ["key"])
    marts = reader.marts()
    assert sorted(marts) == sorted(MARTS)
    assert sorted(marts[MARTS[0]], key=lambda row: row["key"]) == [{"key": 1, "orders": 3}, {"key": 2, "orders": 4}]
    assert marts[MARTS[-1]] == [{"key": 1, "orders": 5}]
