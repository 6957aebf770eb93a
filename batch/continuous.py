"""`python -m batch --continuous`: the lake as one long-lived Spark application, on two clocks.

The hot path, per micro-batch of CDC records: appended to the archive (Bronze), handed on as it
is to Silver (orders and details; customers and payment methods when their topics moved),
then Gold's `fact_orders` for the orders that changed: a handful of Delta commits, every join
with a stored table pruned to the batch's keys, so a micro-batch costs what its records cost.
Each micro-batch is logged with its records, the records left in the topics, its Spark jobs,
its Delta commits and its seconds.

The deferred work, between micro-batches on the main thread: the tables every micro-batch
reads compacted once they hold many small files (batch.tools.maintain.compact_hot_tables, so its
reads do not grow with the lake's age), then Silver's history, Gold's dimensions (and the
facts whose unknown keys they resolve), `fact_order_products` and the marts, in that order,
each a job with its own marks (so however late it runs, it ends where a full rebuild would).
It runs when it is `--deferred-every` old (60 s by default) and no
micro-batch runs or has records waiting; a backlog that keeps micro-batches coming delays it
at most DEFERRED_BACKLOG_FACTOR times that, which bounds how stale those tables get (`python
-m stack doctor` shows it). A step gives way to a micro-batch that arrives meanwhile (its
Spark jobs are cancelled; each table is written in one commit, so a stopped step leaves it as
it was) unless the work is that late already; no step starts while a micro-batch waits, and
a stopped round goes on from its step.

Every step is idempotent: the archive's append is tagged with the query's id and the batch id
(batch.layers.bronze), and Silver and Gold keep their marks after their data, a re-run of the same
input writing nothing. A job killed anywhere re-runs the batch it was in from the checkpoint
and leaves every table as one uninterrupted run would. A failed layer fails the batch and the
job (exit 1, the cause logged): its supervisor (Procfile, compose) starts it again, and the
batch is re-run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from pyspark.sql import SparkSession

from batch import lake
from batch.flows import DEFERRED, seed_from_snapshot
from batch.layers import bronze
from batch.layers.gold import FactsJob, KnownDimensions
from batch.layers.silver import SilverJob
from batch.names import Appended, archive_location
from batch.runs import LayerRun, log
from batch.tools.maintain import compact_hot_tables
from config import Settings

T = TypeVar("T")

DEFERRED_BACKLOG_FACTOR = 5
DEFAULT_DEFERRED_EVERY_S = 60.0
# How far behind its input a deferred table may be with the default clock: a backlog's delay.
STALENESS_BOUND_S = DEFAULT_DEFERRED_EVERY_S * DEFERRED_BACKLOG_FACTOR
GIVES_WAY_TAG = "gives-way"  # on the Spark jobs of work between batches that a micro-batch may cancel
RUNNING = "continuous lake: a micro-batch every"  # logged once the query runs (stack.lake waits for it)


def deferred_due(age_s: float, idle: bool, every_s: float) -> bool:
    """Whether the deferred work, last done `age_s` ago, runs now: once it is `every_s` old and
    the lake is idle (no micro-batch running or with records waiting), or regardless once a
    backlog has kept it busy for DEFERRED_BACKLOG_FACTOR periods."""
    return age_s >= every_s * (1 if idle else DEFERRED_BACKLOG_FACTOR)


def deferred_gives_way(age_s: float, every_s: float) -> bool:
    """Whether deferred work started `age_s` after it was last done stops for a micro-batch:
    unless it is as late as a backlog lets it be (then the micro-batch waits)."""
    return age_s < every_s * DEFERRED_BACKLOG_FACTOR


@dataclass(frozen=True)
class MicroBatch:
    """What applying one micro-batch took."""

    records: int
    jobs: int
    commits: int
    seconds: float
    silver_s: float
    gold_s: float

    def line(self, batch_id: int, left: int | None) -> str:
        waiting = "" if left is None else f", {left:,} left in the topics"
        return (f"micro-batch {batch_id}: {self.records:,} records applied{waiting}; {self.jobs} Spark jobs, "
                f"{self.commits} Delta commits, {self.seconds:.1f} s (silver {self.silver_s:.1f} s, "
                f"gold {self.gold_s:.1f} s)")


def records_left(progress: dict) -> int | None:
    """The records the topics held beyond a micro-batch's end, from its progress report (the
    Kafka source's `latestOffset` minus `endOffset`, per partition)."""
    total = 0
    for source in progress.get("sources", []):
        latest, end = source.get("latestOffset"), source.get("endOffset")
        if not isinstance(latest, dict) or not isinstance(end, dict):
            return None
        total += sum(max(offset - end.get(topic, {}).get(partition, 0), 0)
                     for topic, partitions in latest.items() for partition, offset in partitions.items())
    return total


class ContinuousLake:
    def __init__(self, spark: SparkSession, settings: Settings, *,
                 deferred_every_s: float = DEFAULT_DEFERRED_EVERY_S) -> None:
        self.spark, self.settings, self.deferred_every_s = spark, settings, deferred_every_s
        self.query = None
        self.deferred_done = time.monotonic()  # the first deferred work comes a period after the start
        self.held = lake.HeldTables(spark)  # across micro-batches: the keys and dimensions they join with
        self.dimensions = KnownDimensions(spark, settings, self.held)
        self.applied: dict[int, MicroBatch] = {}  # logged by the main thread with the batch's progress
        # A micro-batch's layers and the deferred work never run at once: on two cores they would
        # only slow each other, and the facts' freshness is what the micro-batch is for.
        self.working = threading.Lock()
        self.gives_way = False  # whether the work between batches under way stops for a micro-batch
        self.stopped = threading.Event()  # a micro-batch stopped it
        self.waiting = threading.Event()  # a micro-batch waits for its turn: no step starts meanwhile
        self.steps: list[tuple[str, Callable[[], object]]] = [
            ("compaction", lambda: compact_hot_tables(spark, settings)),
            *((job.__name__, lambda job=job: job.once(spark, settings)) for job in DEFERRED)]
        self.next_step = 0  # a round stopped for a micro-batch goes on from there
        self.round_runs: list[LayerRun] = []

    def apply(self, batch_id: int, appended: Appended) -> None:
        """After a micro-batch is appended to Bronze (in its `turn`): Silver from its records,
        then Gold's facts from Silver's writes."""
        started = time.monotonic()
        silver_job = SilverJob(self.spark, self.settings, appended=appended, held=self.held,
                               seed=seed_from_snapshot(self.spark, self.settings))
        silver = silver_job.run()
        facts = FactsJob(self.spark, self.settings, dimensions=self.dimensions, handed=silver_job.written).run()
        jobs = self.spark.sparkContext.statusTracker().getJobIdsForGroup(bronze.job_group(batch_id))
        self.applied[batch_id] = MicroBatch(
            appended.rows, len(jobs), 1 + silver.total("commits") + facts.total("commits"),
            appended.seconds + time.monotonic() - started, silver.seconds, facts.seconds)

    def run(self, every_s: float, max_records: int) -> int:
        """Until stopped (Ctrl-C, SIGTERM); the CDC records archived."""
        self.query = bronze.start(self.spark, self.settings, once=False, every_s=every_s,
                                   max_records=max_records, after=self.apply, turn=self.turn)
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self.request_stop)
        log.info(f"{RUNNING} %s s (at most %s records): Kafka -> %s -> silver -> gold facts; "
                 "history, dimensions, products and marts every %s s between; Ctrl-C stops",
                 every_s, f"{max_records:,}", archive_location(self.settings), self.deferred_every_s)
        return bronze.follow(self.query, between=self.run_deferred, on_progress=self.log_batch)

    def log_batch(self, progress: dict) -> bool:
        """Log a micro-batch's line once its progress is reported; whether it was logged."""
        applied = self.applied.pop(progress["batchId"], None)
        if applied is None:
            return False
        log.info(applied.line(progress["batchId"], records_left(progress)))
        return True

    def log_batches(self) -> None:
        """The lines of micro-batches whose progress came while the main thread was busy."""
        if self.applied:
            for progress in self.query.recentProgress:
                self.log_batch(progress)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """A micro-batch's hold on the lake, from its append to its facts: work between
        batches that gives way is stopped (its Spark jobs cancelled until it lets go), other
        work waited for."""
        self.waiting.set()
        try:
            while not self.working.acquire(timeout=0.5):
                if self.gives_way:
                    self.stopped.set()
                    # Again and again: a cancel reaches the jobs running, not the work's next one.
                    self.spark.sparkContext.cancelJobsWithTag(GIVES_WAY_TAG)
        finally:
            self.waiting.clear()
        try:
            yield
        finally:
            self.working.release()

    def run_deferred(self) -> None:
        """The hot tables' compaction, then history, dimensions, products and marts, when due:
        while no micro-batch runs or waits for its turn, or during a backlog once they are
        several periods late. A micro-batch waiting goes first between steps, and a step that
        gives way stops for one; the round goes on from that step at the next call."""
        status = self.query.status
        idle = not status["isTriggerActive"] and not status["isDataAvailable"]
        age_s = time.monotonic() - self.deferred_done
        if not deferred_due(age_s, idle, self.deferred_every_s):
            return
        gives_way = deferred_gives_way(age_s, self.deferred_every_s)
        while self.next_step < len(self.steps):
            self.log_batches()
            name, work = self.steps[self.next_step]
            done = self.run_between_batches(name, work, gives_way=gives_way)
            if done is None:
                return
            if isinstance(done, LayerRun):
                self.round_runs.append(done)
            self.next_step += 1
        self.deferred_done, self.next_step = time.monotonic(), 0
        written, self.round_runs = sum(run.total("written") for run in self.round_runs), []
        if written:
            log.info("deferred work (compaction, history, dimensions, products, marts) done, %s rows written",
                     f"{written:,}")

    def run_between_batches(self, name: str, work: Callable[[], T], *, gives_way: bool) -> T | None:
        """`work()`'s result, run while no micro-batch's layers do; None if one was running or
        waiting (nothing done), or, when `work` `gives_way`, if one came and stopped it (`turn`)."""
        if self.waiting.is_set() or not self.working.acquire(blocking=False):
            return None
        self.stopped.clear()
        self.gives_way = gives_way
        context = self.spark.sparkContext
        context.addJobTag(GIVES_WAY_TAG)  # on this thread's jobs until removed
        try:
            return work()
        except Exception:
            if not self.stopped.is_set():
                raise
            log.info("%s stopped for a micro-batch; it runs again when the lake is idle", name)
            return None
        finally:
            self.gives_way = False
            context.removeJobTag(GIVES_WAY_TAG)
            self.working.release()

    def request_stop(self, signum: int, _frame) -> None:
        log.info("%s: stopping after the micro-batch under way", signal.Signals(signum).name)
        # From another thread: py4j pins a connection per thread, and this handler runs on the
        # main thread in the middle of its call.
        threading.Thread(target=self.stop_between_batches, daemon=True).start()

    def stop_between_batches(self, poll_s: float = 0.5) -> None:
        """`query.stop()` would interrupt the batch under way (which a restart re-runs): wait
        for it to end first, so a stopped job leaves Gold as current as its last batch."""
        while self.query.isActive and self.query.status["isTriggerActive"]:
            time.sleep(poll_s)
        self.query.stop()
