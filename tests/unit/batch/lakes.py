"""`file://` lakes for the lake's tests (no services): the fast lane run over a change log as
`python -m batch --continuous` runs it, and a lake's tables read through delta-rs in an order
two lakes can be compared in."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from batch.fastlane.archive import Record
from batch.fastlane.delta import Lake
from batch.fastlane.lane import FastLane, hot_tables
from config import Settings

PROCESSING_TIMES = {"archived_at"}  # when the lane wrote a row, not what the source said


class Killed(BaseException):
    """The process ends here: nothing after this line of the lane (or a Spark job) runs."""


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


def comparable(rows: pl.DataFrame) -> pl.DataFrame:
    """A table's rows without processing times, sorted by every column a sort can take."""
    rows = rows.drop(*(name for name in rows.columns if name in PROCESSING_TIMES))
    return rows.sort([name for name, dtype in rows.schema.items() if not isinstance(dtype, pl.List)], nulls_last=True)


def tables(settings: Settings) -> dict[str, pl.DataFrame]:
    """The tables the fast lane writes, by their place in the lake."""
    lake, found = Lake(settings), {}
    for location in hot_tables(settings):
        rows = lake.read(location)
        assert rows is not None, f"{location} was never written"
        found[location.removeprefix(settings.lake_uri)] = comparable(rows)
    return found


def lake_tables(settings: Settings, folder: Path) -> dict[str, pl.DataFrame]:
    """Every Delta table of the lake in `folder`, by its place in the lake."""
    local = lake_settings(settings, folder)
    lake = Lake(local)
    return {str(log.parent.relative_to(folder)): comparable(lake.read(f"{local.lake_uri}{log.parent.relative_to(folder)}"))
            for log in sorted(folder.rglob("_delta_log"))}


def assert_same_tables(found: dict[str, pl.DataFrame], expected: dict[str, pl.DataFrame]) -> None:
    """The same tables, each with the same columns and rows (types may differ: Spark writes longs)."""
    assert found.keys() == expected.keys()
    for name, rows in expected.items():
        assert sorted(found[name].columns) == sorted(rows.columns), name
        try:
            assert_frame_equal(found[name].select(rows.columns), rows, check_dtypes=False, check_row_order=True)
        except AssertionError as unequal:
            raise AssertionError(f"{name}: {unequal}") from None
