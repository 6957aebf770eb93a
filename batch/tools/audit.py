"""`python -m batch audit`: the lake against MySQL, read over JDBC. Silver's live rows of each
table and Gold's live facts are compared by key and a row checksum; printed per table:
missing (in MySQL, not in the lake), extra (in the lake, no longer in MySQL) and different.
Exit 1 on any drift. Source rows that break Silver's rules are expected in the quarantine,
not in Silver, and are counted apart.

Run it when the lake has caught up with the source (after `python -m batch`, with no writes
under way): a change committed after the lake's last run shows as drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import typer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.layers.snapshot import read_table
from batch.names import gold_location, silver_location
from batch.runs import show_progress
from batch.session import build_session
from batch.store import reads
from batch.transforms import audit, silver
from batch.transforms.snapshot import DETAILS_QUERY
from config import Settings, settings


@dataclass(frozen=True)
class TableAudit:
    table: str
    source_rows: int
    quarantined: int  # source rows breaking Silver's rules
    drift: dict[str, int]

    @property
    def clean(self) -> bool:
        return not any(self.drift.values())

    def line(self) -> str:
        found = ", ".join(f"{kind} {count:,}" for kind, count in self.drift.items())
        return (f"{self.table:<22} {'ok   ' if self.clean else 'DRIFT'} {self.source_rows:,} source rows "
                f"({self.quarantined:,} breaking rules): {found}")


def audited_columns(table: silver.SilverTable) -> list[str]:
    """Silver's columns that come from the row itself (a detail's order time is looked up)."""
    return [name for name, expression in table.columns.items()
            if not any(column in expression for column in table.looked_up)]


def source_rows(spark: SparkSession, config: Settings, table: silver.SilverTable) -> DataFrame:
    """MySQL's rows of the table, as Silver names and types them."""
    rows = read_table(spark, config, DETAILS_QUERY if table.looked_up else table.name)
    return rows.select(*[F.expr(expression).alias(name) for name, expression in table.columns.items()])


class LakeAudit:
    def __init__(self, spark: SparkSession, config: Settings) -> None:
        self.spark, self.config = spark, config
        self.now = datetime.now(timezone.utc)
        self.valid: dict[str, DataFrame] = {}  # source rows passing Silver's rules, per table

    def silver_table(self, table: silver.SilverTable) -> TableAudit:
        live = reads.read(self.spark, silver_location(self.config, table.name)).filter("NOT is_deleted")
        known = {reference.table: self.valid[reference.table] for reference in table.references.values()}
        checked = silver.check_table(source_rows(self.spark, self.config, table), table, self.now, known).cache()
        self.valid[table.name] = silver.valid(checked, table)
        differences = audit.drift(self.valid[table.name], live, table.keys, audited_columns(table))
        return TableAudit(f"silver.{table.name}", checked.count(), silver.quarantined(checked).count(),
                          audit.counts(differences))

    def facts(self) -> TableAudit:
        expected = audit.expected_facts(self.valid["orders"], self.valid["order_details"])
        facts = (reads.read(self.spark, gold_location(self.config, "fact_orders"))
                 .filter("status != 'cancelled'"))
        differences = audit.drift(expected, facts, ["order_id"], audit.FACT_COLUMNS)
        return TableAudit("gold.fact_orders", expected.count(), 0, audit.counts(differences))

    def run(self) -> list[TableAudit]:
        return [*(self.silver_table(table) for table in silver.TABLES), self.facts()]


def main() -> None:
    """Compare the lake with MySQL (over JDBC): Silver's live rows and Gold's facts, by key
    and row checksum; missing / extra / different per table; exit 1 on any drift."""
    show_progress()
    spark = build_session(settings, "orderpipe-audit", lake_role="reader")
    try:
        audits = LakeAudit(spark, settings).run()
    finally:
        spark.stop()
    for table_audit in audits:
        typer.echo(table_audit.line())
    drifted = [table_audit.table for table_audit in audits if not table_audit.clean]
    typer.echo(f"audit: {'drift in ' + ', '.join(drifted) if drifted else 'the lake matches MySQL'}")
    if drifted:
        raise typer.Exit(1)
