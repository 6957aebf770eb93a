"""The lake's Spark jobs in their order: what one run of a layer is, and the work they do beside
the fast lane (`deferred`). The only module that puts the layer jobs (batch/layers/) together;
they never import each other."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import SparkSession

from batch.job import LayerJob
from batch.layers.bronze import BronzeJob
from batch.layers.gold import DimensionsJob, FactsJob, ProductsJob
from batch.layers.history import HistoryJob
from batch.layers.marts import MartsJob
from batch.layers.silver import SilverJob
from batch.layers.snapshot import SnapshotJob
from batch.runs import LayerRun
from config import Settings

# In this order, on their own clock beside the fast lane (`python -m batch deferred`): nothing
# on the hot path reads them, and none writes a table the fast lane owns.
DEFERRED: tuple[type[LayerJob], ...] = (HistoryJob, DimensionsJob, ProductsJob, MartsJob)


def first_load_from_snapshot(spark: SparkSession, settings: Settings):
    """What Silver runs when its first run needs a JDBC snapshot of MySQL to start from."""
    return lambda: SnapshotJob.once(spark, settings, full=True)


def bronze(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The CDC topics drained into the archive."""
    return BronzeJob.once(spark, settings, full=full)


def silver(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The archive applied to Silver's tables, then their history."""
    tables = SilverJob(spark, settings, full=full, first_load=first_load_from_snapshot(spark, settings)).run()
    return tables.then(HistoryJob.once(spark, settings, full=full))


def gold(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The dimensions, the facts (every key found), their products, then the marts."""
    runs = [job.once(spark, settings, full=full) for job in (DimensionsJob, FactsJob, ProductsJob, MartsJob)]
    return reduce(LayerRun.then, runs)


def snapshot(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The JDBC copy of MySQL into Bronze: `bronze/<table>`, orders and details by year/month/day."""
    return SnapshotJob.once(spark, settings, full=full)


def deferred(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The work Spark keeps beside the fast lane: Silver's history, Gold's dimensions, the
    order products and the marts, each from its own marks."""
    return reduce(LayerRun.then, [job.once(spark, settings, full=full) for job in DEFERRED])


CHANGE_LOG = (bronze, silver, gold)  # a run with no layer named
