"""The lake's shared names: its layers and the tables one job writes and another reads. The layer jobs (batch/layers/) meet here
and in `changelog`, never in each other's modules."""

from __future__ import annotations

from batch import paths
from batch.paths import (BRONZE, CDC_QUARANTINE, CDC_TABLES, GOLD, SILVER, archive_location,  # noqa: F401
                         quarantine_name)
from config import Settings


def snapshot_location(settings: Settings, table: str) -> str:
    """Bronze's JDBC copy of a MySQL table: `bronze/<table>`."""
    return paths.path(settings, BRONZE, table)


def silver_location(settings: Settings, table: str) -> str:
    return paths.path(settings, SILVER, table)


def gold_location(settings: Settings, table: str) -> str:
    return paths.path(settings, GOLD, table)


def history_name(table: str) -> str:
    return f"{table}_history"
