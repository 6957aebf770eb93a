"""config/alerts.yml on the real Prometheus (Debian's package, installed by the stack):
promtool's unit tests of every rule, and a live run where a stopped worker makes the
target-down and lag alerts fire, `python -m stack doctor` show them, and both clear once
the worker runs again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from config import Settings
from config.settings import REPO_ROOT
from stack import control, doctor
from stack.install import Toolchain, which
from stack.services import BrokerMetrics, Prometheus, StackLayout
from tests.integration.scratch_stream import scratch_stream, write_orders
from tests.integration.waiting import wait_for

RULES, RULE_TESTS = REPO_ROOT / "config" / "alerts.yml", REPO_ROOT / "tests" / "prometheus" / "alerts_test.yml"
LIVE = {"OrderpipeWorkerDown", "OrderpipeConsumerLagGrowing"}
TIME_SCALE = 20  # the live run's rules: every duration a twentieth (1m -> 3s), expressions unchanged


@pytest.fixture(scope="module")
def promtool(settings: Settings) -> str:
    Toolchain(settings.stack_cache).install(("prometheus",))
    return which("promtool")


def alert_names(rules: dict) -> set[str]:
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"] if "alert" in rule}


def scaled(rules: str, factor: int) -> str:
    """The rules with every duration (`for:` and range selectors) divided by `factor`."""
    def shorter(match: re.Match) -> str:
        seconds = int(match["count"]) * {"s": 1, "m": 60, "h": 3600}[match["unit"]]
        return f"{match['before']}{max(1, seconds // factor)}s"
    return re.sub(r"(?P<before>\[|for: )(?P<count>\d+)(?P<unit>[smh])\b", shorter, rules)


def test_scaling_shortens_every_duration_and_leaves_the_rest():
    rules = "expr: deriv(x[2m]) > 0 and y[10m] > 5m\nfor: 1m\n"

    assert scaled(rules, 20) == "expr: deriv(x[6s]) > 0 and y[30s] > 5m\nfor: 3s\n"


def test_every_alert_rule_passes_its_promtool_cases(promtool: str):
    result = subprocess.run([promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_promtool_case():
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    tested = {check["alertname"] for case in cases for check in case["alert_rule_test"]}

    assert tested == alert_names(yaml.safe_load(RULES.read_text()))


def firing(settings: Settings) -> set[str]:
    alerts = httpx.get(f"{settings.prometheus_url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {alert["labels"]["alertname"] for alert in alerts if alert["state"] == "firing"}


def targets_up(settings: Settings) -> set[str]:
    targets = httpx.get(f"{settings.prometheus_url}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {target["labels"]["job"] for target in targets if target["health"] == "up"}


def test_a_stopped_worker_fires_the_down_and_lag_alerts_and_they_clear_after(
        settings: Settings, promtool: str, unique_name: str, tmp_path: Path):
    rules = tmp_path / "alerts.yml"
    rules.write_text(scaled(RULES.read_text(), TIME_SCALE))
    with scratch_stream(settings, unique_name, workers=1, web_port=16366) as (scratch, workers):
        monitoring = scratch.model_copy(update={
            "prometheus_url": "http://127.0.0.1:19090", "broker_metrics_port": 19308,
            "metrics_targets": f"127.0.0.1:{workers[0].port}", "prometheus_scrape_interval_s": 1.0,
            "prometheus_rules": rules, "stack_home": tmp_path})
        services = [kind(monitoring, StackLayout(tmp_path), Toolchain(settings.stack_cache))
                    for kind in (BrokerMetrics, Prometheus)]
        control.up(services, timeout_s=60)
        pid = workers[0].pid()
        writer = threading.Thread(target=write_orders, args=(scratch, 4000, 100), daemon=True)
        try:
            assert wait_for(lambda: targets_up(monitoring) == {"orderpipe-workers", "orderpipe-broker"}, 30)
            writer.start()
            os.kill(pid, signal.SIGSTOP)  # hung, not gone: its partitions stay its own until the session ends

            assert wait_for(lambda: LIVE <= firing(monitoring), 60), f"firing: {firing(monitoring)}"
            shown = {check.name for check in doctor.prometheus_alerts(monitoring) if not check.ok}
            assert {f"alert {name}" for name in LIVE} <= shown

            os.kill(pid, signal.SIGCONT)
            writer.join(timeout=120)
            assert wait_for(lambda: not LIVE & firing(monitoring), 90), f"still firing: {firing(monitoring)}"
            assert [check.ok for check in doctor.prometheus_alerts(monitoring)] == [True]
        finally:
            os.kill(pid, signal.SIGCONT)
            control.down(services)
