"""The fast lane killed at every boundary between two commits of a micro-batch, then started again:
every table it writes ends as in a run that was never killed. On a `file://` lake (delta-rs, no
services, no JVM); the kill is the lane's own kill point (batch.kill_points): here an
exception that abandons the process's state at that line, and once a real SIGKILL of a process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from batch import kill_points
from batch.fastlane.lane import ARCHIVE_MARK, FastLane
from batch.paths import SILVER, archive_location
from batch.rules import TABLES
from batch.paths import quarantine_name
from config import Settings
from tests.unit.batch.change_log import shop_change_log
from tests.unit.batch.lakes import Killed, assert_same_tables, lake_settings, run_lane, tables

REPO_ROOT = Path(__file__).resolve().parents[3]
# Every boundary between two commits of a micro-batch, in the order the lane reaches them.
POINTS = [kill_points.ARCHIVE, kill_points.CDC_QUARANTINE,
          *(kill_points.silver(name) for table in TABLES for name in (table.name, quarantine_name(table.name))),
          kill_points.GOLD, *(kill_points.settled(quarantine_name(table.name)) for table in TABLES),
          kill_points.SILVER_MARKS, kill_points.GOLD_MARKS]
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
