"""`python -m batch --continuous`: the lake as one long-lived Spark application. Each
micro-batch of CDC records is appended to the archive (Bronze), then Silver and Gold's star
apply what is new, so Gold's facts trail the source by about one micro-batch. The marts
follow on their own clock, on the main thread beside the micro-batches: rebuilt when the
star moved, while no micro-batch runs or has records waiting, at most every `--marts-every`
(a backlog that keeps micro-batches coming delays them at most five times that). A refresh
gives way to a micro-batch that arrives meanwhile (its Spark jobs are cancelled; each mart is
replaced in one commit, so a stopped refresh leaves the marts as they were) unless the marts
are that late already.

Every step is idempotent per micro-batch: the archive's append is tagged with the query's id
and the batch id (batch.archive), and Silver and Gold keep their marks after their data, a
re-run of the same input writing nothing. A job killed anywhere re-runs the batch it was in
from the checkpoint and leaves every table as one uninterrupted run would. A failed layer
fails the batch and the job (exit 1, the cause logged): its supervisor (Procfile, compose)
starts it again, and the batch is re-run.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from pyspark.sql import SparkSession

from batch import archive
from batch.gold import GoldJob
from batch.marts import MartsJob
from batch.runs import log
from batch.silver import SilverJob
from config import Settings

T = TypeVar("T")

MARTS_BACKLOG_FACTOR = 5
GIVES_WAY_TAG = "gives-way"  # on the Spark jobs of work between batches that a micro-batch may cancel
RUNNING = "continuous lake: a micro-batch every"  # logged once the query runs (stack.lake waits for it)


def marts_due(age_s: float, idle: bool, every_s: float) -> bool:
    """Whether the marts, built `age_s` ago, are rebuilt now: once they are `every_s` old and
    the lake is idle (no micro-batch running or with records waiting), or regardless once a
    backlog has kept it busy for MARTS_BACKLOG_FACTOR periods."""
    return age_s >= every_s * (1 if idle else MARTS_BACKLOG_FACTOR)


def marts_give_way(age_s: float, every_s: float) -> bool:
    """Whether a marts refresh started when the marts were `age_s` old stops for a micro-batch:
    unless they are as late as a backlog lets them be (then the micro-batch waits)."""
    return age_s < every_s * MARTS_BACKLOG_FACTOR


class ContinuousLake:
    def __init__(self, spark: SparkSession, settings: Settings, *, marts_every_s: float = 60) -> None:
        self.spark, self.settings, self.marts_every_s = spark, settings, marts_every_s
        self.query = None
        self.marts_built = time.monotonic()  # of the last refresh: the first comes a period after the start
        # A micro-batch's layers and a marts refresh never run at once: on two cores they would
        # only slow each other, and the facts' freshness is what the micro-batch is for.
        self.working = threading.Lock()
        self.gives_way = False  # whether the work between batches under way stops for a micro-batch
        self.stopped = threading.Event()  # a micro-batch stopped it

    def apply(self, batch_id: int) -> None:
        """After a micro-batch is archived: Silver, then Gold."""
        started = time.monotonic()
        with self.turn():
            silver = SilverJob.once(self.spark, self.settings)
            gold = GoldJob.once(self.spark, self.settings)
        log.info("micro-batch %d applied in %.1f s (silver %.1f s, written %s; gold %.1f s, written %s)",
                 batch_id, time.monotonic() - started, silver.seconds, f"{silver.total('written'):,}",
                 gold.seconds, f"{gold.total('written'):,}")

    def run(self, every_s: float, max_records: int) -> int:
        """Until stopped (Ctrl-C, SIGTERM); the CDC records archived."""
        self.query = archive.start(self.spark, self.settings, once=False, every_s=every_s,
                                   max_records=max_records, after=self.apply)
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self.request_stop)
        log.info(f"{RUNNING} %s s (at most %s records): Kafka -> %s -> silver -> gold; Ctrl-C stops",
                 every_s, f"{max_records:,}", archive.archive_location(self.settings))
        return archive.follow(self.query, between=self.refresh_marts)

    @contextmanager
    def turn(self) -> Iterator[None]:
        """A micro-batch's hold on the lake: work between batches (a marts refresh) that gives
        way is stopped (its Spark jobs cancelled until it lets go), other work waited for."""
        while not self.working.acquire(timeout=0.5):
            if self.gives_way:
                self.stopped.set()
                # Again and again: a cancel reaches the jobs running, not the work's next one.
                self.spark.sparkContext.cancelJobsWithTag(GIVES_WAY_TAG)
        try:
            yield
        finally:
            self.working.release()

    def refresh_marts(self) -> None:
        """The marts rebuilt if the star moved, when they are due: while no micro-batch runs or
        waits for its turn, or during a backlog once they are several periods late."""
        status = self.query.status
        idle = not status["isTriggerActive"] and not status["isDataAvailable"]
        age_s = time.monotonic() - self.marts_built
        if not marts_due(age_s, idle, self.marts_every_s):
            return
        marts = self.run_between_batches("marts refresh", lambda: MartsJob.once(self.spark, self.settings),
                                         gives_way=marts_give_way(age_s, self.marts_every_s))
        if marts is None:
            return
        self.marts_built = time.monotonic()
        if marts.tables:
            log.info("marts rebuilt in %.1f s", marts.seconds)

    def run_between_batches(self, name: str, work: Callable[[], T], *, gives_way: bool) -> T | None:
        """`work()`'s result, run while no micro-batch's layers do; None if one was running
        (nothing done), or, when `work` `gives_way`, if one came and stopped it (`turn`)."""
        if not self.working.acquire(blocking=False):
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
