"""The demo's lake: the continuous lake (`python -m batch --continuous`) started beside the
workers and waited for until it has caught up with what the topics held; after the orders,
a wait until Gold holds every order of the manifest with the status it ended in, the
lake's freshness (source commit -> Gold), and the lake report (once the deferred work, which
follows the facts on its own clock, has caught up with them). Beside the manifest's orders, the
whole of Gold's live orders against MySQL's (`WholeLake`): a row the lake lost, or keeps after
the source deleted it, fails the demo whichever run wrote it. Every read goes through delta-rs
with the lake reader's login: the demo starts no JVM of its own beside the deferred work's."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from batch import paths
from batch.tools.lake_reader import LakeReader, expected_statuses, lags_s
from batch.tools.report import write_report
from batch.runs import log, show_progress
from config import Settings
from stack.lake_process import start_continuous_lake, wait_caught_up
from stack.process import peak_rss_mb

GOLD_TABLES = ("dim_customer", "dim_payment_method", "dim_product", "dim_date", "fact_orders",
               "fact_order_products")


@dataclass(frozen=True)
class LakeCheck:
    """Gold's fact_orders against the manifest: each order's status, and the cancelled count."""

    expected: dict[str, str]  # order id -> complete, incomplete or cancelled
    found: dict[str, str]
    looks: int = 1
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
                f"orders as the manifest says after {self.looks} look(s)"
                + (f"; differ: {shown}" if shown else "")]


@dataclass(frozen=True)
class WholeLake:
    """Gold's live (not cancelled) order ids against the source's: every order MySQL holds, and no other."""

    source: frozenset[str]
    gold: frozenset[str]

    @property
    def missing(self) -> list[str]:
        return sorted(self.source - self.gold)

    @property
    def extra(self) -> list[str]:
        return sorted(self.gold - self.source)

    @property
    def exact(self) -> bool:
        return self.source == self.gold

    def line(self) -> str:
        named = "; ".join(f"{what} {len(ids):,} (e.g. {', '.join(ids[:3])})"
                          for what, ids in (("missing", self.missing), ("extra", self.extra)) if ids)
        return (f"lake whole        {len(self.gold):,} live orders in Gold fact_orders, {len(self.source):,} in MySQL"
                + (f"; {named}" if named else ", the same ids"))


def live_gold_orders(reader: LakeReader) -> frozenset[str]:
    """The order ids of Gold's fact_orders that are not cancelled."""
    facts = reader.lake.read(paths.path(reader.settings, "gold", "fact_orders"), columns=["order_id", "status"])
    if facts is None:
        return frozenset()
    return frozenset(facts.filter(pl.col("status") != "cancelled")["order_id"].to_list())


def source_orders(connection) -> frozenset[str]:
    cursor = connection.cursor()
    cursor.execute("SELECT id FROM orders")
    return frozenset(row[0] for row in cursor.fetchall())


def cancelled(statuses: dict[str, str]) -> int:
    return sum(status == "cancelled" for status in statuses.values())


class DemoLake:
    """The continuous lake as the demo sees it (reads only)."""

    def __init__(self, settings: Settings) -> None:
        show_progress()
        self.settings = settings
        self.pid = start_continuous_lake(settings)
        self.reader = LakeReader(settings)

    def wait_caught_up(self, timeout_s: float, *, progress: bool = False) -> float:
        """Until the lake has applied every record the CDC topics hold (a first start drains
        every customer first), with a progress bar of the records left; seconds waited."""
        return wait_caught_up(self.settings, timeout_s, who=f"the continuous lake (pid {self.pid})",
                              label="continuous lake catching up" if progress else None)

    def peak_memory(self) -> str:
        """The lake process's high-water resident set, as the demo prints it."""
        peak = peak_rss_mb(self.pid)
        return "unknown (the process is gone)" if peak is None else f"{peak:,.0f} MB"

    def check(self, manifest: dict, *, timeout_s: float) -> LakeCheck:
        """Gold's statuses against the manifest, read once the lake has applied every record
        the topics hold (a wait that reads offsets, not the lake); read again while they
        differ, until `timeout_s` has passed."""
        expected = expected_statuses(manifest)
        started, looks = time.monotonic(), 0
        self.wait_caught_up(timeout_s)
        while True:
            looks += 1
            check = LakeCheck(expected, self.reader.fact_statuses(set(expected)), looks)
            if check.exact or time.monotonic() - started > timeout_s:
                return check
            log.info("lake: %d orders not yet as the manifest says", len(check.mismatched))
            time.sleep(3)

    def whole(self, connection, *, timeout_s: float) -> WholeLake:
        """Gold's live orders against MySQL's, read again while they differ (the lake applies
        what the topics hold by then), until `timeout_s` has passed."""
        started = time.monotonic()
        while True:
            self.wait_caught_up(timeout_s)
            check = WholeLake(source_orders(connection), live_gold_orders(self.reader))
            if check.exact or time.monotonic() - started > timeout_s:
                return check
            time.sleep(3)

    def freshness_s(self, committed_ms: dict[str, float], manifest: dict) -> list[float]:
        """Seconds from each order's last commit at the source to the Gold commit that first
        held its fact with the status it ended in."""
        return lags_s(committed_ms, self.reader.first_visible(expected_statuses(manifest)))

    def report(self, timeout_s: float) -> tuple[dict[str, int], Path]:
        """Gold's row counts and the lake report, once the deferred work (dimensions, products,
        marts) has caught up with the facts checked (or `timeout_s` has passed: the report says
        when it was drawn)."""
        started = time.monotonic()
        while not self.reader.deferred_current() and time.monotonic() - started < timeout_s:
            time.sleep(3)
        counts = {table: self.reader.rows("gold", table) for table in GOLD_TABLES}
        return counts, write_report(self.reader, self.settings.stack_home / "reports" / "lake.html")
