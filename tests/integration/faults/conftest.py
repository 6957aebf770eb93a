"""The fault-injection suite: every test here is marked `faults`.

`pytest -m faults` runs the suite alone. The CI size is short; `FAULT_SUITE=long` runs the
sizes the reliability issue names (3 workers, 20,000 orders, a fault every ~10 s). Each
run adds a row to the fault table printed at the end of the session and written to
`<STACK_HOME>/reports/faults.md`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config import Settings
from tests.integration.faults.injection import FaultRow, Scale

TABLE: list[FaultRow] = []
OPEN_BUGS: list[str] = []
UNREPLICATED: list[str] = []  # replicated tests deselected on a stack of fewer than 3 brokers


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: fault injection on the real stack (FAULT_SUITE=long for the long run)")
    config.addinivalue_line("markers", "open_bug(why): fails some runs on a known, open bug; runs only with FAULT_SUITE=long")
    config.addinivalue_line("markers", "replicated: needs three brokers (KAFKA_BROKERS=3, python -m stack up --brokers 3)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the suite; leave tests that expose an open bug out of the CI run (deselected and
    named in the summary, so CI stays green without hiding them)."""
    for item in items:
        if "/faults/" in str(item.path):
            item.add_marker(pytest.mark.faults)
    if Settings().kafka_brokers < 3:
        unreplicated = [item for item in items if item.get_closest_marker("replicated")]
        config.hook.pytest_deselected(items=unreplicated)
        items[:] = [item for item in items if item not in unreplicated]
        UNREPLICATED.extend(item.nodeid for item in unreplicated)
    if os.environ.get("FAULT_SUITE", "short") == "long":
        return
    open_bugs = [item for item in items if item.get_closest_marker("open_bug")]
    if open_bugs:
        config.hook.pytest_deselected(items=open_bugs)
        items[:] = [item for item in items if item not in open_bugs]
        OPEN_BUGS.extend(f"{item.name}: {item.get_closest_marker('open_bug').args[0]}" for item in open_bugs)


@pytest.fixture(scope="session")
def scale() -> Scale:
    size = os.environ.get("FAULT_SUITE", "short")
    if size not in ("short", "long"):
        raise pytest.UsageError(f"FAULT_SUITE={size!r}: use short (the default) or long")
    return Scale.long() if size == "long" else Scale.short()


@pytest.fixture(scope="session")
def fault_table(settings: Settings) -> list[FaultRow]:
    yield TABLE
    if TABLE:
        report = Path(settings.stack_home) / "reports" / "faults.md"
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(FaultRow.markdown(TABLE))


def pytest_terminal_summary(terminalreporter) -> None:
    for nodeid in UNREPLICATED:
        terminalreporter.write_line(f"deselected (needs KAFKA_BROKERS=3 and a stack of three brokers): {nodeid}",
                                    yellow=True)
    for line in OPEN_BUGS:
        terminalreporter.write_line(f"deselected (open bug, runs with FAULT_SUITE=long): {line}", yellow=True)
    if TABLE:
        terminalreporter.section("fault table")
        terminalreporter.write_line(FaultRow.markdown(TABLE))
