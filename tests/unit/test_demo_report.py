from __future__ import annotations

import pytest

from demo.report import DemoReport, percentiles
from source.order_final_audit import Audit
from source.order_final_audit import audit as audit_of

MANIFEST = {"complete": {
    order_id: {"customer_id": n, "payment_method_id": 2, "num_products": 1,
               "products": [{"product_id": 1000 + n, "quantity": 1}]}
    for n, order_id in enumerate(["o1", "o2", "o3"], start=1)}}


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
    assert lost.lines()[-1].startswith("result: FAILED") and "missing: 1" in lost.lines()[-1]


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


def test_the_cdc_share_of_the_latency_is_reported_when_measured():
    split = DemoReport({"complete": 3}, audit(), [100.0, 200.0, 3000.0], {}, cdc_latencies_ms=[40.0, 60.0, 2500.0])
    line = next(line for line in split.lines() if line.startswith("commit -> CDC record"))
    assert "p50 0.06 s" in line
    assert float(line.split("p99 ")[1].split(" s")[0]) >= 2.5
    assert not any(line.startswith("commit -> CDC record") for line in report(audit()).lines())


def emitted(**changes) -> list[dict]:
    """order_final as the demo reads it: each complete order of MANIFEST once, enriched."""
    return [{**order, "order_id": order_id, "customer": {"id": order["customer_id"]}, **changes.get(order_id, {})}
            for order_id, order in MANIFEST["complete"].items()]


def run_report(values: list[dict], whole_database: Audit | None = None, customers: int = 10) -> DemoReport:
    return DemoReport({"complete": 3}, audit_of(MANIFEST, values), [100.0], {}, whole_database,
                      snapshot=(customers, 1.0), unenriched=sum(value.get("customer") is None for value in values))


def test_a_clean_run_passes():
    clean = run_report(emitted(), whole_database=audit_of(MANIFEST, emitted()))
    assert clean.exact and clean.failures() == {}
    assert clean.lines()[-1].startswith("result: OK")


@pytest.mark.parametrize(("values", "named"), [
    (emitted(o2={"products": [{"product_id": 9999, "quantity": 1}]}), "wrong contents: 1"),
    (emitted() + emitted()[:1], "duplicates: 1"),
    (emitted() + [{**emitted()[0], "order_id": "o-stranger"}], "unexpected: 1"),
    (emitted()[1:], "missing: 1"),
    (emitted(o3={"customer": None}), "without customer: 1"),
], ids=["wrong product", "duplicate", "unexpected order", "missing order", "not enriched"])
def test_each_planted_fault_fails_the_run_and_the_last_line_names_it(values: list[dict], named: str):
    faulty = run_report(values)
    assert not faulty.exact
    assert faulty.lines()[-1] == f"result: FAILED ({named})"


def test_a_whole_database_audit_that_is_not_clean_fails_the_run():
    elsewhere = Audit(expected=9, received=8, duplicates={}, missing=["old"], unexpected=[], wrong_contents=[])
    faulty = run_report(emitted(), whole_database=elsewhere)
    assert not faulty.exact
    assert faulty.lines()[-1] == "result: FAILED (whole database missing: 1)"


def test_several_failed_checks_are_all_named():
    values = emitted(o1={"products": []}, o2={"products": []}) + emitted()[2:]
    assert run_report(values).lines()[-1] == "result: FAILED (duplicates: 1, wrong contents: 2)"


def test_orders_without_customer_pass_when_the_source_had_no_customers():
    assert run_report(emitted(o3={"customer": None}), customers=0).exact
