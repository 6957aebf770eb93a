"""The demo's report: what went in, what came out, how fast, and whether it was exact."""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field

from source.order_final_audit import Audit


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99 (the value itself when there is only one)."""
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


@dataclass(frozen=True)
class DemoReport:
    manifest_counts: dict[str, int]
    audit: Audit
    latencies_ms: list[float]
    gold_counts: dict[str, int]
    whole_database: Audit | None = None  # order_final against every order in the source now
    snapshot: tuple[int, float] | None = None  # customers in the source, seconds waited for their CDC snapshot
    unenriched: int = 0  # order_final records without their customer
    alerts: Mapping[str, int] = field(default_factory=dict)  # this run's order_alerts by kind
    cdc_latencies_ms: list[float] = field(default_factory=list)  # commit -> the CDC record's append

    @property
    def exact(self) -> bool:
        """Every complete order in order_final once, with its contents and its customer, nothing
        else there, and the whole database's audit clean too."""
        return not self.failures()

    def failures(self) -> dict[str, int]:
        """Each failed check and how many orders fail it, in the order the report lists them."""
        failed = dict(self.audit.faults())
        if self.whole_database is not None:
            failed |= {f"whole database {check}": count for check, count in self.whole_database.faults().items()}
        if self.unenriched and self.customers_existed:
            failed["without customer"] = self.unenriched
        return failed

    @property
    def customers_existed(self) -> bool:
        """Whether the orders' customers were in the source (unknown without the snapshot: assumed)."""
        return self.snapshot is None or self.snapshot[0] > 0

    def verdict(self) -> str:
        failed = self.failures()
        if not failed:
            return "result: OK, every complete order exactly once, as written, with its customer"
        return "result: FAILED (" + ", ".join(f"{check}: {count:,}" for check, count in failed.items()) + ")"

    def lines(self) -> list[str]:
        counts, audit = self.manifest_counts, self.audit
        p50, p99 = percentiles(self.latencies_ms)
        cdc_p50, cdc_p99 = percentiles(self.cdc_latencies_ms)
        written = sum(counts.get(kind, 0) for kind in ("complete", "incomplete", "cancelled"))
        return [
            f"orders written      {written:>10,}  (complete {counts.get('complete', 0):,}, "
            f"incomplete {counts.get('incomplete', 0):,}, cancelled {counts.get('cancelled', 0):,})",
            f"complete orders     {audit.expected:>10,}",
            f"in order_final      {audit.received - sum(audit.duplicates.values()):>10,}",
            f"duplicates          {sum(audit.duplicates.values()):>10,}",
            f"missing             {len(audit.missing):>10,}",
            *([f"CDC snapshot        {self.snapshot[0]:>10,} customers captured in {self.snapshot[1]:.0f} s, "
               "before the orders were written"] if self.snapshot else []),
            f"commit -> order_final latency p50 {p50 / 1000:.2f} s, p99 {p99 / 1000:.2f} s",
            *([f"commit -> CDC record   latency p50 {cdc_p50 / 1000:.2f} s, p99 {cdc_p99 / 1000:.2f} s "
               "(Debezium and Connect: the part before the workers)"] if self.cdc_latencies_ms else []),
            f"without customer    {self.unenriched:>10,}  (order_final records without their customer)",
            "alerts              " + ", ".join(f"{kind} {self.alerts.get(kind, 0):,}" for kind in
                                               ("bulk", "cancelled_after_details", "stalled"))
            + "  (stalled: STALL_AFTER_S after an order's last change, mostly after this report)",
            "gold: " + ", ".join(f"{table} {count:,}" for table, count in self.gold_counts.items()),
            *([f"whole database      {self.whole_database.summary()} (python -m source audit)"]
              if self.whole_database else []),
            self.verdict(),
        ]
