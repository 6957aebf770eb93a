"""How far each Spark job has read its input, and whether the fast lane holds the hot tables.

One small JSON object per job (`<layer>/_marks.json`: table -> mark, and when it was written;
a second job of a layer names its own file), replaced whole after the job's data is committed.
A Delta table of marks (the older form, still read when a lake has no JSON marks) costs a
snapshot and several Spark jobs per read. The fast lane writes the same format
(`batch.fastlane.delta.Objects`)."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch.fastlane.lease import fresh
from batch.paths import fast_lane_state, path
from batch.store import files
from batch.store.delta_log import exists
from batch.store.reads import read
from batch.transforms.common import latest_per_key
from config import Settings

MARKS = "_marks"


def _marks_location(settings: Settings, layer: str, name: str) -> str:
    return settings.lake_path(layer, f"{name}.json")


def read_marks(spark: SparkSession, settings: Settings, layer: str, name: str = MARKS) -> dict[str, str]:
    """The job's stored marks (table -> mark), empty before its first run."""
    stored = files.read_text(spark, _marks_location(settings, layer, name))
    if stored is not None:
        return orjson.loads(stored)["marks"]
    legacy = path(settings, layer, "_marks")  # a lake written before the JSON marks
    if not exists(spark, legacy):
        return {}
    newest = latest_per_key(read(spark, legacy), ["table"], [F.col("written_at").desc()])
    return {row["table"]: row["mark"] for row in newest.collect()}


def write_marks(spark: SparkSession, settings: Settings, layer: str, marks: dict[str, str], *,
                stored: dict[str, str], name: str = MARKS) -> None:
    """Store the layer's marks when any differs from `stored` (as `read_marks` gave them),
    after its data is committed: a crash in between only makes the next run read some rows
    again, which turns into no change."""
    if all(stored.get(table) == mark for table, mark in marks.items()):
        return
    written_at = datetime.now(timezone.utc).isoformat()
    files.write_bytes(spark, _marks_location(settings, layer, name),
                      orjson.dumps({"marks": {**stored, **marks}, "written_at": written_at}))


def fast_lane(spark: SparkSession, settings: Settings) -> dict | None:
    """The fast lane's state while its lease is fresh (it owns the hot tables), else None."""
    stored = files.read_text(spark, fast_lane_state(settings))
    state = orjson.loads(stored) if stored else None
    return state if fresh(state) else None
