"""Bronze: the source rows as they are, plus the partition columns and the read queries."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

PARTITION_COLUMNS = ("year", "month", "day")

# order_details has no time of its own: it is read with its order's timestamp, which
# partitions it and scopes incremental reads. A LEFT JOIN keeps details whose order is gone.
DETAILS_QUERY = ("(SELECT d.order_id, d.product_id, d.quantity, o.`timestamp` AS order_timestamp"
                 " FROM order_details d LEFT JOIN orders o ON o.id = d.order_id) AS details")


def with_date_partitions(rows: DataFrame, timestamp_column: str) -> DataFrame:
    """Add year, month and day of `timestamp_column`, the Bronze partitioning of orders."""
    moment = F.col(timestamp_column)
    return rows.withColumns({"year": F.year(moment), "month": F.month(moment),
                             "day": F.dayofmonth(moment)})


def hash_predicates(key: str, partitions: int, since_column: str | None = None,
                    since: str | None = None) -> list[str]:
    """WHERE clauses splitting a table into `partitions` parallel JDBC reads by a hash of
    `key` (works for any key type, e.g. the orders' UUIDs), optionally from `since` on
    (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC)."""
    scope = f" AND `{since_column}` >= '{since}'" if since else ""
    return [f"MOD(CRC32(`{key}`), {partitions}) = {part}{scope}" for part in range(partitions)]
