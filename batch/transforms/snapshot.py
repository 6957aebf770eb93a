"""Bronze: the source rows as they are, plus the partition columns and the read queries."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch.rules import SNAPSHOT_PARTITION_COLUMNS as PARTITION_COLUMNS  # noqa: F401

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


# Reference tables (customers, payment_method) carry no change time, so an incremental run
# cannot ask the source for what changed since. It asks for a signature per bucket of
# BUCKET_KEYS consecutive ids instead (row count and the XOR of every row's 64-bit MD5
# prefix, computed by the database), and reads only the buckets whose signature moved: a
# bucket's rows changed, were added or deleted. 1,000,000 customers are 100 small rows.
BUCKET_KEYS = 10_000


def bucket_signatures_query(table: str, key: str, columns: list[str], bucket_keys: int = BUCKET_KEYS) -> str:
    """A JDBC `dbtable` subquery: bucket, n (rows) and sig (their signature) per bucket of `key`."""
    fields = ", ".join(f"IFNULL(CAST(`{column}` AS CHAR), '\\\\N')" for column in columns)
    row = f"CONV(LEFT(MD5(CONCAT_WS('|', {fields})), 16), 16, 10)"
    return (f"(SELECT `{key}` DIV {bucket_keys} AS bucket, COUNT(*) AS n, CAST(BIT_XOR({row}) AS CHAR) AS sig"
            f" FROM `{table}` GROUP BY `{key}` DIV {bucket_keys}) AS signatures")


def changed_buckets(before: dict[str, str], now: dict[str, str]) -> list[int]:
    """Buckets whose signature moved, appeared or vanished (every row of it deleted)."""
    return sorted(int(bucket) for bucket in before.keys() | now.keys() if before.get(bucket) != now.get(bucket))


def bucket_predicates(key: str, buckets: list[int], partitions: int, bucket_keys: int = BUCKET_KEYS) -> list[str]:
    """WHERE clauses reading `buckets` in up to `partitions` parallel JDBC reads."""
    shares = [buckets[part::partitions] for part in range(partitions)]
    return [f"`{key}` DIV {bucket_keys} IN ({', '.join(map(str, share))})" for share in shares if share]
