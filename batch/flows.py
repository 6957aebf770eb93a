"""The lake's jobs in their order: what one run of a layer is, and the work the continuous lake
does between micro-batches. The only module that puts the layer jobs (batch/layers/) together;
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

# In this order, between micro-batches: nothing on the hot path reads them.
DEFERRED: tuple[type[LayerJob], ...] = (HistoryJob, DimensionsJob, ProductsJob, MartsJob)


def seed_from_snapshot(spark: SparkSession, settings: Settings):
    """What Silver runs when its first run needs a JDBC snapshot of MySQL to start from."""
    return lambda: SnapshotJob.once(spark, settings, full=True)


def bronze(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The CDC topics drained into the archive."""
    return BronzeJob.once(spark, settings, full=full)


def silver(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The archive applied to Silver's tables, then their history."""
    tables = SilverJob(spark, settings, full=full, seed=seed_from_snapshot(spark, settings)).run()
    return tables.then(HistoryJob.once(spark, settings, full=full))


def gold(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The dimensions, the facts (every key found), their products, then the marts."""
    runs = [job.once(spark, settings, full=full) for job in (DimensionsJob, FactsJob, ProductsJob, MartsJob)]
    return reduce(LayerRun.then, runs)


def snapshot(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The JDBC copy of MySQL into Bronze (seed 000's layout)."""
    return SnapshotJob.once(spark, settings, full=full)


CHANGE_LOG = (bronze, silver, gold)  # a run with no layer named
