"""What a Delta table's log says, read from its files directly (the protocol: the newest
`_delta_log/<version>.json` is the version, its `commitInfo` line holds the metrics):
`DeltaTable.history` would answer the same with a Spark job and a snapshot update, and an
incremental run asks about twenty times."""

from __future__ import annotations

import orjson
from pyspark.sql import SparkSession

from batch.paths import commit_version
from batch.store import files
from config import Settings


def _commit_file(location: str, number: int) -> str:
    return f"{location}/_delta_log/{number:020d}.json"


def version(spark: SparkSession, location: str) -> int | None:
    """The table's current version: its newest commit file (None: not a Delta table)."""
    commits = [number for name in files.listed_names(spark, f"{location}/_delta_log")
               if (number := commit_version(name)) is not None]
    return max(commits, default=None)


def exists(spark: SparkSession, location: str) -> bool:
    return version(spark, location) is not None


def tables(spark: SparkSession, settings: Settings, layer: str) -> list[str]:
    """Every Delta table of a layer (its data tables and quarantines), found by their
    `_delta_log` folders up to two levels down (Gold's `facts/fact_orders`)."""
    found, folders = [], [settings.lake_path(layer)]
    for _ in range(2):
        children = []
        for folder in folders:
            for child in files.subfolders(spark, folder):
                (found if exists(spark, child) else children).append(child)
        folders = children
    return sorted(found)


def rows_changed(spark: SparkSession, location: str, after: int, now: int) -> bool:
    """Whether a commit after version `after`, up to `now`, changed the table's rows or schema:
    it added or removed a file as a data change (a compaction rewrites files with
    `dataChange` false; a vacuum adds or removes none) or changed the metadata. A version
    behind `after` (the table rebuilt since) or a commit no longer in the log counts as a change."""
    if now < after:
        return True
    for number in range(after + 1, now + 1):
        commit = files.read_text(spark, _commit_file(location, number))
        if commit is None:
            return True
        for action in map(orjson.loads, commit.splitlines()):
            if "metaData" in action or any(action.get(kind, {}).get("dataChange") for kind in ("add", "remove")):
                return True
    return False


def commit_metrics(spark: SparkSession, location: str, number: int | None = None) -> dict[str, int]:
    """The operation metrics of the table's newest commit (or commit `number`)."""
    number = version(spark, location) if number is None else number
    commit = files.read_text(spark, _commit_file(location, number))
    info = next(action["commitInfo"] for action in map(orjson.loads, commit.splitlines())
                if "commitInfo" in action)
    return {name: int(value) for name, value in (info.get("operationMetrics") or {}).items()}
