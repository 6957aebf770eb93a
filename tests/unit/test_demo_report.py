from __future__ import annotations

from demo.report import DemoReport, percentiles
from source.audit import Audit


def audit(**changes) -> Audit:
    return Audit(**{"expected": 3, "received": 3, "duplicates": {}, "missing": [], "unexpected": [],
                    "wrong_contents": [], **changes})


def report(result: Audit) -> DemoReport:
    return DemoReport({"complete": 3, "incomplete": 1, "cancelled": 1, "writes": 40, "detail_rows": 9}, result, [100.0, 200.0, 3000.0],
                      {"fact_orders": 4})


def test_an_exact_run_reports_ok_with_its_figures():
    lines = report(audit()).lines()
    assert report(audit()).exact
    assert lines[0].split()[:3] == ["orders", "written", "5"] and "complete 3" in lines[0]
    assert lines[-1].startswith("result: OK")
    assert "fact_orders 4" in lines[-2]


def test_a_duplicate_or_a_missing_order_fails_the_run():
    doubled = report(audit(received=4, duplicates={"o1": 1}))
    lost = report(audit(received=2, missing=["o3"]))
    assert not doubled.exact and not lost.exact
    assert "duplicates                   1" in "\n".join(doubled.lines())
    assert lost.lines()[-1].startswith("result: FAILED") and "missing 1" in lost.lines()[-1]


def test_percentiles_of_few_values():
    assert percentiles([5.0]) == (5.0, 5.0)
    p50, p99 = percentiles([float(n) for n in range(1, 101)])
    assert p50 == 50.5 and 99 <= p99 <= 100


def test_the_whole_database_audit_is_reported_beside_this_runs():
    base = {"complete": 3, "incomplete": 1, "cancelled": 1}
    with_source = DemoReport(base, audit(), [100.0], {}, audit(expected=9, received=8, missing=["old"]))
    line = next(line for line in with_source.lines() if line.startswith("whole database"))
    assert "expected 9, received 8" in line and "missing 1" in line
    assert not any(line.startswith("whole database") for line in report(audit()).lines())


def test_the_snapshot_wait_and_the_orders_without_customer_are_reported():
    lines = "\n".join(DemoReport({"complete": 3}, audit(), [100.0], {}, snapshot=(1_000_000, 47.2),
                                 unenriched=2, alerts={"bulk": 41, "stalled": 1}).lines())
    assert "1,000,000 customers captured in 47 s, before the orders were written" in lines
    assert "without customer             2" in lines
    assert "alerts              bulk 41, cancelled_after_details 0, stalled 1" in lines
