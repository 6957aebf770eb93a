"""Bronze: the change log. Every record of the four CDC topics into `s3a://bronze/cdc_raw/`
(Delta, partitioned by topic), appended by the fast lane's archiver (batch.fastlane: Python,
no JVM), each (topic, partition, offset) once: every append carries the Delta transaction id
of each topic-partition it holds (its last offset), and reading resumes after it. Silver
applies the archive from there. `BronzeJob` (`python -m batch bronze`) drains what the topics
hold now and reads no rows from MySQL (the JDBC copy is batch.layers.snapshot). The archive
alone: `python -m batch archive [--once]`.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from batch.clocks import MAX_RECORDS_PER_BATCH
from batch.fastlane.run import archive_only
from batch.job import LayerJob
from batch.names import BRONZE, CDC_TABLES, archive_location
from batch.runs import LayerRun, log, show_progress
from config import settings


class BronzeJob(LayerJob):
    layer = BRONZE
    writes_hot_tables = True

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        """The archive's transaction ids are its marks: nothing to store here."""
        with tables.table("cdc_raw") as counts:
            counts.read = counts.written = archive_only(self.settings, once=True)
        return {}


def main(
    once: Annotated[bool, typer.Option("--once", help="Archive what the topics hold now, then stop.")] = False,
    every: Annotated[float, typer.Option(help="The longest a record waits for its append, in seconds.",
                                         min=0.1)] = 1.0,
    max_records_per_batch: Annotated[int, typer.Option(help="Records appended per commit at most.",
                                                       min=1)] = MAX_RECORDS_PER_BATCH,
) -> None:
    """Archive every record of the CDC topics (orders, order_details, customers,
    payment_method) into s3a://bronze/cdc_raw/ as Delta, exactly once per offset."""
    show_progress()
    started = time.monotonic()
    log.info("archiving %s into %s%s", ", ".join(CDC_TABLES), archive_location(settings), "" if once else "; Ctrl-C stops")
    total = archive_only(settings, once=once, linger_s=every, max_records=max_records_per_batch)
    log.info("cdc_raw: %s records archived in %.1f s", f"{total:,}", time.monotonic() - started)
