"""The lake against its source, row by row. Pure.

Both sides are reduced to their keys and a checksum of the compared columns (null-safe: a
row's columns as JSON, nulls kept), then joined by key: a key only the source has is
`missing` from the lake, one only the lake has is `extra`, one whose checksums differ is
`different`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

KINDS = ("missing", "extra", "different")


def checksum(columns: Sequence[str]) -> Column:
    return F.xxhash64(F.to_json(F.struct(*[F.col(name) for name in columns]), {"ignoreNullFields": "false"}))


def drift(source: DataFrame, lake: DataFrame, keys: Sequence[str], columns: Sequence[str]) -> DataFrame:
    """The keys on which the two sides differ, with `kind` (missing, extra or different)."""
    left = source.select(*keys, checksum(columns).alias("_source"))
    right = lake.select(*keys, checksum(columns).alias("_lake"))
    return (left.join(right, list(keys), "full_outer")
            .withColumn("kind", F.when(F.col("_lake").isNull(), "missing")
                        .when(F.col("_source").isNull(), "extra")
                        .when(F.col("_source") != F.col("_lake"), "different"))
            .filter(F.col("kind").isNotNull())
            .select(*keys, "kind"))


def counts(differences: DataFrame) -> dict[str, int]:
    """missing, extra and different: how many keys of each."""
    found = {row["kind"]: row["n"] for row in differences.groupBy("kind").agg(F.count("*").alias("n")).collect()}
    return {kind: found.get(kind, 0) for kind in KINDS}


def expected_facts(orders: DataFrame, details: DataFrame) -> DataFrame:
    """What fact_orders must say of each live order: its references, size and whether it is
    complete (from the source's orders and details, as Silver names them)."""
    sizes = details.groupBy("order_id").agg(F.count("*").alias("detail_count"),
                                             F.sum("quantity").cast("int").alias("total_quantity"))
    detail_count = F.coalesce("detail_count", F.lit(0)).cast("int")
    return (orders.join(sizes, "order_id", "left")
            .select("order_id", "customer_id", "payment_method_id", "num_products",
                    detail_count.alias("detail_count"),
                    F.coalesce("total_quantity", F.lit(0)).cast("int").alias("total_quantity"),
                    F.when(detail_count == F.col("num_products"), "complete").otherwise("incomplete").alias("status")))


FACT_COLUMNS = ("customer_id", "payment_method_id", "num_products", "detail_count", "total_quantity", "status")
