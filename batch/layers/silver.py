"""Silver: the CDC archive's new records -> the latest valid version of every row.

The archive (`bronze/cdc_raw`, append-only) is read from the version Silver last applied (the
fast lane, batch.fastlane, applies the same rules per micro-batch while it runs, and keeps the
same mark). Each table's changes are taken in source
order, each change once (a replayed record has the source position of the first), the newest
per key winning unless Silver already holds a newer one. A delete keeps the row, marked
`is_deleted`. Rows breaking a rule go to `<table>_quarantine` with the rules' names and the
source row as JSON; a row's key leaves the valid table when its newest version is
quarantined; one that broke only a reference rule (its customer not in Silver yet: topics
are not ordered against each other) is checked again by every run that brings news of it or
of the referenced table. Records that are no row change go to `cdc_quarantine` with the
reason. Every table checks rows in = valid + quarantined. Every read of a stored table is
pruned to the keys the batch carries first, so a run costs what its changes cost. A first
run on an archive that does not reach back to the source's beginning starts from a JDBC
snapshot (`python -m batch snapshot`'s tables), the archive applied over it. Every version
of orders and details is kept by `batch.layers.history`, on its own clock.
Run: `python -m batch silver [--full]` (batch.flows: Silver, then its history).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch import paths
from batch.archive_reads import ARCHIVE_MARK, look_up, new_records
from batch.job import LayerJob
from batch.names import CDC_QUARANTINE, SILVER, quarantine_name, snapshot_location
from batch.runs import LayerRun, TableRun, log
from batch.store import delta_log, reads, writes
from batch.transforms import changes, silver
from batch.transforms.common import null_safe_join, of_keys
from config import Settings

LAYER = SILVER


class SilverJob(LayerJob):
    layer = LAYER
    writes_hot_tables = True

    def __init__(self, spark: SparkSession, settings: Settings, *, full: bool = False,
                 first_load: Callable[[], object] | None = None) -> None:
        """`first_load`: takes Bronze's JDBC snapshot, for a first run that needs one (batch.flows
        wires it)."""
        super().__init__(spark, settings, full=full)
        self.first_load = first_load
        self.referenced = reads.CachedColumns(spark)  # the keys the rules refer to
        self.now = datetime.now(timezone.utc)  # the rules that look at time judge against one moment
        self.orders_named = spark.createDataFrame([], "order_id string")  # by this run's order changes

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        news = new_records(self.spark, self.settings, marks.get(ARCHIVE_MARK))
        if news is None:
            return {}
        from_first_load = ARCHIVE_MARK not in marks and self.needs_first_load(news.archived)
        log.info("silver: %s new archive records (archive version %s)", f"{sum(news.records.values()):,}",
                 news.version)
        self.quarantine_unreadable(tables, news.archived, news.unreadable)
        for table in silver.TABLES:
            topic = self.settings.cdc_topic(table.name)
            referenced = {self.settings.cdc_topic(reference.table) for reference in table.references.values()}
            if (topic in news.records or referenced & set(news.records) or from_first_load
                    or not self.exists(table.name)):
                self.refine(tables, table, news.of(self.settings, table), news.columns(self.settings, table),
                            from_first_load=from_first_load)
        return {ARCHIVE_MARK: str(news.version)}

    def exists(self, table: str) -> bool:
        return delta_log.exists(self.spark, paths.path(self.settings, LAYER, table))

    def needs_first_load(self, archived: DataFrame) -> bool:
        """A first Silver run on an archive that does not reach back to the source's beginning
        starts from a JDBC snapshot of the source (Bronze's `snapshot` tables), with the
        archive's changes applied over it."""
        if self.exists(silver.ORDERS.name) or changes.reaches_back(archived):
            return False
        log.warning("the CDC archive does not reach back to the source's beginning (no connector snapshot, or "
                    "Kafka's retention cut the topics first): Silver starts from a JDBC snapshot of MySQL")
        if self.first_load is None:
            raise RuntimeError("Silver needs a JDBC snapshot of MySQL to start from: run `python -m batch snapshot`, "
                               "then Silver again")
        self.first_load()
        return True

    def quarantine_unreadable(self, tables: LayerRun, archived: DataFrame, unreadable: int) -> None:
        location = paths.path(self.settings, LAYER, CDC_QUARANTINE)
        if unreadable or not delta_log.exists(self.spark, location):
            with tables.table(CDC_QUARANTINE) as counts:
                counts.quarantined = unreadable
                counts.commits += writes.upsert(self.spark, location, changes.unreadable(archived),
                                                ["topic", "partition", "offset"]).commits

    def held_rows(self, table: silver.SilverTable,
                  newest: DataFrame) -> tuple[DataFrame, DataFrame | None, DataFrame] | None:
        """Silver's rows of `newest`'s keys and, for a table whose rows look up their order's
        time, from the same read, those its retiming looks at: the rows of the orders this run
        named and those still waiting for their order (no order time); and the persisted read
        both come from (unpersist it after the write). None when the table does not exist."""
        location = paths.path(self.settings, LAYER, table.name)
        if not delta_log.exists(self.spark, location):
            return None
        stored = reads.read(self.spark, location)
        if not table.looked_up:
            held = of_keys(stored, newest, table.keys).persist()
            return held, None, held
        flags = ["_held", "_named"]
        rows = (null_safe_join(stored, F.broadcast(newest.select(*table.keys).withColumn("_held", F.lit(True))),
                               table.keys, "left")
                .join(F.broadcast(self.orders_named.withColumn("_named", F.lit(True))), "order_id", "left")
                .fillna(False, flags)
                .filter(F.col("_held") | F.col("_named") | F.col("order_ts").isNull())
                .persist())
        retiming = rows.filter(F.col("_named") | F.col("order_ts").isNull()).drop(*flags)
        return rows.filter("_held").drop(*flags), retiming, rows

    def refine(self, tables: LayerRun, table: silver.SilverTable, archived: DataFrame, columns: list[str], *,
               from_first_load: bool) -> None:
        """Apply the table's changes among `archived` (the archive's new records; their row
        images' `columns`) to Silver, over the JDBC snapshot's rows when `from_first_load`."""
        spark, settings = self.spark, self.settings
        with tables.table(table.name) as counts:
            row_changes = changes.row_changes(archived, table.name, columns, table.bronze_keys)
            if from_first_load:
                snapshot = reads.read(spark, snapshot_location(settings, table.name))
                row_changes = row_changes.unionByName(changes.snapshot_changes(snapshot, table.name, columns))
            row_changes = look_up(spark, settings, row_changes, table)
            conformed = silver.conform(row_changes, table).persist()  # for the keys, and for the rows
            if table is silver.ORDERS:  # their details' order time may have moved
                self.orders_named = conformed.select("order_id").distinct().localCheckpoint()
            try:
                self.apply(counts, table, conformed)
            finally:
                conformed.unpersist()

    def apply(self, counts: TableRun, table: silver.SilverTable, conformed: DataFrame) -> None:
        """The conformed changes' newest per key, checked, into the table and its quarantine."""
        spark, settings = self.spark, self.settings
        location = paths.path(settings, LAYER, table.name)
        quarantine_location = paths.path(settings, LAYER, quarantine_name(table.name))
        quarantine = reads.read(spark, quarantine_location) if self.exists(quarantine_name(table.name)) else None
        candidates = conformed
        if table.references and quarantine is not None:
            # every quarantined row that may now pass, not only those of this batch's keys
            candidates = conformed.unionByName(silver.awaiting_references(quarantine, table),
                                               allowMissingColumns=True)
        newest = changes.newest_per_key(silver.with_first_change(candidates, table.keys), table.keys,
                                        silver.SOURCE_POSITION)
        held = retiming = read_once = None
        if (found := self.held_rows(table, newest)) is not None:
            held, retiming, read_once = found
        quarantined = None
        if quarantine is not None:  # read once: for the first commits, then for what it no longer holds
            quarantined = of_keys(quarantine, newest, table.keys).localCheckpoint()
            quarantined = None if quarantined.isEmpty() else quarantined
        if held is not None:  # persisted: read once, against the changes, then by the write
            earliest = silver.FIRST_CHANGED_AT if silver.FIRST_CHANGED_AT in held.columns else None
            newest = changes.newer_than_stored(newest, held, table.keys, silver.SOURCE_POSITION, earliest)
        if quarantined is not None:
            newest = silver.with_earliest_first_change(newest, quarantined, table.keys)
        known = {reference.table: self.keys_of(reference) for reference in table.references.values()}
        checked = silver.check_table(newest, table, self.now, known).persist()
        try:
            good, bad = silver.valid(checked, table), silver.quarantined(checked)
            tally = checked.agg(F.count("*").alias("read"),
                                F.count_if(F.size(silver.BROKEN_RULES) > 0).alias("quarantined"),
                                F.count_if(F.size(silver.BROKEN_RULES) == 0).alias("valid")).first()
            counts.read, counts.quarantined = tally["read"], tally["quarantined"]
            if counts.read != tally["valid"] + counts.quarantined:
                raise RuntimeError(f"silver.{table.name}: {counts.read} rows in but {tally['valid']} "
                                   f"valid + {counts.quarantined} quarantined; refusing to write")
            leaving = None
            if counts.quarantined and held is not None:  # only keys Silver holds: deleting none would still commit
                leaving = held.select(*table.keys).join(bad.select(*table.keys), list(table.keys), "left_semi")
            stored_after = self.stored_after(table, held, good, leaving)
            current = held
            if retiming is not None:
                retimed, their_rows = self.retimed(table, good, retiming)
                good, current = good.unionByName(retimed), held.unionByName(their_rows)
            counts.add(writes.upsert(spark, location, good, table.keys, deletes=leaving,
                                     partition_by=table.partition_by, current=current))
            self.write_quarantine(counts, table, bad, quarantined, stored_after)
        finally:
            checked.unpersist()
            if read_once is not None:
                read_once.unpersist()

    @staticmethod
    def stored_after(table: silver.SilverTable, held: DataFrame | None, good: DataFrame,
                     leaving: DataFrame | None) -> DataFrame:
        """Silver's versions (keys, source position) of the keys decided, once `good` is written."""
        versions = good.select(*table.keys, silver.SOURCE_POSITION)
        if held is not None:
            kept = held if leaving is None else null_safe_join(held, leaving, table.keys, "left_anti")
            versions = versions.unionByName(kept.select(*table.keys, silver.SOURCE_POSITION))
        return versions

    def write_quarantine(self, counts: TableRun, table: silver.SilverTable, bad: DataFrame,
                         quarantined: DataFrame | None, stored_after: DataFrame) -> None:
        """The rows breaking a rule into the table's quarantine, and the versions it held of the
        keys decided (`quarantined`) that it holds no longer (silver.settled) taken out."""
        location = paths.path(self.settings, LAYER, quarantine_name(table.name))
        version_keys = [*table.keys, silver.SOURCE_POSITION]
        gone = None
        if quarantined is not None:
            versions = quarantined.select(*version_keys).unionByName(bad.select(*version_keys))
            settled = silver.settled(versions, stored_after, table.keys).localCheckpoint()
            bad = null_safe_join(bad, settled, version_keys, "left_anti")
            gone = null_safe_join(quarantined.select(*version_keys), settled, version_keys, "left_semi")
        settling = gone is not None and not gone.isEmpty()
        if counts.quarantined or settling or not delta_log.exists(self.spark, location):
            counts.commits += writes.upsert(self.spark, location, bad, version_keys, deletes=gone,
                                            nullable_keys=table.keys).commits

    def retimed(self, table: silver.SilverTable, good: DataFrame, retiming: DataFrame) -> tuple[DataFrame, DataFrame]:
        """Silver's details whose order time moved, refreshed (silver.retimed), and the rows they
        replace: those of `retiming` (`held_rows`) that `good` does not write anyway."""
        pool = null_safe_join(retiming, good.select(*table.keys), table.keys, "left_anti").localCheckpoint()
        retimed = silver.retimed(look_up(self.spark, self.settings, pool, table), table).localCheckpoint()
        return retimed, null_safe_join(pool, retimed.select(*table.keys), table.keys, "left_semi")

    def keys_of(self, reference: silver.Reference) -> DataFrame:
        """The keys of the Silver table a rule refers to."""
        location = paths.path(self.settings, LAYER, reference.table)
        keys = self.referenced.read(location, [reference.key])
        return keys if keys is not None else reads.read(self.spark, location)  # no table: the read names it
