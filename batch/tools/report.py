"""`python -m batch report [--out PATH]`: an HTML page of charts and tables from Gold's marts
on MinIO (batch.tools.report_page builds it), read through delta-rs (no JVM). Run the batch
first: `python -m batch`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from batch.clocks import STALENESS_BOUND_S
from batch.runs import log, show_progress
from batch.tools.lake_reader import LakeReader
from batch.tools.report_page import page, staleness_note
from config import settings


def write_report(reader: LakeReader, out: Path) -> Path:
    staleness = staleness_note(reader.deferred_behind(), STALENESS_BOUND_S)
    log.info(staleness)
    html = page(reader.marts(), generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                staleness=staleness)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def main(out: Annotated[Path | None, typer.Option(
        help="Where to write the page (default: STACK_HOME/reports/lake.html).", show_default=False)] = None) -> None:
    """Write the lake report: orders per day and completion rate, payment mix, top products and
    customer segments, each a chart with its table."""
    show_progress()
    try:
        written = write_report(LakeReader(settings), out or settings.stack_home / "reports" / "lake.html")
    except FileNotFoundError as error:
        typer.echo(f"report: {error}", err=True)
        raise typer.Exit(1) from None
    log.info("report written: %s", written.resolve())
    typer.echo(written.resolve())
