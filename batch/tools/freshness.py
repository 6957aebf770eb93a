"""The lake as a reader beside it sees it: each order's status in Gold, whether the
deferred work has caught up with its inputs, and how fresh the lake is: from an order's last
commit at the source to the Gold commit that first holds its fact with its final status. The
Gold side is read from fact_orders' change feed once the lake has applied the orders
(`_commit_timestamp` of the first version where the order has that status), so measuring
never polls the lake while it works; the source side is given (the writer's own clock at
commit: MariaDB's binlog stamps whole seconds)."""

from __future__ import annotations

import time
from collections.abc import Mapping

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch.flows import DEFERRED
from batch.names import gold_location
from batch.store import delta_log, reads
from batch.store.marks import read_marks
from config import Settings


def expected_statuses(manifest: dict) -> dict[str, str]:
    """Order id -> the status Gold must show, from a generator's manifest."""
    return {**dict.fromkeys(manifest["complete"], "complete"), **dict.fromkeys(manifest["incomplete"], "incomplete"),
            **dict.fromkeys(manifest["cancelled"], "cancelled")}


def fact_statuses(spark: SparkSession, settings: Settings, orders: set[str]) -> dict[str, str]:
    """Order id -> its status in Gold's fact_orders, for the orders it holds among `orders`."""
    facts = reads.read(spark, gold_location(settings, "fact_orders")).select("order_id", "status")
    wanted = spark.createDataFrame([(order,) for order in orders], "order_id string")
    return {row.order_id: row.status for row in facts.join(F.broadcast(wanted), "order_id", "left_semi").collect()}


def behind_since(versions: dict[int, float], mark: str | None) -> float | None:
    """When the oldest commit of a table past a job's `mark` (its version read) was made (epoch
    seconds); None when the job has read every commit (`versions`: version -> commit time)."""
    seen = -1 if mark is None else int(mark)
    newer = [at for version, at in versions.items() if version > seen]
    return min(newer, default=None)


def deferred_behind(spark: SparkSession, settings: Settings) -> dict[str, float | None]:
    """Per deferred job (history, dimensions, products, marts): seconds since the oldest commit
    of its inputs it has not applied, None when it is current with them."""
    behind: dict[str, float | None] = {}
    for job in DEFERRED:
        marks = read_marks(spark, settings, job.layer, job.marks_file)
        oldest = min(filter(None, (behind_since(delta_log.commit_times(spark, location), marks.get(name))
                                   for name, location in job.inputs(settings).items())), default=None)
        behind[job.__name__] = None if oldest is None else max(time.time() - oldest, 0.0)
    return behind


def deferred_current(spark: SparkSession, settings: Settings) -> bool:
    """Whether every deferred job has applied its inputs as they are now."""
    return all(seconds is None for seconds in deferred_behind(spark, settings).values())


def first_visible(spark: SparkSession, settings: Settings, statuses: Mapping[str, str]) -> dict[str, float]:
    """Order id -> epoch milliseconds of the Gold commit that first held its fact with the
    status it ended in (`statuses`: order id -> that status), read once from fact_orders'
    change feed after the lake has applied the orders."""
    location = gold_location(settings, "fact_orders")
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", 0)
            .load(location).filter(F.col("_change_type").isin("insert", "update_postimage")))
    wanted = spark.createDataFrame(list(statuses.items()), "order_id string, status string")
    rows = (feed.join(F.broadcast(wanted), ["order_id", "status"], "left_semi").groupBy("order_id")
            .agg(F.min("_commit_timestamp").alias("first")).collect())
    return {row.order_id: row.first.timestamp() * 1000 for row in rows}


def lags_s(committed_ms: Mapping[str, float], visible_ms: Mapping[str, float]) -> list[float]:
    """Seconds from commit to visibility, for the orders visible."""
    return [(visible_ms[order] - committed) / 1000 for order, committed in committed_ms.items() if order in visible_ms]

