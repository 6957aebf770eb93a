"""The batch layers at seed 000's size: full run, then an incremental run, per layer.

    python -m bench.batch [--customers 1000000 --orders 25000 --increment 1000 --master local[2]]

Runs in a scratch database and a scratch lake bucket, so the main pipeline is untouched.
Prints wall time per layer and Bronze's JDBC ingest rows/s; `--jobs` adds, per run, the
Spark jobs it started and the code lines that started the most (from Spark's REST API), and
the JVM's CPU seconds with the share its JIT compiler took. `--repeats` more incremental
runs in the same process show the JVM warming up (what `python -m batch --every` lives in).
The baseline, in the same process and session, is seed 000's Bronze: each table read over
JDBC and overwritten as plain Parquet (no Delta, no comparison, not incremental). Gold
includes its marts. Targets (issue 15): full run <= 45 s, incremental run after 1,000 new
orders <= 15 s in-process and <= 20 s from the shell (`python -m batch`, JVM start
included).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Annotated

import orjson
import typer

from batch import bronze, gold, silver
from batch.runs import LayerRun, show_progress
from batch.session import build_session
from config import Settings, settings
from config.cli import run
from config.settings import REPO_ROOT
from source import database, generate
from source.traffic import ChaosMix, Truth, plan
from stack.scratch import scratch_lake

LAYERS = (bronze, silver, gold)


def seed_source(scratch: Settings, customers: int, orders: int) -> None:
    connection = database.connect(scratch)
    database.apply_schema(connection)
    database.load_reference(connection, customers, seed=42)
    add_orders(scratch, orders, seed=1, customers=customers)


def add_orders(scratch: Settings, orders: int, *, seed: int, customers: int) -> None:
    generate.run(database.connect(scratch), plan(orders, seed=seed, customers=customers, chaos=ChaosMix()),
                 total_orders=orders, rate=0, truth=Truth())


def run_layers(spark, scratch: Settings) -> list[LayerRun]:
    return [layer.run(spark, scratch) for layer in LAYERS]


def baseline_bronze(spark, scratch: Settings) -> tuple[float, int]:
    """Seed 000's Bronze: JDBC read, Parquet overwrite, every table, every time."""
    started, rows = time.monotonic(), 0
    for table in database.TABLES:
        frame = bronze.read_table(spark, scratch, table).cache()
        rows += frame.count()
        frame.write.mode("overwrite").parquet(scratch.lake_path("baseline", table))
        frame.unpersist()
    return time.monotonic() - started, rows


def report(title: str, runs: list[LayerRun]) -> float:
    total = sum(run.seconds for run in runs)
    layers = ", ".join(f"{run.layer} {run.seconds:.1f} s" for run in runs)
    bronze_run = runs[0]
    print(f"{title}: {total:.1f} s ({layers}); Bronze JDBC ingest {bronze_run.total('read'):,} rows, "
          f"{bronze_run.total('read') / bronze_run.seconds:,.0f} rows/s; written "
          f"{sum(run.total('written') for run in runs):,}")
    return total


class JobProfile:
    """Spark jobs started since the last look, from the driver's REST API: how many, their
    time, and the call sites (file:line of our code) that started most of them; and the
    driver JVM's CPU seconds since then, with those its JIT compiler spent."""

    def __init__(self, spark) -> None:
        context = spark.sparkContext
        self.url = f"{context.uiWebUrl}/api/v1/applications/{context.applicationId}/jobs"
        self.seen = {job["jobId"] for job in self.jobs()}
        jvm = spark._jvm
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


def main(
    customers: Annotated[int, typer.Option(help="Customers in the scratch source.")] = 1_000_000,
    orders: Annotated[int, typer.Option(help="Orders before the full run (chaos on).")] = 25_000,
    increment: Annotated[int, typer.Option(help="Orders added before the incremental run.")] = 1_000,
    master: Annotated[str, typer.Option(help="Spark master for the run.")] = "local[2]",
    jobs: Annotated[bool, typer.Option(help="Print each run's Spark jobs, call sites and JIT share.")] = False,
    repeats: Annotated[int, typer.Option(
        help="More incremental runs in the same process after the first (the JVM warming).")] = 2,
) -> None:
    show_progress()
    name = f"bench{uuid.uuid4().hex[:8]}"
    base = settings.model_copy(update={"spark_master": master})
    with scratch_lake(base, name) as lake_settings, \
            database.scratch_database(lake_settings, name) as scratch:
        seed_source(scratch, customers, orders)
        started = time.monotonic()
        spark = build_session(scratch, "bench-batch")
        session_s = time.monotonic() - started
        try:
            baseline_s, baseline_rows = baseline_bronze(spark, scratch)  # first: it warms the JVM for ours
            profile = JobProfile(spark) if jobs else None
            full_runs = run_layers(spark, scratch)
            full = report("full run", full_runs)
            if profile:
                profile.report("full run")
            add_orders(scratch, increment, seed=2, customers=customers)
            incremental = report(f"incremental run (+{increment:,} orders)", run_layers(spark, scratch))
            if profile:
                profile.report("incremental run")
            warmer = []
            for repeat in range(1, repeats + 1):
                add_orders(scratch, increment, seed=2 + repeat * 100, customers=customers)
                warmer.append(report(f"incremental run {repeat + 1} in this process", run_layers(spark, scratch)))
                if profile:
                    profile.report(f"incremental run {repeat + 1}")
        finally:
            spark.stop()
        add_orders(scratch, increment, seed=3, customers=customers)
        shell = from_the_shell(scratch)
    print(f"session start {session_s:.1f} s (JVM, jars from the Ivy cache)")
    print(f"baseline (seed 000's Bronze, Parquet overwrite): {baseline_s:.1f} s, "
          f"{baseline_rows / baseline_s:,.0f} rows/s")
    print(f"full run {full:.1f} s (target <= 45 s); incremental {incremental:.1f} s in-process (target <= 15 s), "
          f"{shell:.1f} s from the shell (target <= 20 s)")
    if warmer:
        print(f"incremental runs in one process, JVM warming: {incremental:.1f} s, "
              + ", ".join(f"{seconds:.1f} s" for seconds in warmer))
    print(f"ratio to the baseline: full Bronze {full_runs[0].seconds / baseline_s:.2f}x its time; "
          f"all three layers {full / baseline_s:.2f}x; incremental run {incremental / baseline_s:.2f}x"
          + (f" (after {repeats} more: {warmer[-1] / baseline_s:.2f}x)" if warmer else "")
          + f"; from the shell {shell / baseline_s:.2f}x")


def from_the_shell(scratch: Settings) -> float:
    """`python -m batch` as a user types it: an incremental run with the JVM's start."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "batch"], cwd=REPO_ROOT, check=True, capture_output=True,
                   env={**os.environ, **scratch.as_env()})
    return time.monotonic() - started


if __name__ == "__main__":
    run(main)
