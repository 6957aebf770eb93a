"""`python -m batch.archive [--once]`: every record of the four CDC topics into
`s3a://bronze/cdc_raw/` (Delta, partitioned by topic), by Spark Structured Streaming.

Exactly once per (topic, partition, offset): the Kafka offsets of each micro-batch are
logged in the checkpoint (on MinIO, beside the table) before the batch runs, and the Delta
sink commits a batch id at most once, so a job killed anywhere re-runs the batch it was in
and writes it once. `--once` drains what the topics hold now and stops (available-now
trigger); without it the job runs until stopped, a micro-batch every `--every` seconds.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from batch import lake
from batch.runs import log, show_progress
from batch.session import build_session
from batch.transforms.archive import cdc_records
from config import Settings, settings
from config.cli import run

CDC_TABLES = ("orders", "order_details", "customers", "payment_method")
MAX_RECORDS_PER_BATCH = 200_000


def archive_location(config: Settings) -> str:
    return lake.path(config, "bronze", "cdc_raw")


def checkpoint_location(config: Settings) -> str:
    return config.lake_path("bronze", "_checkpoints", "cdc_raw")


def start(spark: SparkSession, config: Settings, *, once: bool, every_s: float,
          max_records: int = MAX_RECORDS_PER_BATCH) -> StreamingQuery:
    records = (spark.readStream.format("kafka")
               .option("kafka.bootstrap.servers", config.kafka_bootstrap)
               .option("subscribe", ",".join(config.cdc_topic(table) for table in CDC_TABLES))
               .option("startingOffsets", "earliest")
               .option("maxOffsetsPerTrigger", max_records)
               .load())
    writer = (records.transform(cdc_records).writeStream.format("delta").outputMode("append")
              .partitionBy("topic").option("checkpointLocation", checkpoint_location(config))
              .queryName("cdc_raw"))
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=f"{every_s} seconds")
    return writer.start(archive_location(config))


def follow(query: StreamingQuery, poll_s: float = 2.0) -> int:
    """Log each micro-batch as it ends, until the query stops; the records archived."""
    seen_batch, total = -1, 0
    while query.isActive:
        query.awaitTermination(poll_s)
        for progress in query.recentProgress:
            if progress["batchId"] > seen_batch:
                seen_batch = progress["batchId"]
                total += progress["numInputRows"]
                log.info("cdc_raw: batch %d archived %s records (%s in all)", seen_batch,
                         f"{progress['numInputRows']:,}", f"{total:,}")
    if query.exception() is not None:
        raise RuntimeError(str(query.exception()))
    return total


def main(
    once: Annotated[bool, typer.Option("--once", help="Archive what the topics hold now, then stop.")] = False,
    every: Annotated[float, typer.Option(help="Seconds between micro-batches when running on.", min=0.5)] = 10.0,
    max_records_per_batch: Annotated[int, typer.Option(help="Records read per micro-batch at most.",
                                                       min=1)] = MAX_RECORDS_PER_BATCH,
) -> None:
    """Archive every record of the CDC topics (orders, order_details, customers,
    payment_method) into s3a://bronze/cdc_raw/ as Delta, exactly once per offset."""
    show_progress()
    started = time.monotonic()
    spark = build_session(settings, "orderpipe-archive")
    try:
        query = start(spark, settings, once=once, every_s=every, max_records=max_records_per_batch)
        log.info("archiving %s into %s (checkpoint %s)%s", ", ".join(CDC_TABLES), archive_location(settings),
                 checkpoint_location(settings), "" if once else "; Ctrl-C stops")
        total = follow(query)
    except KeyboardInterrupt:
        log.info("stopped")
        return
    finally:
        spark.stop()
    log.info("cdc_raw: %s records archived in %.1f s", f"{total:,}", time.monotonic() - started)


if __name__ == "__main__":
    run(main)
