"""`python -m batch --continuous`: the fast lane as a long-lived process, with Spark's deferred
work (history, dimensions, order products, marts) as a child process on its own clock; and
`python -m batch archive`, the archive alone.

The lane reads the CDC topics and applies each micro-batch as soon as records arrive (a short
linger, at most `--every`), logging a line per micro-batch; between micro-batches it renews
its lease, recomputes the facts whose dimension keys were unknown once a dimension moved, and
compacts the hot tables when they hold many files. SIGTERM or Ctrl-C stops it after the
micro-batch under way. A failure is logged with its cause and the lane starts again in the same
process after a backoff (`supervise`), from the archive's offsets; a crash loop is one log line,
and its lease says so to `python -m stack doctor`. A record it cannot apply is no failure: it is
quarantined with its reason (batch.fastlane.archive).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from batch.clocks import (COMPACT_EVERY_S, CRASH_LOOP_FAILURES, CRASH_LOOP_WINDOW_S, HEARTBEAT_S, MAX_BATCH_BYTES,
                          MAX_RECORDS_PER_BATCH as MAX_RECORDS, RESTART_FIRST_WAIT_S, RESTART_LONGEST_WAIT_S)
from batch.fastlane.lane import FastLane, MicroBatch
from batch.fastlane.lease import Lease, LeaseHeld, fresh, read_state, refusal
from batch.fastlane.source import CdcSource
from batch.paths import CDC_TABLES, archive_location
from batch.runs import log
from config import Settings
from config.settings import names_a_secret

PR_SET_PDEATHSIG = 1
DEFERRED_NICENESS = 10
RUNNING = "fast lane running"  # logged once it reads the topics (stack.lake_process waits for it)


def deferred_child() -> None:
    """In the deferred work's process, before it runs: SIGTERM when the lane that started it dies
    (a lane killed with SIGKILL leaves no deferred work running on its own: Linux's
    PR_SET_PDEATHSIG), and a lower CPU priority, so a micro-batch is not slowed by Spark's
    batch work on the same cores (the deferred work's time is staleness, not freshness)."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    os.nice(DEFERRED_NICENESS)


def deferred_env(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """The deferred work's environment: the lane's own without any secret by name (PATH,
    JAVA_HOME, SPARK_CONF_DIR, where a cluster's driver finds its owner-only settings), then
    the lake's settings with the lake's credentials only."""
    kept = {name: value for name, value in inherited.items() if not names_a_secret(name)}
    return {**kept, **settings.as_env("lake"), "PYTHONUNBUFFERED": "1"}


class Deferred:
    """Spark's deferred work as a child process (`python -m batch deferred --every ...`),
    started again after a failure (its own log lines say why)."""

    def __init__(self, settings: Settings, every_s: float) -> None:
        self.settings, self.every_s = settings, every_s
        self.child: subprocess.Popen | None = None
        self.started_at = 0.0

    def keep_running(self) -> None:
        if self.child is not None and self.child.poll() is None:
            return
        if self.child is not None:
            log.warning("deferred work exited with %s; starting it again", self.child.returncode)
            if time.monotonic() - self.started_at < self.every_s:
                return  # not sooner than a period after its last start
        self.started_at = time.monotonic()
        self.child = subprocess.Popen([sys.executable, "-m", "batch", "deferred", "--every", f"{self.every_s:g}s"],
                                      env=deferred_env(self.settings, os.environ), preexec_fn=deferred_child)

    def stop(self) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signal.SIGTERM)
            try:
                self.child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.child.kill()


@dataclass
class Restarts:
    """A lane's recent failures in its process: how long to wait before starting it again, and
    whether it crash-loops. Pure."""

    failures: list[dict] = field(default_factory=list)  # {"at": epoch seconds, "cause": text}, oldest first

    def failed(self, at: float, cause: str) -> float:
        """Note a failure; the seconds to wait before the next start."""
        self.failures = [*self.recent(at), {"at": at, "cause": cause}]
        return min(RESTART_FIRST_WAIT_S * 2 ** (len(self.failures) - 1), RESTART_LONGEST_WAIT_S)

    def recent(self, at: float) -> list[dict]:
        return [failure for failure in self.failures if at - failure["at"] <= CRASH_LOOP_WINDOW_S]

    def looping(self, at: float) -> bool:
        return len(self.recent(at)) >= CRASH_LOOP_FAILURES

    def line(self, at: float, wait_s: float) -> str:
        recent, cause = self.recent(at), self.failures[-1]["cause"]
        if self.looping(at):
            return (f"fast lane crash-looping: {len(recent)} failures in {at - recent[0]['at']:.0f} s, "
                    f"the last: {cause}; starting again in {wait_s:.0f} s")
        return f"fast lane failed: {cause}; the lake keeps its last good version; starting again in {wait_s:.0f} s"


def supervise(settings: Settings, *, linger_s: float, deferred_every_s: float | None,
              restarts: Restarts | None = None) -> None:
    """The lane, started again after each failure until SIGTERM or Ctrl-C, each start a new lane
    (as a new process would be) that goes on from the archive's offsets."""
    restarts = restarts or Restarts()
    while True:
        runner = Runner(settings, linger_s=linger_s, restarts=restarts)
        try:
            runner.run(deferred_every_s)
            return
        except Exception as error:  # noqa: BLE001 - any failure: logged, reported, started again
            log.exception("fast lane failed")
            at = time.time()
            wait_s = restarts.failed(at, f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:500])
            log.error(restarts.line(at, wait_s))
            if runner.lease.state:  # it held the lease (a LeaseHeld lane never did: the lease is another's)
                try:
                    runner.lease.failed(restarts.recent(at), looping=restarts.looping(at), restart_in_s=wait_s)
                except Exception:  # noqa: BLE001 - MinIO away is a likely cause: the restart matters more
                    log.exception("the lease could not record the failure")
            if runner.stopping.wait(wait_s):  # SIGTERM or Ctrl-C while it waits
                try:
                    runner.lease.release()
                except Exception:  # noqa: BLE001 - stopping anyway; the lease lapses by itself
                    log.exception("the lease could not be released")
                return


class Runner:
    def __init__(self, settings: Settings, *, linger_s: float, max_records: int = MAX_RECORDS,
                 restarts: Restarts | None = None) -> None:
        self.settings, self.linger_s, self.max_records = settings, linger_s, max_records
        self.lane = FastLane(settings)
        self.lease = Lease(settings)
        self.lease.failures = (restarts or Restarts()).recent(time.time())
        self.stopping = threading.Event()
        self.applied: dict[str, dict[str, int]] = {}

    def request_stop(self, signum: int, _frame) -> None:
        log.info("%s: stopping after the micro-batch under way", signal.Signals(signum).name)
        self.stopping.set()

    def start_at(self, partitions):
        offsets = self.lane.next_offsets(partitions)
        for (topic, partition), offset in offsets.items():
            self.applied.setdefault(topic, {})[str(partition)] = offset or 0
        return offsets

    def note(self, batch_records) -> None:
        for record in batch_records:
            by_topic = self.applied.setdefault(record.topic, {})
            by_topic[str(record.partition)] = max(by_topic.get(str(record.partition), 0), record.offset + 1)

    def run(self, deferred_every_s: float | None) -> int:
        """Until stopped; the records applied."""
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self.request_stop)
        self.lane.check_tables()
        self.lease.acquire()
        self.lane.recover()
        source = CdcSource(self.settings, map(self.settings.cdc_topic, CDC_TABLES), self.start_at)
        deferred = Deferred(self.settings, deferred_every_s) if deferred_every_s else None
        number, total, renewed, compacted = 0, 0, 0.0, time.monotonic()
        # None: the first quiet moment resolves, as a dimension may have moved while no lane ran
        dimensions: tuple[int | None, ...] | None = None
        deferred_line = f"; Spark's deferred work every {deferred_every_s:g} s" if deferred_every_s else ""
        log.info("%s: Kafka -> %s -> silver -> gold fact_orders, a micro-batch as records arrive (linger %.1f s, "
                 "at most %s records and %d MB)%s; Ctrl-C stops", RUNNING, archive_location(self.settings),
                 self.linger_s, f"{self.max_records:,}", MAX_BATCH_BYTES // 2**20, deferred_line)
        try:
            while not self.stopping.is_set():
                if deferred is not None:
                    deferred.keep_running()
                records = source.poll(self.max_records, self.linger_s, wait_s=1.0)
                if records:
                    batch = self.lane.apply(records)
                    self.note(records)
                    number, total = number + 1, total + len(records)
                    left = source.left()
                    log.info(batch.line(number, left))
                    # a micro-batch that ended short of its caps found nothing more within its linger: caught up
                    self.lease.renew(applied=self.applied, left=left, caught_up=not source.capped)
                    renewed = time.monotonic()
                    continue
                if dimensions != (moved := self.lane.dimension_versions()):
                    dimensions = moved
                    self.lane.resolve_unknown_keys(MicroBatch())
                if time.monotonic() - compacted > COMPACT_EVERY_S:
                    compacted = time.monotonic()
                    for location in self.lane.compact():
                        log.info("fast lane: %s compacted", location)
                if time.monotonic() - renewed > HEARTBEAT_S:
                    self.lease.renew(applied=self.applied, left=source.left())
                    renewed = time.monotonic()
        finally:
            source.close()
            if deferred is not None:
                deferred.stop()
            self.lease.release()
        log.info("stopped: %s records in %d micro-batches", f"{total:,}", number)
        return total


def archive_only(settings: Settings, *, once: bool, linger_s: float = 1.0, max_records: int = MAX_RECORDS) -> int:
    """The CDC topics appended to the archive, each record once (its Delta transaction ids), and
    nothing else; until the topics are drained (`once`) or stopped. The records archived."""
    lane = FastLane(settings)
    lane.lake.check_writable(archive_location(settings))
    running = read_state(settings)
    if fresh(running):
        raise LeaseHeld(refusal(running, "the archiver (python -m batch archive)"))
    stopping = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda *_: stopping.set())
    source = CdcSource(settings, map(settings.cdc_topic, CDC_TABLES), lane.next_offsets)
    total = 0
    try:
        while not stopping.is_set():
            records = source.poll(max_records, linger_s, wait_s=2.0)
            if records:
                archived, _ = lane.append(records)
                total += len(archived)
                log.info("cdc_raw: %s records archived (%s in all)", f"{len(archived):,}", f"{total:,}")
            elif once and source.assigned and source.left() == 0:
                break
    finally:
        source.close()
    return total


def apply_until_drained(settings: Settings, *, linger_s: float = 0.5, max_records: int = MAX_RECORDS) -> list[MicroBatch]:
    """The fast lane's micro-batches until the CDC topics hold nothing it has not applied (what
    the archive holds beyond Silver's mark first), under its lease; what each took."""
    lane, lease = FastLane(settings), Lease(settings)
    lane.check_tables()
    lease.acquire()
    batches = [batch for batch in [lane.recover()] if batch is not None]
    source = CdcSource(settings, map(settings.cdc_topic, CDC_TABLES), lane.next_offsets)
    try:
        while True:
            records = source.poll(max_records, linger_s, wait_s=2.0)
            if records:
                batches.append(lane.apply(records))
                log.info(batches[-1].line(len(batches), None))
            elif source.assigned and source.left() == 0:
                return batches
    finally:
        source.close()
        lease.release()
