"""`python -m batch [bronze|silver|gold ...] [--full]`: the lake's jobs, one entry point.

With no layer named, Bronze, Silver and Gold run one after the other in one SparkSession.
spark-submit runs this file too: `spark-submit … batch/__main__.py gold`.
"""

from __future__ import annotations

import time
from enum import Enum
from typing import Annotated

import typer
from py4j.protocol import Py4JJavaError

from batch.bronze import BronzeJob
from batch.gold import GoldJob
from batch.report import log, show_progress
from batch.session import build_session
from batch.silver import SilverJob
from config import settings
from config.cli import run


class Layer(str, Enum):
    bronze = "bronze"
    silver = "silver"
    gold = "gold"


JOBS = {Layer.bronze: BronzeJob, Layer.silver: SilverJob, Layer.gold: GoldJob}


def cause(error: Exception) -> str:
    """The Java exception's one-line message rather than its page of stack trace."""
    if isinstance(error, Py4JJavaError):
        return str(error.java_exception.toString())
    return f"{type(error).__name__}: {error}"


def main(
    layers: Annotated[list[Layer] | None, typer.Argument(
        help="Layers to run, in the order given; all three (bronze silver gold) when none is named.",
        show_default=False)] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="Ignore the stored marks: read every input whole and reconcile "
                       "(rows gone from the input are deleted).")] = False,
) -> None:
    """Run the lake's layers: MySQL -> Bronze -> Silver -> Gold on MinIO (Delta Lake), each
    reading only what changed since its last run."""
    layers = layers or list(Layer)
    show_progress()
    started = time.monotonic()
    spark = build_session(settings, f"orderpipe-{'-'.join(layer.value for layer in layers)}")
    try:
        runs = [JOBS[layer].once(spark, settings, full=full) for layer in layers]
    except Exception as error:  # noqa: BLE001 - every failure gets the same hint
        typer.echo(f"batch failed: {cause(error)}\nThe lake keeps its last good version; fix the "
                   "cause and run again. Is the stack up (`python -m stack up`) and the source "
                   "loaded (`python -m source load`)?", err=True)
        raise typer.Exit(1) from None
    finally:
        spark.stop()
    totals = ", ".join(f"{run.layer} {run.seconds:.1f} s (written {run.total('written'):,}, "
                       f"quarantined {run.total('quarantined'):,})" for run in runs)
    log.info("batch done in %.1f s: %s", time.monotonic() - started, totals)


if __name__ == "__main__":
    run(main)
