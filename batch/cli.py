"""The command line every batch job shares: `python -m batch[.bronze|.silver|.gold] [--full]`."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import typer
from py4j.protocol import Py4JJavaError
from typing import Annotated

from batch import bronze, gold, silver
from batch.report import log
from batch.session import build_session
from config import settings

LAYERS = {"bronze": bronze.run, "silver": silver.run, "gold": gold.run}


def cause(error: Exception) -> str:
    """The Java exception's one-line message rather than its page of stack trace."""
    if isinstance(error, Py4JJavaError):
        return str(error.java_exception.toString())
    return f"{type(error).__name__}: {error}"


def show_progress() -> None:
    """The jobs' own log lines on stderr (spark-submit configures the root logger first)."""
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def job(layers: Sequence[str], about: str) -> typer.Typer:
    cli = typer.Typer(add_completion=False, help=about)

    @cli.command(help=about)
    def run(full: Annotated[bool, typer.Option(
            "--full", help="Ignore the stored marks: read every input whole and reconcile "
                           "(rows gone from the input are deleted).")] = False) -> None:
        show_progress()
        started = time.monotonic()
        spark = build_session(settings, f"orderpipe-{'-'.join(layers)}")
        try:
            runs = [LAYERS[name](spark, settings, full=full) for name in layers]
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

    return cli
