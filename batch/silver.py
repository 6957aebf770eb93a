"""Silver: Bronze's changes since the last run -> the latest valid version of every row.

Rows breaking a rule go to `<table>_quarantine` with the rules' names and the Bronze row as
JSON; a row's key leaves the valid table when its newest version is quarantined or deleted.
Every table checks rows in = valid + quarantined. Run: `python -m batch silver [--full]`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch import lake
from batch.job import LayerJob
from batch.runs import LayerRun
from batch.transforms import silver
from batch.transforms.common import missing_keys
from config import Settings

LAYER = "silver"


def quarantine_name(table: str) -> str:
    return f"{table}_quarantine"


class SilverJob(LayerJob):
    layer = LAYER

    def __init__(self, spark: SparkSession, settings: Settings, *, full: bool = False) -> None:
        super().__init__(spark, settings, full=full)
        self.now = datetime.now(timezone.utc)  # the rules that look at time judge against one moment

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        seen = {name: int(version) for name, version in marks.items()}
        return {table.name: str(self.refine(tables, table, seen=seen.get(table.name))) for table in silver.TABLES}

    def refine(self, tables: LayerRun, table: silver.SilverTable, *, seen: int | None) -> int:
        """Bring the table's Bronze changes after version `seen` (all, when None) into Silver;
        returns the Bronze version now read."""
        spark, settings = self.spark, self.settings
        bronze_location = lake.path(settings, "bronze", table.name)
        location = lake.path(settings, LAYER, table.name)
        with tables.table(table.name) as counts:
            changes, bronze_version = lake.changes_since(spark, bronze_location, seen)
            if bronze_version == seen:
                return bronze_version
            # A first read is Bronze's snapshot, each key once: no newest change to pick.
            latest = (changes if seen is None else silver.latest_changes(changes, table.bronze_keys)).localCheckpoint()
            known = {reference.table: lake.read(spark, lake.path(settings, LAYER, reference.table))
                     for reference in table.references.values()}
            checked = silver.check_table(silver.conform(latest, table), table, self.now, known).localCheckpoint()
            good, bad = silver.valid(checked, table), silver.quarantined(checked)
            tally = checked.agg(F.count("*").alias("read"),
                                F.count_if(F.size(silver.BROKEN_RULES) > 0).alias("quarantined"),
                                F.count_if(F.size(silver.BROKEN_RULES) == 0).alias("valid")).first()
            counts.read, counts.quarantined = tally["read"], tally["quarantined"]
            if counts.read != tally["valid"] + counts.quarantined:
                raise RuntimeError(f"silver.{table.name}: {counts.read} rows in but {tally['valid']} "
                                   f"valid + {counts.quarantined} quarantined; refusing to write")
            leaving = silver.deleted_keys(latest, table).unionByName(bad.select(*table.keys))
            if seen is None and lake.exists(spark, location):  # a full read: drop what Bronze lost
                leaving = leaving.unionByName(missing_keys(lake.read(spark, location), checked, table.keys))
            counts.written = lake.upsert(spark, location, good, table.keys, deletes=leaving.distinct(),
                                         partition_by=table.partition_by).rows
            quarantine = lake.path(settings, LAYER, quarantine_name(table.name))
            if counts.quarantined or not lake.exists(spark, quarantine):
                lake.upsert(spark, quarantine, bad, [*table.keys, silver.SOURCE_VERSION])
        return bronze_version


run = SilverJob.once
