"""The points between two commits where a fault test has the lake's process killed, to prove that
a restart leaves every table as if nothing happened: each commit of a fast-lane micro-batch, and
each table and marks file a Spark job writes (the deferred work's, a one-shot run's).

`LAKE_KILL_AT=silver:orders@2` kills the process with SIGKILL the second time it has just
committed Silver's `orders`; `LAKE_KILL_AT=job:gold.dim_customer` once a Spark job has written
`dim_customer`, before its marks. Unset (always, outside the fault tests), a point costs one
comparison.
"""

from __future__ import annotations

import functools
import os
import signal
from collections import Counter

ARCHIVE = "archive"                # the micro-batch's records appended to bronze/cdc_raw
CDC_QUARANTINE = "silver:cdc_quarantine"
GOLD = "gold"                      # fact_orders written
SILVER_MARKS = "marks:silver"      # Silver's mark: the archive version applied
GOLD_MARKS = "marks:gold"          # the Silver versions Gold's deferred work reads from


def silver(table: str) -> str:
    """After a Silver table's commit (`silver:orders`) or its quarantine's (`silver:orders_quarantine`)."""
    return f"silver:{table}"


def settled(quarantine: str) -> str:
    """After the versions a quarantine no longer holds are taken out of it, once Gold is written:
    `settled:orders_quarantine` (reached whether or not any was)."""
    return f"settled:{quarantine}"


def job_table(layer: str, table: str) -> str:
    """After a Spark job's write of one table, before the job's marks: `job:gold.dim_customer`."""
    return f"job:{layer}.{table}"


def job_marks(layer: str, marks_file: str) -> str:
    """After a Spark job's marks: `job:gold/_marks_dimensions`."""
    return f"job:{layer}/{marks_file}"


def sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillPoints:
    """Counts each point reached; `kill`s the process at the one `kill_at` names, at its n-th time."""

    def __init__(self, kill_at: str | None) -> None:
        point, _, nth = (kill_at or "").partition("@")
        self.point, self.nth = point or None, int(nth or 1)
        self.reached_count: Counter[str] = Counter()
        self.kill = sigkill

    def reached(self, point: str) -> None:
        if self.point is None:
            return
        self.reached_count[point] += 1
        if point == self.point and self.reached_count[point] == self.nth:
            self.kill()


@functools.cache
def of_process(kill_at: str | None) -> KillPoints:
    """The Spark jobs' points, counted across every job the process runs."""
    return KillPoints(kill_at)
