"""Silver: the CDC archive's new records -> the latest valid version of every row, and every
version of orders and their details.

The archive (`bronze/cdc_raw`, append-only) is read from the version Silver last applied.
Each table's changes are taken in source order, each change once (a replayed record has
the source position of the first), the newest per key winning unless Silver already holds a
newer one. A delete keeps the row, marked `is_deleted`. Rows breaking a rule go to
`<table>_quarantine` with the rules' names and the source row as JSON; a row's key leaves
the valid table when its newest version is quarantined; one that broke only a reference
rule (its customer not in Silver yet: topics are not ordered against each other) is checked
again by every run that brings news of it or of the referenced table. Records that are no
row change go to `cdc_quarantine` with the reason. Every table checks rows in = valid + quarantined. A
first run on an archive that does not reach back to the source's beginning starts from a
JDBC snapshot (`python -m batch snapshot`'s tables), the archive applied over it.
Run: `python -m batch silver [--full]`.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch import lake
from batch.archive import archive_location
from batch.job import LayerJob
from batch.runs import LayerRun, log
from batch.snapshot import LAYER as SNAPSHOT_LAYER
from batch.snapshot import SnapshotJob
from batch.transforms import changes, silver
from config import Settings

LAYER = "silver"
ARCHIVE_MARK = "cdc_raw"  # the mark's name: the archive's version applied
CDC_QUARANTINE = "cdc_quarantine"


def quarantine_name(table: str) -> str:
    return f"{table}_quarantine"


def history_name(table: str) -> str:
    return f"{table}_history"


class SilverJob(LayerJob):
    layer = LAYER

    def __init__(self, spark: SparkSession, settings: Settings, *, full: bool = False) -> None:
        super().__init__(spark, settings, full=full)
        self.now = datetime.now(timezone.utc)  # the rules that look at time judge against one moment

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        location = archive_location(self.settings)
        if not lake.exists(self.spark, location):
            raise RuntimeError(f"no CDC archive at {location}: run `python -m batch bronze` "
                               "(or `python -m batch`), which drains the CDC topics into it")
        seen = marks.get(ARCHIVE_MARK)
        archived, version = lake.changes_since(self.spark, location, None if seen is None else int(seen))
        if str(version) == seen:
            return {}
        archived = archived.select("topic", "partition", "offset", "key", "value", "op", "source_file",
                                   "source_pos", "source_row", "source_ts").localCheckpoint()
        seeded = seen is None and self.needs_seed(archived)
        topics = {row["topic"]: row for row in changes.per_topic(archived).collect()}
        log.info("silver: %s new archive records (archive version %s)",
                 f"{sum(row['records'] for row in topics.values()):,}", version)
        self.quarantine_unreadable(tables, archived, sum(row["unreadable"] for row in topics.values()))
        fields: dict[str, list[str]] = {}
        for row in changes.image_fields(archived).collect():
            fields.setdefault(row["topic"], []).append(row["name"])
        for table in silver.TABLES:
            topic = self.settings.cdc_topic(table.name)
            referenced = {self.settings.cdc_topic(reference.table) for reference in table.references.values()}
            if topic in topics or referenced & set(topics) or seeded or not self.exists(table.name):
                columns = [*table.image_columns, *changes.extra_columns(fields.get(topic, []), table.image_columns)]
                self.refine(tables, table, archived.filter(F.col("topic") == topic), columns, seeded=seeded)
        return {ARCHIVE_MARK: str(version)}

    def exists(self, table: str) -> bool:
        return lake.exists(self.spark, lake.path(self.settings, LAYER, table))

    def needs_seed(self, archived: DataFrame) -> bool:
        """A first Silver run on an archive that does not reach back to the source's beginning
        starts from a JDBC snapshot of the source (Bronze's `snapshot` tables), with the
        archive's changes applied over it."""
        if self.exists(silver.ORDERS.name) or changes.reaches_back(archived):
            return False
        log.warning("the CDC archive does not reach back to the source's beginning (no connector snapshot, or "
                    "Kafka's retention cut the topics first): Silver starts from a JDBC snapshot of MySQL")
        SnapshotJob.once(self.spark, self.settings, full=True)
        return True

    def quarantine_unreadable(self, tables: LayerRun, archived: DataFrame, unreadable: int) -> None:
        location = lake.path(self.settings, LAYER, CDC_QUARANTINE)
        if unreadable or not lake.exists(self.spark, location):
            with tables.table(CDC_QUARANTINE) as counts:
                counts.quarantined = unreadable
                lake.upsert(self.spark, location, changes.unreadable(archived), ["topic", "partition", "offset"])

    def refine(self, tables: LayerRun, table: silver.SilverTable, archived: DataFrame, columns: list[str], *,
               seeded: bool) -> None:
        """Apply the table's changes among `archived` (the archive's new records; their row
        images' `columns`) to Silver, over the JDBC snapshot's rows when `seeded`."""
        spark, settings = self.spark, self.settings
        location = lake.path(settings, LAYER, table.name)
        with tables.table(table.name) as counts:
            row_changes = changes.row_changes(archived, table.name, columns, table.bronze_keys)
            if seeded:
                snapshot = lake.read(spark, lake.path(settings, SNAPSHOT_LAYER, table.name))
                row_changes = row_changes.unionByName(changes.snapshot_changes(snapshot, table.name, columns))
            row_changes = self.look_up(row_changes, table)
            conformed = silver.conform(row_changes, table).localCheckpoint()
            if table.keeps_history:
                self.record_history(tables, table, conformed)
            quarantine = lake.path(settings, LAYER, quarantine_name(table.name))
            candidates = conformed
            if table.references and lake.exists(spark, quarantine):
                candidates = conformed.unionByName(silver.awaiting_references(lake.read(spark, quarantine), table),
                                                   allowMissingColumns=True)
            newest = changes.newest_per_key(candidates, table.keys, silver.SOURCE_POSITION)
            if lake.exists(spark, location):
                newest = changes.newer_than_stored(newest, lake.read(spark, location), table.keys,
                                                   silver.SOURCE_POSITION)
            known = {reference.table: lake.read(spark, lake.path(settings, LAYER, reference.table))
                     for reference in table.references.values()}
            checked = silver.check_table(newest, table, self.now, known).localCheckpoint()
            good, bad = silver.valid(checked, table), silver.quarantined(checked)
            tally = checked.agg(F.count("*").alias("read"),
                                F.count_if(F.size(silver.BROKEN_RULES) > 0).alias("quarantined"),
                                F.count_if(F.size(silver.BROKEN_RULES) == 0).alias("valid")).first()
            counts.read, counts.quarantined = tally["read"], tally["quarantined"]
            if counts.read != tally["valid"] + counts.quarantined:
                raise RuntimeError(f"silver.{table.name}: {counts.read} rows in but {tally['valid']} "
                                   f"valid + {counts.quarantined} quarantined; refusing to write")
            leaving = bad.select(*table.keys)
            if lake.exists(spark, location):  # only keys Silver holds: deleting none would still commit
                leaving = leaving.join(lake.read(spark, location).select(*table.keys), list(table.keys), "left_semi")
            counts.written = lake.upsert(spark, location, good, table.keys, deletes=leaving,
                                         partition_by=table.partition_by).rows
            if counts.quarantined or not lake.exists(spark, quarantine):
                lake.upsert(spark, quarantine, bad, [*table.keys, silver.SOURCE_POSITION])

    def look_up(self, row_changes: DataFrame, table: silver.SilverTable) -> DataFrame:
        """Join in the read columns a change's row image lacks (a detail's order time)."""
        if not table.looked_up:
            return row_changes
        orders = lake.path(self.settings, LAYER, silver.ORDERS.name)
        if not lake.exists(self.spark, orders):
            return row_changes.withColumn("order_timestamp", F.lit(None).cast("timestamp"))
        times = lake.read(self.spark, orders).select(F.col("order_id").alias("_order"),
                                                     F.col("order_ts").alias("order_timestamp"))
        return (row_changes.join(times, F.trim(row_changes["order_id"]) == times["_order"], "left")
                .drop("_order"))

    def record_history(self, tables: LayerRun, table: silver.SilverTable, conformed: DataFrame) -> None:
        """Every version of the table's rows: the new ones, and the versions already kept of
        the same keys (a new version closes the one before it)."""
        name = history_name(table.name)
        location = lake.path(self.settings, LAYER, name)
        keys = [*table.keys, silver.SOURCE_POSITION]
        with tables.table(name) as counts:
            versions = conformed.drop(silver.RAW)
            counts.read = versions.count()
            if lake.exists(self.spark, location):
                kept = (lake.read(self.spark, location).drop("valid_from", "valid_to")
                        .join(F.broadcast(versions.select(*table.keys).distinct()), list(table.keys), "left_semi"))
                versions = versions.unionByName(kept, allowMissingColumns=True).dropDuplicates(keys)
            counts.written = lake.upsert(self.spark, location, silver.history(versions, table), keys).rows


run = SilverJob.once
