"""The fast lane killed at every boundary between two commits of a micro-batch, then started again:
every table it writes ends as in a run that was never killed. On a `file://` lake (delta-rs, no
services, no JVM); the kill is the lane's own kill point (batch.fastlane.kill_points): here an
exception that abandons the process's state at that line, and once a real SIGKILL of a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from batch import kill_points
from batch.fastlane.archive import Record
from batch.fastlane.lane import ARCHIVE_MARK, FastLane, hot_tables
from batch.paths import SILVER, archive_location
from batch.rules import TABLES
from batch.paths import quarantine_name
from config import Settings
from tests.unit.batch.change_log import shop_change_log

REPO_ROOT = Path(__file__).resolve().parents[3]
# Every boundary between two commits of a micro-batch, in the order the lane reaches them.
POINTS = [kill_points.ARCHIVE, kill_points.CDC_QUARANTINE,
          *(kill_points.silver(name) for table in TABLES for name in (table.name, quarantine_name(table.name))),
          kill_points.GOLD, *(kill_points.settled(quarantine_name(table.name)) for table in TABLES),
          kill_points.SILVER_MARKS, kill_points.GOLD_MARKS]
PROCESSING_TIMES = {"archived_at"}  # when the lane wrote a row, not what the source said


class Killed(BaseException):
    """The process ends here: nothing after this line of the lane runs."""


def lake_settings(settings: Settings, folder: Path, kill_at: str | None = None) -> Settings:
    return settings.model_copy(update={"lake_uri": f"file://{folder}/", "lake_kill_at": kill_at})


def run_lane(settings: Settings, batches: list[list[Record]], kill=None) -> list[dict[str, int]]:
    """As `python -m batch --continuous` starts: recover what the archive holds beyond Silver's
    mark, then read each partition on from the archive's offsets, a micro-batch at a time. How
    often each kill point was reached by the end of each micro-batch."""
    lane = FastLane(settings)
    if kill is not None:
        lane.kill_points.kill = kill
    lane.check_tables()
    lane.recover()
    start = lane.next_offsets({(record.topic, record.partition) for records in batches for record in records})
    reached = []
    for records in batches:
        unread = [record for record in records
                  if start[(record.topic, record.partition)] is None
                  or record.offset >= start[(record.topic, record.partition)]]
        if unread:
            lane.apply(unread)
        reached.append(dict(lane.kill_points.reached_count))
    return reached


def tables(settings: Settings) -> dict[str, pl.DataFrame]:
    lane = FastLane(settings)
    found = {}
    for location in hot_tables(settings):
        rows = lane.lake.read(location)
        assert rows is not None, f"{location} was never written"
        rows = rows.drop(*(name for name in rows.columns if name in PROCESSING_TIMES))
        comparable = [name for name, dtype in rows.schema.items() if not isinstance(dtype, pl.List)]
        found[location.removeprefix(settings.lake_uri)] = rows.sort(comparable, nulls_last=True)
    return found


@pytest.fixture(scope="module")
def change_log(settings):
    return shop_change_log(settings)


@pytest.fixture(scope="module")
def never_killed(settings, change_log, tmp_path_factory):
    folder = tmp_path_factory.mktemp("never-killed")
    run_lane(lake_settings(settings, folder), change_log)
    return tables(lake_settings(settings, folder))


@pytest.fixture(scope="module")
def reached(settings, change_log, tmp_path_factory) -> list[dict[str, int]]:
    """Each kill point's count by the end of each micro-batch (a lane counting points, killed nowhere)."""
    return run_lane(lake_settings(settings, tmp_path_factory.mktemp("counted"), kill_at="nowhere"), change_log)


# The micro-batches killed in: the second (incomplete orders, a record that is no JSON, orders of
# a customer not known yet) and the third (that customer arrives: orders leave the quarantine).
KILLED_BATCHES = (1, 2)


def assert_same_tables(found: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    assert found.keys() == expected.keys()
    for name, rows in expected.items():
        assert sorted(found[name].columns) == sorted(rows.columns), name
        try:
            assert_frame_equal(found[name].select(rows.columns), rows, check_dtypes=False, check_row_order=True)
        except AssertionError as unequal:
            raise AssertionError(f"{name}: {unequal}") from None


def test_the_change_log_leaves_incomplete_orders_quarantined_rows_and_cancellations(never_killed):
    facts = never_killed["gold/facts/fact_orders"]
    assert set(facts["status"]) == {"complete", "incomplete", "cancelled"}
    assert never_killed["silver/cdc_quarantine"].height == 1
    assert "late-customer" in never_killed["silver/orders"]["order_id"].to_list()  # let out once its customer came


@pytest.mark.parametrize("batch", KILLED_BATCHES)
@pytest.mark.parametrize("point", POINTS)
def test_a_lane_killed_between_two_commits_and_started_again_leaves_every_table_exact(
        settings, change_log, never_killed, reached, tmp_path, point, batch):
    before = reached[batch - 1].get(point, 0)
    if reached[batch].get(point, 0) == before:
        pytest.fail(f"{point} is not reached in micro-batch {batch + 1}: change the change log, not the test")
    local = lake_settings(settings, tmp_path, kill_at=f"{point}@{before + 1}")

    def kill():
        raise Killed(point)

    with pytest.raises(Killed):
        run_lane(local, change_log, kill=kill)
    killed = FastLane(local)
    archived, mark = killed.lake.version(archive_location(local)), killed.objects.read_marks(SILVER).get(ARCHIVE_MARK)
    if POINTS.index(point) < POINTS.index(kill_points.SILVER_MARKS):
        assert int(mark) < archived  # killed mid-batch: the archive holds records Silver's mark has not reached

    run_lane(lake_settings(settings, tmp_path), change_log)

    assert_same_tables(tables(local), never_killed)


def test_a_real_sigkill_after_silver_orders_and_a_new_process_leave_every_table_exact(never_killed, tmp_path):
    """The case that once lost orders from Gold: Silver's orders committed, Gold not yet."""
    run = [sys.executable, "-m", "tests.unit.batch.test_lane_kills", str(tmp_path)]
    killed = subprocess.run(run, cwd=REPO_ROOT, env={**os.environ, "LAKE_KILL_AT": "silver:orders@2"},
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    again = subprocess.run(run, cwd=REPO_ROOT, env={k: v for k, v in os.environ.items() if k != "LAKE_KILL_AT"},
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same_tables(tables(lake_settings(Settings(), tmp_path)), never_killed)


if __name__ == "__main__":  # the real-SIGKILL test's process: the lane over the change log on a file:// lake
    process_settings = Settings()
    lake = process_settings.model_copy(update={"lake_uri": f"file://{sys.argv[1]}/"})
    run_lane(lake, shop_change_log(process_settings))
