"""Silver's history: every version of orders and their details (`silver/orders_history`,
`silver/order_details_history`, key: the row's key and `source_position`), `valid_from` the
change's commit at the source and `valid_to` the next change's (null while current).

A job of its own, with its own mark on the archive (`silver/_marks_history.json`): Spark's
deferred work runs it beside the fast lane (nothing on the hot path reads the history),
a one-shot `python -m batch silver` right after Silver. It applies the archive's records
after its mark up to the version Silver has applied (a detail's order time comes from
Silver's orders), so however late it runs, it ends where a full rebuild would.
Run: `python -m batch silver`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from batch import paths
from batch.archive_reads import ARCHIVE_MARK, look_up, new_records
from batch.job import LayerJob
from batch.names import SILVER, archive_location, history_name
from batch.runs import LayerRun
from batch.store import delta_log, reads, writes
from batch.store.marks import read_marks
from batch.transforms import changes, silver
from batch.transforms.common import of_keys
from config import Settings

LAYER = SILVER


class HistoryJob(LayerJob):
    layer = LAYER
    marks_file = "_marks_history"

    @classmethod
    def inputs(cls, settings: Settings) -> dict[str, str]:
        return {ARCHIVE_MARK: archive_location(settings)}

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        # Only what Silver has applied: a detail's order time is looked up in Silver's orders.
        applied = read_marks(self.spark, self.settings, LAYER).get(ARCHIVE_MARK)
        if applied is None:
            return {}
        kept = [table for table in silver.TABLES if table.keeps_history]
        news = new_records(self.spark, self.settings, marks.get(ARCHIVE_MARK), until=int(applied),
                           topics=[self.settings.cdc_topic(table.name) for table in kept])
        if news is None:
            return {}
        for table in kept:
            if self.settings.cdc_topic(table.name) in news.records:
                row_changes = changes.row_changes(news.of(self.settings, table), table.name,
                                                  news.columns(self.settings, table), table.bronze_keys)
                conformed = silver.conform(look_up(self.spark, self.settings, row_changes, table), table)
                self.record(tables, table, conformed)
        return {ARCHIVE_MARK: str(news.version)}

    def record(self, tables: LayerRun, table: silver.SilverTable, conformed: DataFrame) -> None:
        """Every version of the table's rows: the new ones, and the versions already kept of
        the same keys (a new version closes the one before it)."""
        name = history_name(table.name)
        location = paths.path(self.settings, LAYER, name)
        keys = [*table.keys, silver.SOURCE_POSITION]
        with tables.table(name) as counts:
            versions = conformed.drop(silver.RAW, silver.FIRST_CHANGED_AT).localCheckpoint()
            counts.read = versions.count()
            if delta_log.exists(self.spark, location):
                kept = of_keys(reads.read(self.spark, location), versions, table.keys).drop("valid_from", "valid_to")
                versions = versions.unionByName(kept, allowMissingColumns=True).dropDuplicates(keys)
            counts.add(writes.upsert(self.spark, location, silver.history(versions, table), keys))
