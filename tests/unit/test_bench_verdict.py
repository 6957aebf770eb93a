"""A benchmark fails when the product's output fails its audit; peers' audits are only figures."""

from __future__ import annotations

from bench.peers.__main__ import ours_audits
from bench.peers.contenders import Contender
from bench.peers.measure import Latency, Throughput
from bench.verdict import audit_verdict
from source.order_final_audit import Audit

EXACT = Audit(3, 3, {}, [], [], [])
DOUBLED = Audit(3, 4, {"o1": 1}, [], [], [])
WRONG = Audit(3, 3, {}, [], [], ["o2", "o3"])


def test_exact_runs_pass():
    assert audit_verdict([("round 1 ours", EXACT), ("latency", EXACT)]) == (0, "audit: every run exact (2 run(s))")


def test_any_run_with_a_fault_fails_and_is_named_with_its_fault():
    code, line = audit_verdict([("round 1 ours", EXACT), ("round 2 ours", DOUBLED), ("latency", WRONG)])
    assert code == 1
    assert line == "audit FAILED in 2 of 3 run(s): round 2 ours (duplicates 1); latency (wrong contents 2)"


def test_nothing_audited_is_no_pass():
    assert audit_verdict([])[0] == 1


def test_peers_verdict_rests_on_ours_alone():
    speeds = {Contender("ours", 1): [Throughput(1.0, 1.0, EXACT), Throughput(1.0, 1.0, EXACT)],
              Contender("legacy", 2): [Throughput(1.0, 1.0, WRONG)]}
    lags = {Contender("ours", 2): Latency(1.0, 2.0, EXACT), Contender("quix", 2): Latency(1.0, 2.0, DOUBLED)}
    assert audit_verdict(ours_audits(speeds, lags))[0] == 0

    lags[Contender("ours", 2)] = Latency(1.0, 2.0, DOUBLED)
    code, line = audit_verdict(ours_audits(speeds, lags))
    assert code == 1 and line.endswith("latency ours x2 (duplicates 1)")


def run_bench_stream(monkeypatch, latency_audit: Audit):
    """bench.stream's command with the stack's parts stubbed: only its verdict is real."""
    from contextlib import nullcontext

    import typer
    from typer.testing import CliRunner

    import bench.stream as stream

    monkeypatch.setattr(stream, "config_echo", lambda: "config: stubbed")
    monkeypatch.setattr(stream, "isolated", lambda suffix, customers: nullcontext(None))
    monkeypatch.setattr(stream, "prefill", lambda *args: stream.Prefilled({"complete": {}}, [], 10))
    monkeypatch.setattr(stream, "checkout", lambda revision: nullcontext(None))
    monkeypatch.setattr(stream, "throughput_rounds", lambda *args: [("round 1 ours, 1 worker(s)", EXACT)])
    monkeypatch.setattr(stream, "latency", lambda *args: {
        "e2e": (10.0, 20.0), "cdc": (5.0, 10.0), "audit": latency_audit, "rss": [100.0], "orders": 3,
        "rate": 1.0, "settled_s": 1.0, "written_rate": 1.0})
    app = typer.Typer(add_completion=False)
    app.command()(stream.main)
    return CliRunner().invoke(app, [])


def test_bench_stream_exits_1_when_the_products_output_fails_its_audit(monkeypatch):
    failed = run_bench_stream(monkeypatch, DOUBLED)
    assert failed.exit_code == 1, failed.output
    assert "audit: expected 3, received 4, duplicates 1" in failed.output  # beside the latency figure
    assert failed.output.splitlines()[-1] == "audit FAILED in 1 of 2 run(s): latency, ours x2 (duplicates 1)"

    assert run_bench_stream(monkeypatch, EXACT).exit_code == 0
