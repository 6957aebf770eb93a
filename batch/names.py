"""The lake's shared names: its layers, the tables one job writes and another reads, and the
micro-batch the archive hands to the jobs after it. The layer jobs (batch/layers/) meet here
and in `changelog`, never in each other's modules."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Row

from batch import lake
from config import Settings

BRONZE, SILVER, GOLD = "bronze", "silver", "gold"
CDC_TABLES = ("orders", "order_details", "customers", "payment_method")
CDC_QUARANTINE = "cdc_quarantine"  # Silver's: archived records that are no row change


def archive_location(settings: Settings) -> str:
    """Bronze's change log, `bronze/cdc_raw`: every CDC record once."""
    return lake.path(settings, BRONZE, "cdc_raw")


def snapshot_location(settings: Settings, table: str) -> str:
    """Bronze's JDBC copy of a MySQL table (seed 000's layout)."""
    return lake.path(settings, BRONZE, table)


def silver_location(settings: Settings, table: str) -> str:
    return lake.path(settings, SILVER, table)


def gold_location(settings: Settings, table: str) -> str:
    return lake.path(settings, GOLD, table)


def quarantine_name(table: str) -> str:
    return f"{table}_quarantine"


def history_name(table: str) -> str:
    return f"{table}_history"


@dataclass(frozen=True)
class Appended:
    """A micro-batch's records as the archive committed them: the rows (cached, for the work
    after the append), the archive's version after the commit, how many, the seconds since
    the micro-batch began (a wait for its turn included), and per topic what Silver needs to
    know of them (`changes.per_topic`'s rows)."""

    records: DataFrame
    version: int
    rows: int
    seconds: float
    topics: dict[str, Row]
