"""The lake at the legacy pipeline's size: a full run, then incremental runs, per layer;
optionally today's tree against another revision, and the continuous lake's freshness.

    python -m bench.batch [--customers 1000000 --orders 25000 --increment 1000 --master local[2]]
                          [--against REV] [--no-runs] [--freshness-orders 5000 --rate 0] [--jobs] [--repeats 2]

Runs on a scratch database with its own Debezium connector and CDC topics, and a scratch
lake bucket, so the main pipeline is untouched. Prints wall time per layer for the full run
and the incremental ones (in this process, and from the shell: `python -m batch`, a new
JVM); the baseline, in the same process and session, is the legacy pipeline's Bronze: each
table read over JDBC and overwritten as plain Parquet. `--against REV` runs that revision's
`python -m batch` from the shell (a worktree, a lake bucket of its own, the same source)
for a full run and the same increment, and prints the ratio. `--freshness-orders N` runs
the continuous lake (`python -m batch --continuous`) beside two stream workers while N
orders are written at `--rate` (0: as fast as the generator goes, as the demo does) and
prints source commit -> Gold fact_orders p50/p99 (the lake caught up with the source first;
`--no-runs` measures only that); before the burst it times the micro-batches that apply
`--increment` orders, and after it grows the lake to `--grow-to` orders and times them
again (their Spark jobs and Delta commits from the lake's log). With `--against`, that
revision's continuous lake is measured the same way on a lake of its own (not grown).
`--jobs` adds, per run, the Spark jobs
it started and the driver JVM's CPU seconds with its JIT's share. The lake is audited
against MySQL (`python -m batch audit`'s checks) after the in-process runs: the benchmark
exits 1 if it drifts.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import orjson
import psutil
import typer

from batch import flows
from batch.store import files
from batch.tools.audit import LakeAudit
from batch.tools.lake_reader import LakeReader, expected_statuses, lags_s
from batch.runs import LayerRun, show_progress
from batch.session import build_session
from batch.layers.snapshot import read_table
from bench.stream import checkout, isolated
from config import Settings
from config.cli import run
from config.settings import REPO_ROOT
from source import database, generate
from source.traffic import ChaosMix, Truth, plan
from stack.lake_process import log_path, start_continuous_lake, stop_continuous_lake
from stack.scratch import cdc_caught_up, scratch_lake
from stack.workers import start_workers, wait_for_group

def add_orders(scratch: Settings, orders: int, *, seed: int, customers: int, rate: float = 0,
               committed: dict[str, float] | None = None, chaos: bool = True) -> dict:
    """`orders` orders (chaotic unless `chaos` is off), Debezium caught up with them; the
    manifest. `committed`: each order's last commit (epoch ms) is recorded there."""
    connection = database.connect(scratch)
    truth = Truth()
    on_commit = None if committed is None else (lambda write: committed.__setitem__(write.order_id, time.time() * 1000))
    generate.run(connection, plan(orders, seed=seed, customers=customers, chaos=ChaosMix() if chaos else ChaosMix.off()),
                 total_orders=orders, rate=rate, truth=truth, on_commit=on_commit)
    cdc_caught_up(scratch, connection, timeout_s=600)
    return truth.manifest()


def run_layers(spark, scratch: Settings) -> list[LayerRun]:
    return [layer(spark, scratch) for layer in flows.CHANGE_LOG]


def baseline_bronze(spark, scratch: Settings) -> tuple[float, int]:
    """The legacy pipeline's Bronze: JDBC read, Parquet overwrite, every table, every time."""
    started, rows = time.monotonic(), 0
    for table in database.TABLES:
        frame = read_table(spark, scratch, table).cache()
        rows += frame.count()
        frame.write.mode("overwrite").parquet(scratch.lake_path("baseline", table))
        frame.unpersist()
    return time.monotonic() - started, rows


def report(title: str, runs: list[LayerRun]) -> float:
    total = sum(run.seconds for run in runs)
    layers = ", ".join(f"{run.layer} {run.seconds:.1f} s" for run in runs)
    print(f"{title}: {total:.1f} s ({layers}); CDC records archived {runs[0].total('written'):,}; "
          f"written in all {sum(run.total('written') for run in runs):,}", flush=True)
    return total


class JobProfile:
    """Spark jobs started since the last look, from the driver's REST API: how many, their
    time, and the call sites (file:line of our code) that started most of them; and the
    driver JVM's CPU seconds since then, with those its JIT compiler spent."""

    def __init__(self, spark) -> None:
        context = spark.sparkContext
        self.url = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}/jobs"
        self.seen = {job["jobId"] for job in self.jobs()}
        jvm, _ = files.driver_jvm(spark)
        self.compilation = jvm.java.lang.management.ManagementFactory.getCompilationMXBean()
        self.jvm_stat = f"/proc/{jvm.java.lang.ProcessHandle.current().pid()}/stat"
        self.cpu = self.cpu_seconds()

    def cpu_seconds(self) -> tuple[float, float]:
        """(the JVM process's CPU seconds, its JIT compiler threads' seconds), so far."""
        with open(self.jvm_stat) as stat:
            ticks = stat.read().rsplit(")", 1)[1].split()[11:13]  # utime, stime
        return (sum(map(int, ticks)) / os.sysconf("SC_CLK_TCK"),
                self.compilation.getTotalCompilationTime() / 1000)

    def jobs(self) -> list[dict]:
        with urllib.request.urlopen(self.url) as response:
            return orjson.loads(response.read())

    def report(self, title: str, top: int = 12) -> None:
        new = [job for job in self.jobs() if job["jobId"] not in self.seen]
        self.seen |= {job["jobId"] for job in new}
        sites = Counter(job.get("description") or job["name"].split(" at ")[-1] for job in new)
        seconds = sum(_seconds(job["completionTime"]) - _seconds(job["submissionTime"])
                      for job in new if "completionTime" in job)
        print(f"  {title}: {len(new)} Spark jobs, {seconds:.1f} s inside them; most from: "
              + ", ".join(f"{site} x{count}" for site, count in sites.most_common(top)))
        (cpu, jit), (cpu_before, jit_before) = self.cpu_seconds(), self.cpu
        self.cpu = (cpu, jit)
        print(f"  {title}: driver JVM {cpu - cpu_before:.1f} CPU s, of which JIT compiling "
              f"{jit - jit_before:.1f} s ({(jit - jit_before) / max(cpu - cpu_before, 0.1):.0%})")


def _seconds(moment: str) -> float:
    """Spark's REST time (`2026-11-23T12:18:27.545GMT`) as epoch seconds."""
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%f%Z").replace(tzinfo=timezone.utc).timestamp()


@dataclass
class LayerFigures:
    """The layers' runs timed: in this process, from the shell, against another revision."""

    session_s: float
    baseline_s: float
    baseline_rows: int
    full: float
    in_process: list[float]
    shell: float = 0.0
    theirs: tuple[float, float] | None = None  # (full, incremental) from the shell
    drifted: list[str] = field(default_factory=list)

    def print(self, against: str | None) -> None:
        print(f"session start {self.session_s:.1f} s (JVM, the installed jars)")
        print(f"baseline (the legacy pipeline's Bronze, JDBC -> Parquet overwrite): {self.baseline_s:.1f} s, "
              f"{self.baseline_rows / self.baseline_s:,.0f} rows/s")
        print(f"full run {self.full:.1f} s; incremental runs in this process: "
              + ", ".join(f"{seconds:.1f} s" for seconds in self.in_process) + f"; from the shell {self.shell:.1f} s")
        print(f"ratio to the baseline: full {self.full / self.baseline_s:.2f}x, "
              f"incremental {self.in_process[0] / self.baseline_s:.2f}x, from the shell {self.shell / self.baseline_s:.2f}x")
        if self.theirs:
            theirs_full, theirs_shell = self.theirs
            print(f"{against} from the shell: full {theirs_full:.1f} s, incremental {theirs_shell:.1f} s; "
                  f"ours / theirs: incremental from the shell {self.shell / theirs_shell:.2f}x")


def time_the_layers(scratch: Settings, *, customers: int, increment: int, repeats: int, jobs: bool,
                    against: str | None, name: str) -> LayerFigures:
    """Full and incremental runs in this process (then the lake audited), from the shell, and
    `against`'s from the shell on a lake of its own."""
    started = time.monotonic()
    spark = build_session(scratch, "bench-batch")
    session_s = time.monotonic() - started
    try:
        baseline_s, baseline_rows = baseline_bronze(spark, scratch)  # first: it warms the JVM for ours
        profile = JobProfile(spark) if jobs else None
        full = report("full run", run_layers(spark, scratch))
        if profile:
            profile.report("full run")
        in_process = []
        for repeat in range(repeats + 1):
            add_orders(scratch, increment, seed=2 + repeat * 100, customers=customers)
            in_process.append(report(f"incremental run {repeat + 1} (+{increment:,} orders) in this process",
                                     run_layers(spark, scratch)))
            if profile:
                profile.report(f"incremental run {repeat + 1}")
        audits = LakeAudit(spark, scratch).run()
    finally:
        spark.stop()
    for table_audit in audits:
        print(f"  audit {table_audit.line()}")
    figures = LayerFigures(session_s, baseline_s, baseline_rows, full, in_process,
                           drifted=[table_audit.table for table_audit in audits if not table_audit.clean])
    with checkout(against) as tree:
        theirs_scratch = scratch.model_copy(update={"lake_uri": f"s3a://{name}/against/"}) if tree else None
        theirs_full = from_the_shell(theirs_scratch, tree) if tree else None
        add_orders(scratch, increment, seed=3, customers=customers)
        figures.shell = from_the_shell(scratch)
        if tree:
            figures.theirs = (theirs_full, from_the_shell(theirs_scratch, tree))
    return figures


def main(
    customers: Annotated[int, typer.Option(help="Customers in the scratch source.", min=1)] = 1_000_000,
    orders: Annotated[int, typer.Option(help="Orders before the full run (chaos on).", min=1)] = 25_000,
    increment: Annotated[int, typer.Option(help="Orders added before each incremental run.", min=1)] = 1_000,
    master: Annotated[str, typer.Option(help="Spark master for the in-process runs.")] = "local[2]",
    jobs: Annotated[bool, typer.Option(help="Print each run's Spark jobs, call sites and JIT share.")] = False,
    repeats: Annotated[int, typer.Option(
        help="More incremental runs in the same process after the first (the JVM warming).", min=0)] = 2,
    against: Annotated[str | None, typer.Option(
        help="A git revision whose `python -m batch` is timed from the shell beside ours.")] = None,
    runs: Annotated[bool, typer.Option(
        help="Time the layers' full and incremental runs (--no-runs: the freshness run alone).")] = True,
    freshness_orders: Annotated[int, typer.Option(
        help="Orders written with the continuous lake and two workers running (0: skip).", min=0)] = 5_000,
    rate: Annotated[float, typer.Option(help="Orders per second in the freshness run (0: full speed).", min=0)] = 0,
    grow_to: Annotated[int, typer.Option(
        help="After the freshness run, grow the continuous lake to this many orders and time an increment's "
             "micro-batches again (0: skip).", min=0)] = 250_000,
) -> None:
    """Time the lake's layers (full, incremental in-process and from the shell), against
    the legacy pipeline's Bronze and optionally another revision; the continuous lake's micro-batches
    and freshness (with --against, that revision's too), and its micro-batches on a grown lake."""
    if not runs and not freshness_orders:
        raise typer.BadParameter("nothing to measure: --no-runs with --freshness-orders 0")
    show_progress()
    name = f"bench{uuid.uuid4().hex[:8]}"
    continuous: dict[str, ContinuousFigures] = {}
    with isolated(name, customers) as source, scratch_lake(source, name) as scratch:
        scratch = scratch.model_copy(update={"spark_master": master})
        add_orders(scratch, orders, seed=1, customers=customers)
        figures = time_the_layers(scratch, customers=customers, increment=increment, repeats=repeats, jobs=jobs,
                                  against=against, name=name) if runs else None
        if freshness_orders:  # lakes of their own, caught up from the start as the demo's is (and warm)
            with scratch_lake(scratch, f"{name}-fresh") as fresh:
                continuous["ours"] = measure_continuous(fresh, customers, orders=freshness_orders, rate=rate,
                                                        increment=increment)
                if against:
                    with checkout(against) as tree, scratch_lake(scratch, f"{name}-theirs") as theirs:
                        continuous[against] = measure_continuous(theirs, customers, orders=freshness_orders,
                                                                 rate=rate, increment=increment, tree=tree,
                                                                 seed=40)
                if grow_to:
                    measure_grown(fresh, customers, continuous["ours"], increment=increment, grow_to=grow_to)
    drifted = []
    if figures:
        figures.print(against)
        drifted += figures.drifted
    for who, measured in continuous.items():
        measured.print(freshness_orders, rate, increment, who)
        if measured.freshness and not measured.freshness.exact:
            drifted += [f"fact_orders' statuses ({who})"]
    if against and len(continuous) == 2:
        ours, theirs = continuous["ours"], continuous[against]
        print(f"ours / {against}: freshness p99 {ours.freshness.p99 / theirs.freshness.p99:.2f}x, "
              f"{increment:,} orders' micro-batches {ours.small.seconds / max(theirs.small.seconds, 0.1):.2f}x the time")
    print(f"audit: {'drift in ' + ', '.join(drifted) if drifted else 'the lake matches MySQL'}")
    if drifted:
        raise typer.Exit(1)


def from_the_shell(scratch: Settings, tree: Path | None = None) -> float:
    """`python -m batch` as a user types it (in `tree`: another revision's): a run with the
    JVM's start."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "batch"], cwd=tree or REPO_ROOT, check=True, capture_output=True,
                   env={**os.environ, **scratch.as_env()})
    return time.monotonic() - started


@dataclass(frozen=True)
class Freshness:
    p50: float
    p99: float
    orders: int
    exact: bool  # every order's status in Gold as the manifest says
    caught_up_s: float
    peak_rss_mb: float  # the continuous lake's own process (not its children) during the burst

    def line(self, orders: int, rate: float, who: str = "ours") -> str:
        return (f"freshness, {who} (continuous lake, 2 workers, {orders:,} orders at "
                f"{'full speed' if not rate else f'{rate:g}/s'}): last commit -> Gold with the final status "
                f"p50 {self.p50:.1f} s, p99 {self.p99:.1f} s ({self.orders:,} orders; statuses "
                f"{'as' if self.exact else 'NOT as'} the manifest says; the lake caught up with the source in "
                f"{self.caught_up_s:.0f} s first; the lake process's peak RSS {self.peak_rss_mb:,.0f} MB)")


class PeakRss:
    """A process's largest resident set size, sampled every 0.2 s on a thread of its own."""

    def __init__(self, pid: int) -> None:
        self.process, self.peak_mb = psutil.Process(pid), 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while not self.stopping.wait(0.2):
            try:
                self.peak_mb = max(self.peak_mb, self.process.memory_info().rss / 2**20)
            except psutil.Error:
                return

    def reset(self) -> None:
        self.peak_mb = 0.0

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()


MICRO_BATCH_LINE = re.compile(r"micro-batch (\d+): ([\d,]+) records applied.*?; (?:(\d+) Spark jobs, )?(\d+) Delta commits, "
                              r"([\d.]+) s")  # the fast lane's lines name no Spark jobs
OLDER_LINE = re.compile(r"micro-batch (\d+) applied in ([\d.]+) s")  # a revision that counted neither


THREAD_KINDS = (("JIT compiler", "CompilerThre"), ("executor tasks", "Executor task"),
                ("driver", "stream executio"), ("GC", "GC Thread"), ("GC", "G1 "))


def thread_kind(name: str) -> str:
    """A JVM thread's kind, from its name as Linux keeps it (15 characters: `C2 CompilerThre`)."""
    return next((kind for kind, part in THREAD_KINDS if part in name), "other")


class ThreadCpu:
    """A process's CPU seconds by kind of thread since it was made (the continuous lake's JVM:
    its JIT compiler, executor tasks, the micro-batch's driver thread, GC, the rest)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = self.sample()

    def sample(self) -> Counter:
        seconds: Counter = Counter()
        for thread in psutil.Process(self.pid).threads():
            try:
                name = Path(f"/proc/{self.pid}/task/{thread.id}/comm").read_text()
            except OSError:  # ended meanwhile
                continue
            seconds[thread_kind(name)] += thread.user_time + thread.system_time
        return seconds

    def since(self) -> dict[str, float]:
        now = self.sample()
        return {kind: now[kind] - self.start.get(kind, 0) for kind in now}

    @staticmethod
    def line(seconds: dict[str, float]) -> str:
        total = sum(seconds.values())
        return f"lake process {total:.1f} CPU s: " + ", ".join(
            f"{kind} {spent:.1f} s ({spent / max(total, 0.1):.0%})"
            for kind, spent in sorted(seconds.items(), key=lambda item: -item[1]))


def lake_jvm(pid: int) -> int | None:
    """The pid of the continuous lake's JVM (its Python process's `java` child)."""
    return next((child.pid for child in psutil.Process(pid).children() if child.name() == "java"), None)


@dataclass(frozen=True)
class MicroBatches:
    """The continuous lake's micro-batches that applied an increment, from its log (None:
    that revision's log does not say)."""

    lake_orders: int
    batches: int
    records: int | None
    jobs: int | None
    commits: int | None
    seconds: float
    cpu: dict[str, float] | None = None  # the lake JVM's CPU seconds by kind of thread meanwhile

    @classmethod
    def logged(cls, log: str, lake_orders: int, after: int = -1) -> MicroBatches:
        """The micro-batches past batch `after` that `log` has lines of."""
        found = [match.groups() for match in MICRO_BATCH_LINE.finditer(log) if int(match.group(1)) > after]
        if not found:
            older = [float(seconds) for batch, seconds in OLDER_LINE.findall(log) if int(batch) > after]
            return cls(lake_orders, len(older), None, None, None, sum(older))
        jobs = [int(jobs) for *_, jobs, _, _ in found if jobs is not None]
        return cls(lake_orders, len(found), sum(int(records.replace(",", "")) for _, records, *_ in found),
                   sum(jobs) if jobs else None, sum(int(commits) for *_, commits, _ in found),
                   sum(float(seconds) for *_, seconds in found))

    def line(self, increment: int) -> str:
        jobs = "" if self.jobs is None else f", {self.jobs} Spark jobs ({self.jobs / max(self.batches, 1):.0f} per micro-batch)"
        counted = ("" if self.records is None else
                   f", {self.records:,} records{jobs}, {self.commits} Delta commits "
                   f"({self.commits / max(self.batches, 1):.1f} per micro-batch)")
        cpu = "" if self.cpu is None else f"; {ThreadCpu.line(self.cpu)}"
        return (f"{increment:,} orders on a lake of {self.lake_orders:,} orders: {self.batches} micro-batch(es)"
                f"{counted}, {self.seconds:.1f} s applying{cpu}")


class ContinuousRun:
    """The continuous lake of a scratch lake (`tree`: another checkout's), caught up with the
    source first: a burst's freshness beside two workers, and increments' micro-batches."""

    def __init__(self, scratch: Settings, customers: int, tree: Path | None = None) -> None:
        self.scratch, self.customers, self.tree = scratch, customers, tree
        self.running = ExitStack()  # stopped in reverse, whatever fails on the way

    def __enter__(self) -> ContinuousRun:
        started = time.monotonic()
        self.pid = start_continuous_lake(self.scratch, every_s=1 if self.tree is None else 10, tree=self.tree)
        self.running.callback(stop_continuous_lake, self.scratch)
        self.rss = PeakRss(self.pid)
        self.running.callback(self.rss.stop)
        self.reader = LakeReader(self.scratch)
        self.wait_for(lambda: self.silver_rows("customers") >= self.customers, "the customers")
        self.caught_up_s = time.monotonic() - started
        return self

    def wait_for(self, done, what: str, timeout_s: float = 1800) -> None:
        """Until `done()`, read from the lake as any reader would (so either engine's lake is
        waited for the same way)."""
        deadline = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the continuous lake has not applied {what} in {timeout_s:.0f} s: "
                                   f"see {log_path(self.scratch)}")
            time.sleep(1)

    def silver_rows(self, table: str) -> int:
        return self.reader.rows("silver", table)

    def applied(self, manifest: dict) -> dict[str, str]:
        """Until Gold's facts show every order of `manifest` with its final status; those statuses."""
        expected = expected_statuses(manifest)
        self.wait_for(lambda: self.reader.fact_statuses(set(expected)) == expected, "the orders")
        return expected

    def __exit__(self, *exc) -> None:
        self.running.close()

    def freshness(self, orders: int, rate: float, seed: int) -> Freshness:
        """Two workers running while `orders` are written; each order's last commit -> the Gold
        commit that first shows its final status, read once the lake has caught up."""
        with ExitStack() as workers_running:
            workers = start_workers(self.scratch, 2)
            workers_running.callback(lambda: [worker.stop() for worker in workers])
            wait_for_group(self.scratch, workers)
            committed: dict[str, float] = {}
            self.rss.reset()
            manifest = add_orders(self.scratch, orders, seed=seed, customers=self.customers, rate=rate,
                                  committed=committed)
            expected = self.applied(manifest)
            exact = self.reader.fact_statuses(set(expected)) == expected
            lags = lags_s(committed, self.reader.first_visible(expected))
        cuts = statistics.quantiles(lags, n=100)
        return Freshness(cuts[49], cuts[98], len(lags), exact, self.caught_up_s, self.rss.peak_mb)

    def increment(self, orders: int, seed: int) -> MicroBatches:
        """`orders` more orders (full speed); the micro-batches that applied them."""
        # From an idle lake: caught up, and its deferred work (a long first round after a
        # catch-up) done, so the figure is the hot path's own. (Another revision's deferred
        # work keeps other marks: not waited for.)
        deadline = time.monotonic() + 900
        while self.tree is None and not self.reader.deferred_current() and time.monotonic() < deadline:
            time.sleep(3)
        log = log_path(self.scratch)
        before, applied = log.stat().st_size, self.last_batch()
        cpu = ThreadCpu(lake_jvm(self.pid) or self.pid)  # the Spark lake's JVM, or the fast lane itself
        self.applied(add_orders(self.scratch, orders, seed=seed, customers=self.customers))
        last = self.last_batch()
        # The lake logs a micro-batch's line once its progress is reported and no deferred step holds its main thread.
        deadline, logged = time.monotonic() + 900, ""
        while not re.search(rf"micro-batch {last}[: ]", logged) and time.monotonic() < deadline:
            time.sleep(2)
            with log.open() as text:
                text.seek(before)
                logged = text.read()
        return replace(MicroBatches.logged(logged, self.lake_orders(), after=applied), cpu=cpu.since())

    def last_batch(self) -> int:
        """The continuous lake's newest micro-batch logged."""
        return max((int(number) for number in re.findall(r"micro-batch (\d+)[: ]", log_path(self.scratch).read_text())),
                   default=-1)

    def grow(self, to_orders: int, seed: int) -> None:
        """Orders written (full speed) until the lake holds `to_orders`, applied by the lake."""
        missing = to_orders - self.lake_orders()
        if missing > 0:
            self.applied(add_orders(self.scratch, missing, seed=seed, customers=self.customers, chaos=False))

    def lake_orders(self) -> int:
        return self.reader.rows("gold", "fact_orders")


@dataclass
class ContinuousFigures:
    freshness: Freshness | None = None
    small: MicroBatches | None = None
    large: MicroBatches | None = None

    def print(self, orders: int, rate: float, increment: int, who: str) -> None:
        if self.freshness:
            print(self.freshness.line(orders, rate, who))
        for batches in filter(None, (self.small, self.large)):
            print(f"micro-batches, {who}: {batches.line(increment)}")
        if self.small and self.large:
            print(f"micro-batches, {who}: on {self.large.lake_orders:,} against {self.small.lake_orders:,} orders: "
                  f"{self.large.seconds / max(self.small.seconds, 0.1):.2f}x the time")


def measure_continuous(scratch: Settings, customers: int, *, orders: int, rate: float,
                       increment: int, tree: Path | None = None, seed: int = 4) -> ContinuousFigures:
    """On a lake caught up with the source: `increment` orders' micro-batches, then a burst of
    `orders` beside two workers (freshness). `seed` and `seed + 1` plan the orders: another
    lake measured on the same source needs others (the plans' order ids would repeat)."""
    with ContinuousRun(scratch, customers, tree) as run:
        return ContinuousFigures(small=run.increment(increment, seed=seed + 1),
                                 freshness=run.freshness(orders, rate, seed=seed) if orders else None)


def measure_grown(scratch: Settings, customers: int, figures: ContinuousFigures, *, increment: int,
                  grow_to: int) -> None:
    """The lake grown to `grow_to` orders, then `increment` orders' micro-batches again."""
    with ContinuousRun(scratch, customers) as run:
        run.grow(grow_to, seed=6)
        figures.large = run.increment(increment, seed=7)


if __name__ == "__main__":
    run(main)
