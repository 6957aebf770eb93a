"""Bronze: the change log. Every record of the four CDC topics into `s3a://bronze/cdc_raw/`
(Delta, partitioned by topic), by Spark Structured Streaming; Silver applies the archive from
there. `BronzeJob` (`python -m batch bronze`) drains what the topics hold now and reads no
rows from MySQL (the JDBC copy is batch.layers.snapshot, `python -m batch snapshot`).

Exactly once per (topic, partition, offset): the Kafka offsets of each micro-batch are
logged in the checkpoint (on MinIO, beside the table) before the batch runs, and each batch is
appended in one Delta commit tagged with the query's id and the batch id (`txnAppId`,
`txnVersion`: Delta skips a tagged write it has committed before), so a job killed anywhere
re-runs the batch it was in and writes it once. A micro-batch may run more work after its
append (`python -m batch --continuous`: Silver and Gold). The query alone: `python -m batch
archive [--once]`; `--once` drains what the topics hold now and stops (available-now
trigger); without it the job runs until stopped, a micro-batch every `--every` seconds.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Annotated

import orjson
import typer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery

from batch import lake
from batch.job import LayerJob
from batch.names import BRONZE, CDC_TABLES, Appended, archive_location
from batch.runs import LayerRun, log, show_progress
from batch.session import build_session
from batch.transforms.archive import cdc_records
from batch.transforms.changes import per_topic
from config import Settings, settings

MAX_RECORDS_PER_BATCH = 200_000


def topics_pattern(config: Settings) -> str:
    """The four CDC topics exactly, as a regular expression."""
    return "^(" + "|".join(re.escape(config.cdc_topic(table)) for table in CDC_TABLES) + ")$"


def checkpoint_location(config: Settings) -> str:
    return config.lake_path(BRONZE, "_checkpoints", "cdc_raw")


def applied_offsets(spark: SparkSession, config: Settings) -> dict[str, dict[int, int]]:
    """Per topic and partition, the offset up to which the query's newest completed micro-batch
    read (its work after the append included): the checkpoint's newest `commits/<n>` and the
    Kafka source's line of `offsets/<n>`. Empty before the first batch completes."""
    batches = lake.listed_names(spark, f"{checkpoint_location(config)}/commits")
    done = max((int(name) for name in batches if name.isdigit()), default=None)
    if done is None:
        return {}
    planned = lake.read_text(spark, f"{checkpoint_location(config)}/offsets/{done}").splitlines()
    return {topic: {int(partition): offset for partition, offset in partitions.items()}
            for topic, partitions in orjson.loads(planned[-1]).items()}


def job_group(batch_id: int) -> str:
    """The Spark job group of a micro-batch's jobs (its append and the work after it)."""
    return f"micro-batch-{batch_id}"


class ArchiveBatches:
    """The streaming query's `foreachBatch`: a micro-batch of Kafka records appended to the
    archive once, then `after(batch_id, appended)` if given; both inside `turn()` if given
    (the continuous lake's hold on the machine's cores)."""

    def __init__(self, location: str, after: Callable[[int, Appended], None] | None = None,
                 turn: Callable[[], AbstractContextManager] = nullcontext) -> None:
        self.location, self.after, self.turn = location, after, turn
        self.query_id: str | None = None
        self.started = threading.Event()  # the query's id is known once `start` returns

    def __call__(self, records: DataFrame, batch_id: int) -> None:
        self.started.wait()
        context = records.sparkSession.sparkContext
        context.setJobGroup(job_group(batch_id), f"micro-batch {batch_id}")
        started = time.monotonic()
        rows = records.transform(cdc_records).persist()
        try:
            with self.turn():
                waited = time.monotonic() - started
                topics = {row["topic"]: row for row in per_topic(rows).collect()}  # computes the rows once
                (rows.write.format("delta").mode("append").partitionBy("topic")
                 .option("txnAppId", self.query_id).option("txnVersion", batch_id).save(self.location))
                appended = Appended(rows, lake.version(records.sparkSession, self.location),
                                    sum(row["records"] for row in topics.values()), time.monotonic() - started, topics)
                log.info("cdc_raw: batch %d appended in %.1f s%s", batch_id, appended.seconds - waited,
                         f" (after waiting {waited:.1f} s for its turn)" if waited >= 0.5 else "")
                if self.after is not None:
                    self.after(batch_id, appended)
        finally:
            rows.unpersist()
            context.setLocalProperty("spark.jobGroup.id", None)
            context.setLocalProperty("spark.job.description", None)


def start(spark: SparkSession, config: Settings, *, once: bool, every_s: float,
          max_records: int = MAX_RECORDS_PER_BATCH,
          after: Callable[[int, Appended], None] | None = None,
          turn: Callable[[], AbstractContextManager] = nullcontext) -> StreamingQuery:
    """The archive's streaming query, started: available-now (`once`) or a micro-batch every
    `every_s` seconds; `after(batch_id, appended)` runs once each batch is archived, and both
    inside `turn()`."""
    records = (spark.readStream.format("kafka")
               .option("kafka.bootstrap.servers", config.kafka_bootstrap)
               .options(**config.kafka_java_config("lake", prefix="kafka."))
               # a pattern, not a list: a topic Debezium has not created yet (a table with no
               # rows at the connector's start) is picked up when it appears, not an error
               .option("subscribePattern", topics_pattern(config))
               .option("startingOffsets", "earliest")
               .option("maxOffsetsPerTrigger", max_records)
               .load())
    batches = ArchiveBatches(archive_location(config), after, turn)
    writer = (records.writeStream.foreachBatch(batches)
              .option("checkpointLocation", checkpoint_location(config)).queryName("cdc_raw"))
    writer = writer.trigger(availableNow=True) if once else writer.trigger(processingTime=f"{every_s} seconds")
    query = writer.start()
    batches.query_id = str(query.id)
    batches.started.set()
    return query


def follow(query: StreamingQuery, poll_s: float = 2.0, between: Callable[[], None] | None = None,
           on_progress: Callable[[dict], object] | None = None) -> int:
    """Log each micro-batch as it ends, until the query stops; the records archived.
    `between()`, if given, runs every `poll_s` on this thread, beside the micro-batches;
    `on_progress(progress)`, if given, logs each batch instead of the archive's line."""
    seen_batch, total = -1, 0
    while query.isActive:
        query.awaitTermination(poll_s)
        if between is not None and query.isActive:
            between()
        for progress in query.recentProgress:
            if progress["batchId"] > seen_batch:
                seen_batch = progress["batchId"]
                total += progress["numInputRows"]
                if on_progress is not None:
                    on_progress(progress)
                else:
                    log.info("cdc_raw: batch %d archived %s records (%s in all)", seen_batch,
                             f"{progress['numInputRows']:,}", f"{total:,}")
    if query.exception() is not None:
        raise RuntimeError(str(query.exception()))
    return total


class BronzeJob(LayerJob):
    layer = BRONZE

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        """The archive's checkpoint is its mark: nothing to store here."""
        with tables.table("cdc_raw") as counts:
            query = start(self.spark, self.settings, once=True, every_s=1.0)
            counts.read = counts.written = follow(query, poll_s=0.5)
        return {}


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

