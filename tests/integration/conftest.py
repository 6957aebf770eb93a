"""Integration tests talk to the real local stack; they fail (never skip) when it is down.

Tests marked `lake_long` (each a minute or more: a Spark cluster, a killed Gold job, a killed
archive job, a killed continuous lake, schema evolution, maintenance, spark-submit) do not
all fit in CI's budget. `LAKE_SUITE` says which run: `short` (the default) none, `long` all,
`turn` one of them, the day's turn (days since 1970-01-01 modulo their count, in node id
order; `LAKE_TURN=<n>` picks another), so a CI run every day runs each of them at least once
in as many days as there are long tests. The deselected ones are named in the summary: none is hidden. Run all of
them before changing the lake: `LAKE_SUITE=long make test`.

Tests marked `rotation` change the stack's passwords, which every other test of the session
holds: they run only when the marker expression asks for them (`-m rotation`), and last.
"""
from __future__ import annotations

import json
import os
import uuid
from datetime import date
from pathlib import Path

import pytest

from config import Settings
from stack import control
from stack.services import all_services
from tests.integration.scratch_stream import LAST_STATS


LAKE_SUITES = ("short", "turn", "long")
LONG_LAKE: list[str] = []  # deselected
WITHOUT_TLS: list[str] = []  # tls tests, deselected on a stack whose Kafka speaks no TLS
TURN: list[str] = []  # the long test run by LAKE_SUITE=turn
ROTATING: list[str] = []  # deselected: they change the stack's passwords


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lake_long: a lake test a minute or more long; runs with LAKE_SUITE=long, or turn")
    config.addinivalue_line("markers", "tls: needs Kafka over TLS (python -m stack up --tls)")
    config.addinivalue_line("markers", "rotation: rotates the stack's passwords; runs only with -m rotation, and last")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
    if not Settings().kafka_ssl_ca:
        without_tls = [item for item in items if item.get_closest_marker("tls")]
        config.hook.pytest_deselected(items=without_tls)
        items[:] = [item for item in items if item not in without_tls]
        WITHOUT_TLS.extend(item.nodeid for item in without_tls)
    rotating = [item for item in items if item.get_closest_marker("rotation")]
    items[:] = [item for item in items if item not in rotating]
    asked = config.option.markexpr or ""
    if "rotation" in asked and "not rotation" not in asked:
        items.extend(rotating)  # last: every other test holds the passwords they change
    else:
        config.hook.pytest_deselected(items=rotating)
        ROTATING.extend(item.nodeid for item in rotating)
    suite = os.environ.get("LAKE_SUITE", "short")
    if suite not in LAKE_SUITES:
        raise pytest.UsageError(f"LAKE_SUITE={suite!r}: use one of {', '.join(LAKE_SUITES)}")
    long_tests = sorted((item for item in items if item.get_closest_marker("lake_long")), key=lambda item: item.nodeid)
    if suite == "long" or not long_tests:
        return
    if suite == "turn":
        turn = todays_turn(len(long_tests), os.environ.get("LAKE_TURN"))
        TURN.append(f"{long_tests[turn].nodeid} (turn {turn} of {len(long_tests)})")
        long_tests.pop(turn)
    config.hook.pytest_deselected(items=long_tests)
    items[:] = [item for item in items if item not in long_tests]
    LONG_LAKE.extend(item.nodeid for item in long_tests)


def todays_turn(count: int, chosen: str | None = None, today: date | None = None) -> int:
    """Which of `count` long lake tests runs today: days since the epoch modulo `count`,
    unless `chosen` (LAKE_TURN) names one."""
    if chosen is not None:
        if not chosen.isdigit() or int(chosen) >= count:
            raise pytest.UsageError(f"LAKE_TURN={chosen!r}: use a number from 0 to {count - 1}")
        return int(chosen)
    return ((today or date.today()) - date(1970, 1, 1)).days % count


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A failed test that ran workers of its own (named after its `unique_name`) shows what
    their logs and their last /stats say: CI's stack, logs included, is gone once the run ends."""
    outcome = yield
    report = outcome.get_result()
    name = getattr(item, "funcargs", {}).get("unique_name")
    if report.failed and name:
        for logfile in sorted((Settings().stack_home / "logs").glob(f"*{name}*.log")):
            report.sections.append((f"worker log {logfile.name}", worker_log_excerpt(logfile)))
        for worker, stats in LAST_STATS.get(name, {}).items():
            report.sections.append((f"/stats of {worker} as it was stopped", json.dumps(stats, indent=1)))


def worker_log_excerpt(logfile: Path, warnings: int = 60, tail: int = 40) -> str:
    """The last `warnings` lines that warn or fail, then the last `tail` lines."""
    lines = logfile.read_text(errors="replace").splitlines()
    flagged = [line for line in lines if any(level in line for level in ("WARN", "ERROR", "CRITICAL", "Traceback"))]
    return "\n".join(["-- warnings and errors --", *flagged[-warnings:], "-- last lines --", *lines[-tail:]])


def pytest_terminal_summary(terminalreporter) -> None:
    for nodeid in TURN:
        terminalreporter.write_line(f"long lake test run as today's turn: {nodeid}")
    for nodeid in LONG_LAKE:
        terminalreporter.write_line(f"deselected (runs with LAKE_SUITE=long, or on its turn): {nodeid}", yellow=True)
    for nodeid in ROTATING:
        terminalreporter.write_line(f"deselected (rotates the stack's passwords; runs with -m rotation): {nodeid}",
                                    yellow=True)
    for nodeid in WITHOUT_TLS:
        terminalreporter.write_line(f"deselected (needs a stack started with --tls): {nodeid}", yellow=True)


@pytest.fixture(scope="session", autouse=True)
def running_stack(settings: Settings) -> None:
    down = [s.name for s in control.status(all_services(settings)) if not s.healthy]
    if down:
        pytest.fail(f"local stack not healthy ({', '.join(down)}): run `python -m stack up`, "
                    "or `make test`, which starts it", pytrace=False)


@pytest.fixture
def unique_name() -> str:
    """A name no earlier run used, so tests never see each other's leftovers."""
    return f"t{uuid.uuid4().hex[:12]}"
