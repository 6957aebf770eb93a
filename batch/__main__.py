"""`python -m batch [bronze|silver|gold|deferred|snapshot ...] [--full] [--every 15m] [--continuous]`:
the lake's jobs, one entry point.

With no layer named, Bronze (the CDC topics drained into the archive), Silver (the archive
applied, then the history) and Gold (dimensions, facts, order products, marts) run one after
the other in one SparkSession (batch.flows); `deferred` is what Spark keeps beside the fast
lane (history, dimensions, order products, marts); `snapshot` is the JDBC copy of MySQL into
Bronze, never run unless named; `--every` repeats that on a schedule (batch.schedule).
`--continuous` runs the fast lane (batch.fastlane: the archive, Silver and Gold's facts per
micro-batch, no JVM), with `deferred` as a Spark child process on its own clock.
The tools have their own commands: `python -m batch audit|maintain|report|archive --help`.
spark-submit runs this file too: `spark-submit … batch/__main__.py gold`.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from enum import Enum
from typing import Annotated

import typer
from py4j.protocol import Py4JJavaError

from batch import flows, schedule
from batch.clocks import DEFAULT_DEFERRED_EVERY_S, DEFAULT_LINGER_S
from batch.fastlane.run import supervise
from batch.layers import bronze
from batch.runs import log, show_progress
from batch.session import build_session
from batch.tools import audit, maintain, report
from config import settings
from config.cli import run


class Layer(str, Enum):
    bronze = "bronze"
    silver = "silver"
    gold = "gold"
    deferred = "deferred"
    snapshot = "snapshot"


JOBS = {Layer.bronze: flows.bronze, Layer.silver: flows.silver, Layer.gold: flows.gold, Layer.deferred: flows.deferred,
        Layer.snapshot: flows.snapshot}
# `python -m batch <tool> ...`: commands of their own beside the layers
TOOLS = {"audit": audit.main, "maintain": maintain.main, "report": report.main, "archive": bronze.main}
CHANGE_LOG_LAYERS = [Layer.bronze, Layer.silver, Layer.gold]


def cause(error: Exception) -> str:
    """The Java exception's one-line message rather than its page of stack trace."""
    if isinstance(error, Py4JJavaError):
        return str(error.java_exception.toString())
    return f"{type(error).__name__}: {error}"


def run_layers(spark, layers: list[Layer], full: bool) -> str:
    started = time.monotonic()
    runs = [JOBS[layer](spark, settings, full=full) for layer in layers]
    totals = ", ".join(f"{run.layer} {run.seconds:.1f} s (written {run.total('written'):,}, "
                       f"quarantined {run.total('quarantined'):,})" for run in runs)
    return f"batch done in {time.monotonic() - started:.1f} s: {totals}"


def main(
    layers: Annotated[list[Layer] | None, typer.Argument(
        help="Layers to run, in the order given; bronze silver gold when none is named "
             "(deferred: history, dimensions, order products and marts, what Spark does beside the fast "
             "lane; snapshot: the JDBC copy of MySQL into Bronze, only when named).",
        show_default=False)] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Ignore the stored marks: read every input whole (Silver applies the whole "
                       "archive again, checking quarantined rows anew; snapshot deletes rows gone from MySQL).")] = False,
    every: Annotated[str | None, typer.Option(
        "--every", help="Run again and again, this long from one start to the next (30s, 15m, 1h); "
                        "a failed run is logged and the next one still comes. Ctrl-C stops.",
        show_default=False)] = None,
    continuous: Annotated[bool, typer.Option(
        "--continuous", help="The fast lane (no JVM): each micro-batch of CDC records archived, then Silver "
                             "and Gold's facts applied as soon as records arrive (--every: the longest a record "
                             "waits for its micro-batch, default 1s), with Spark's deferred work beside it. "
                             "Ctrl-C stops.")] = False,
    deferred_every: Annotated[str, typer.Option(
        "--deferred-every",
        help="With --continuous: run Spark's deferred work (history, dimensions, order products, marts) this "
             "often, in a process of its own (default 60s; 0 runs none: `python -m batch deferred --every` "
             "elsewhere).", show_default=False)] = None,
) -> None:
    """Run the lake's layers: the CDC topics -> Bronze (the raw change log) -> Silver (the
    changes applied, with history) -> Gold (the star and its marts) on MinIO (Delta Lake),
    each reading only what changed since its last run. Tools: `python -m batch audit` (the lake
    against MySQL), `maintain` (compaction and vacuum), `report` (charts of the marts),
    `archive` (Bronze's streaming query alone); each has --help."""
    layers = layers or CHANGE_LOG_LAYERS
    period_s = schedule.period_seconds(every) if every else None
    show_progress()
    if deferred_every and not continuous:
        raise typer.BadParameter("only the continuous lake defers work; a run builds every table in turn",
                                 param_hint="--deferred-every")
    if continuous:
        if layers != CHANGE_LOG_LAYERS or full:
            raise typer.BadParameter("--continuous runs every layer from the change log; name no layer "
                                     "and no --full", param_hint="--continuous")
        deferred_s = DEFAULT_DEFERRED_EVERY_S if deferred_every is None else (
            0.0 if deferred_every.strip() in ("0", "0s") else schedule.period_seconds(deferred_every))
        run_continuously(period_s or DEFAULT_LINGER_S, deferred_s)
        return
    name = f"orderpipe-{'-'.join(layer.value for layer in layers)}"
    if period_s is None:
        spark = build_session(settings, name)
        try:
            log.info(run_layers(spark, layers, full))
        except Exception as error:  # noqa: BLE001 - every failure gets the same hint
            typer.echo(f"batch failed: {cause(error)}\nThe lake keeps its last good version; fix the "
                       "cause and run again. Is the stack up (`python -m stack up`) and the source "
                       "loaded (`python -m source load`)?", err=True)
            raise typer.Exit(1) from None
        finally:
            spark.stop()
        return
    scheduled = ScheduledRuns(name, layers, full)
    log.info("running %s every %s; Ctrl-C stops", " ".join(layer.value for layer in layers), every)
    try:
        schedule.every(period_s, scheduled.run_once, stopping=scheduled.stopping, sleep=scheduled.stopping.wait)
    finally:
        scheduled.stop()
    log.info("stopped")


def run_continuously(linger_s: float, deferred_every_s: float) -> None:
    supervise(settings, linger_s=linger_s, deferred_every_s=deferred_every_s or None)


class ScheduledRuns:
    """One SparkSession across runs, built again after a failed run (its JVM may be the cause).

    Ctrl-C or SIGTERM (a Procfile or compose stop) cancels the run under way, whose writes
    leave no trace (each is one Delta commit), and ends the loop. PySpark's own SIGINT
    handler would instead break the py4j call under way, which then reads as a failed run
    and the loop would go on, so each new session hands the signals back to this object."""

    def __init__(self, name: str, layers: list[Layer], full: bool) -> None:
        self.name, self.layers, self.full = name, layers, full
        self.spark = None
        self.stopping = threading.Event()
        self.take_signals()

    def run_once(self, number: int) -> str:
        try:
            if self.spark is None:
                self.spark = build_session(settings, self.name)
                self.take_signals()
            return run_layers(self.spark, self.layers, self.full and number == 1)
        except Exception as error:
            self.stop()
            raise RuntimeError(cause(error)) from None

    def take_signals(self) -> None:
        for stop_signal in (signal.SIGINT, signal.SIGTERM):
            signal.signal(stop_signal, self.request_stop)

    def request_stop(self, signum: int, _frame) -> None:
        if not self.stopping.is_set():
            log.info("%s: stopping; a run under way is cancelled, the lake keeps its last good version",
                     signal.Signals(signum).name)
        self.stopping.set()
        if self.spark is not None:
            # From another thread: py4j pins a connection per thread, and this handler runs
            # on the main thread in the middle of its call; sharing that connection breaks it.
            threading.Thread(target=self.spark.sparkContext.cancelAllJobs, daemon=True).start()

    def stop(self) -> None:
        if self.spark is not None:
            self.spark.stop()
            self.spark = None


if __name__ == "__main__":
    if sys.argv[1:2] and sys.argv[1] in TOOLS:
        tool = sys.argv.pop(1)
        run(TOOLS[tool], prog_name=f"python -m batch {tool}")
    else:
        run(main)
