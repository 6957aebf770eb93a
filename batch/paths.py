"""Where each lake table lives on MinIO: the one place both engines take their locations from
(no engine is imported here)."""

from __future__ import annotations

from config import Settings

BRONZE, SILVER, GOLD = "bronze", "silver", "gold"
GOLD_FOLDERS = {"dim_": "dimensions", "fact_": "facts", "mart_": "marts"}
CDC_TABLES = ("orders", "order_details", "customers", "payment_method")
CDC_QUARANTINE = "cdc_quarantine"  # Silver's: archived records that are no row change
ARCHIVE_MARK = "cdc_raw"  # Silver's mark, in either engine: the archive's version applied


def path(settings: Settings, layer: str, table: str) -> str:
    """`s3a://silver/orders`; Gold's tables in `dimensions/`, `facts/` and `marts/`."""
    folder = next((name for prefix, name in GOLD_FOLDERS.items() if table.startswith(prefix)), None)
    return settings.lake_path(layer, *filter(None, (folder, table)))


def archive_location(settings: Settings) -> str:
    """Bronze's change log, `bronze/cdc_raw`: every CDC record once."""
    return path(settings, BRONZE, "cdc_raw")


def fast_lane_state(settings: Settings) -> str:
    """The fast lane's lease and progress (batch.fastlane.lease)."""
    return settings.lake_path(BRONZE, "_fast_lane.json")


def quarantine_name(table: str) -> str:
    return f"{table}_quarantine"


def commit_version(name: str) -> int | None:
    """The table version a `_delta_log` file name commits (`00000000000000000012.json`: 12);
    None for any other file there (checkpoints, CRCs, folders)."""
    return int(name[:-5]) if name.endswith(".json") and name[:-5].isdigit() else None
