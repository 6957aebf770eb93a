"""`python -m batch report [--out PATH]`: an HTML page of charts and tables from Gold's marts
on MinIO (batch.tools.report_page builds it). Run the batch first: `python -m batch`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer
from pyspark.sql import SparkSession

from batch.clocks import STALENESS_BOUND_S
from batch.layers.marts import MARTS
from batch.names import gold_location
from batch.runs import log, show_progress
from batch.session import build_session
from batch.store import delta_log, reads
from batch.tools.freshness import deferred_behind
from batch.tools.report_page import page, staleness_note
from config import Settings, settings


def mart_rows(spark: SparkSession, config: Settings) -> dict[str, list[dict]]:
    missing = [name for name in MARTS if not delta_log.exists(spark, gold_location(config, name))]
    if missing:
        raise FileNotFoundError(f"no {', '.join(missing)} in the lake yet: run `python -m batch` first")
    return {name: [row.asDict() for row in reads.read(spark, gold_location(config, name)).collect()]
            for name in MARTS}


def write_report(spark: SparkSession, config: Settings, out: Path) -> Path:
    behind = deferred_behind(spark, config)
    log.info(staleness_note(behind, STALENESS_BOUND_S))
    html = page(mart_rows(spark, config), generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                staleness=staleness_note(behind, STALENESS_BOUND_S))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def main(out: Annotated[Path | None, typer.Option(
        help="Where to write the page (default: STACK_HOME/reports/lake.html).", show_default=False)] = None) -> None:
    """Write the lake report: orders per day and completion rate, payment mix, top products and
    customer segments, each a chart with its table."""
    show_progress()
    spark = build_session(settings, "orderpipe-report", lake_role="reader")
    try:
        written = write_report(spark, settings, out or settings.stack_home / "reports" / "lake.html")
    except FileNotFoundError as error:
        typer.echo(f"report: {error}", err=True)
        raise typer.Exit(1) from None
    finally:
        spark.stop()
    log.info("report written: %s", written.resolve())
    typer.echo(written.resolve())
