"""`python -m batch maintain`: compact every lake table's small files (OPTIMIZE) and delete the
files no version within the retention needs (VACUUM).

Every run of a layer leaves a few small files per table; reads slow down as they pile up.
Compaction rewrites them into few large ones in a commit that changes no data (the next
layer's change feed reads nothing from it). The retention must be longer than the time
between a layer's runs: the next layer reads the change feed files a vacuum would delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Annotated

import typer
from delta.tables import DeltaTable
from pyspark.sql import SparkSession

from batch.fastlane.lane import hot_tables
from batch.names import BRONZE, GOLD, SILVER
from batch.runs import log, show_progress
from batch.session import build_session
from batch.store import delta_log, files
from batch.store.marks import fast_lane
from config import Settings, settings

LAYERS = (BRONZE, SILVER, GOLD)
Layer = Enum("Layer", {name: name for name in LAYERS}, type=str)
DELTA_DEFAULT_RETAIN_HOURS = 168  # below this Delta refuses to vacuum unless told otherwise


@dataclass(frozen=True)
class Maintained:
    location: str
    files_before: int
    files_after: int
    stored_before: int
    stored_after: int

    def line(self) -> str:
        return (f"{self.location}: files in the current version {self.files_before:,} -> {self.files_after:,}, "
                f"stored data files {self.stored_before:,} -> {self.stored_after:,}")


def live_files(spark: SparkSession, location: str) -> int:
    return DeltaTable.forPath(spark, location).detail().first()["numFiles"]


def vacuum(spark: SparkSession, location: str, retain_hours: float) -> None:
    """LITE finds the files to delete in the table's log instead of listing the folder (2 s
    rather than 40 s a table here); files no commit ever named (a job killed mid-write) need
    the FULL listing, which Delta says by refusing LITE."""
    try:
        spark.sql(f"VACUUM delta.`{location}` RETAIN {retain_hours} HOURS LITE")
    except Exception as error:  # noqa: BLE001 - py4j wraps Delta's own error
        if "DELTA_CANNOT_VACUUM_LITE" not in str(error):
            raise
        DeltaTable.forPath(spark, location).vacuum(retain_hours)


def maintain(spark: SparkSession, location: str, retain_hours: float) -> Maintained:
    before, stored_before = live_files(spark, location), files.stored_files(spark, location)
    DeltaTable.forPath(spark, location).optimize().executeCompaction()
    vacuum(spark, location, retain_hours)
    return Maintained(location, before, live_files(spark, location), stored_before,
                      files.stored_files(spark, location))


def maintain_lake(spark: SparkSession, config: Settings, layers=LAYERS,
                  retain_hours: float | None = None) -> list[Maintained]:
    hours = config.lake_vacuum_retain_hours if retain_hours is None else retain_hours
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled",
                   str(hours >= DELTA_DEFAULT_RETAIN_HOURS).lower())
    done, owned = [], set(hot_tables(config)) if fast_lane(spark, config) is not None else set()
    for layer in layers:
        for location in delta_log.tables(spark, config, layer):
            if location.rstrip("/") in owned:
                log.info("%s: left to the fast lane, which owns it while it runs (and compacts it itself)", location)
                continue
            done.append(maintain(spark, location, hours))
            log.info(done[-1].line())
    return done


def main(
    layers: Annotated[list[Layer] | None, typer.Argument(
        help="Layers to maintain (bronze silver gold); all of them when none is named.",
        show_default=False)] = None,
    retain_hours: Annotated[float | None, typer.Option(
        "--retain-hours", min=0, show_default=False,
        help="Keep the files older versions need for this long (default: LAKE_VACUUM_RETAIN_HOURS, "
             "168). Keep it longer than the time between batch runs.")] = None,
) -> None:
    """Compact and vacuum every Delta table of the lake, printing file counts before and after."""
    show_progress()
    spark = build_session(settings, "orderpipe-maintain")
    try:
        done = maintain_lake(spark, settings, [layer.value for layer in layers or Layer], retain_hours)
    finally:
        spark.stop()
    log.info("maintained %d tables: data files stored %s -> %s", len(done),
             f"{sum(m.stored_before for m in done):,}", f"{sum(m.stored_after for m in done):,}")
