"""How fresh the lake is: from an order's commit at the source to the Gold commit that first
holds its fact. The Gold side is read from fact_orders' change feed (`_commit_timestamp`
of the first version that names the order); the source side is given (the writer's own
clock at commit: MariaDB's binlog stamps whole seconds)."""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch import lake
from config import Settings


def first_visible(spark: SparkSession, settings: Settings, order_ids: set[str]) -> dict[str, float]:
    """Order id -> epoch milliseconds of the Gold commit that first held its fact."""
    location = lake.path(settings, "gold", "fact_orders")
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
            .load(location).filter(F.col("_change_type").isin("insert", "update_postimage")))
    wanted = spark.createDataFrame([(order,) for order in order_ids], "order_id string")
    rows = (feed.join(F.broadcast(wanted), "order_id", "left_semi").groupBy("order_id")
            .agg(F.min("_commit_timestamp").alias("first")).collect())
    return {row.order_id: row.first.timestamp() * 1000 for row in rows}


def lags_s(committed_ms: Mapping[str, float], visible_ms: Mapping[str, float]) -> list[float]:
    """Seconds from commit to visibility, for the orders visible."""
    return [(visible_ms[order] - committed) / 1000 for order, committed in committed_ms.items() if order in visible_ms]

