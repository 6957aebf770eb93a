"""The demo's lake step: the batch layers until Gold holds every order of the manifest with
the status it ended in (the CDC topics may still be catching up when the stream is done),
then the lake report."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from batch import bronze, gold, lake, silver
from batch.report import write_report
from batch.runs import log, show_progress
from batch.session import build_session
from config import Settings

GOLD_TABLES = ("dim_customer", "dim_payment_method", "dim_product", "dim_date", "fact_orders",
               "fact_order_products")


@dataclass(frozen=True)
class LakeCheck:
    """Gold's fact_orders against the manifest: each order's status, and the cancelled count."""

    expected: dict[str, str]  # order id -> complete, incomplete or cancelled
    found: dict[str, str]
    runs: int = 1
    mismatched: list[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "mismatched",
                           sorted(order for order, status in self.expected.items() if self.found.get(order) != status))

    @property
    def exact(self) -> bool:
        return not self.mismatched

    def lines(self) -> list[str]:
        shown = ", ".join(f"{order} {self.found.get(order, 'missing')} (is {self.expected[order]})"
                          for order in self.mismatched[:3])
        return [f"lake cancelled      {cancelled(self.found):,} (manifest {cancelled(self.expected):,})",
                f"lake statuses       {len(self.expected) - len(self.mismatched):,} of {len(self.expected):,} "
                f"orders as the manifest says after {self.runs} lake run(s)"
                + (f"; differ: {shown}" if shown else "")]


def cancelled(statuses: dict[str, str]) -> int:
    return sum(status == "cancelled" for status in statuses.values())


def expected_statuses(manifest: dict) -> dict[str, str]:
    return {**dict.fromkeys(manifest["complete"], "complete"), **dict.fromkeys(manifest["incomplete"], "incomplete"),
            **dict.fromkeys(manifest["cancelled"], "cancelled")}


def fact_statuses(spark: SparkSession, settings: Settings, orders: set[str]) -> dict[str, str]:
    facts = lake.read(spark, lake.path(settings, "gold", "fact_orders")).select("order_id", "status")
    wanted = spark.createDataFrame([(order,) for order in orders], "order_id string")
    return {row.order_id: row.status for row in facts.join(F.broadcast(wanted), "order_id", "left_semi").collect()}


def run_lake(settings: Settings, manifest: dict, *, timeout_s: float = 300) -> tuple[LakeCheck, dict[str, int], Path]:
    """The batch layers, again while Gold differs from the manifest (until `timeout_s`), then
    the lake report: the check, Gold's row counts and the report's path."""
    show_progress()
    expected = expected_statuses(manifest)
    spark = build_session(settings, "orderpipe-demo")
    deadline = time.monotonic() + timeout_s
    try:
        runs = 0
        while True:
            for layer in (bronze, silver, gold):
                layer.run(spark, settings)
            runs += 1
            check = LakeCheck(expected, fact_statuses(spark, settings, set(expected)), runs)
            if check.exact or time.monotonic() > deadline:
                break
            log.info("lake: %d orders not yet as the manifest says; running the layers again", len(check.mismatched))
            time.sleep(2)
        counts = {table: lake.read(spark, lake.path(settings, "gold", table)).count() for table in GOLD_TABLES}
        return check, counts, write_report(spark, settings, settings.stack_home / "reports" / "lake.html")
    finally:
        spark.stop()
