"""Integration tests talk to the real local stack; they fail (never skip) when it is down.

Tests marked `lake_long` (each over a minute: a Spark cluster, a killed Gold job, schema
evolution, maintenance, spark-submit) run with `LAKE_SUITE=long`; otherwise they are
deselected and named in the summary, so `make test` stays within CI's time while none
of them is hidden. Run them before changing the lake: `LAKE_SUITE=long make test`.
"""

from __future__ import annotations

import os
import uuid

import pytest

from config import Settings
from stack import control
from stack.services import all_services


LONG_LAKE: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "lake_long: a lake test over a minute long; runs with LAKE_SUITE=long")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)
    suite = os.environ.get("LAKE_SUITE", "short")
    if suite not in ("short", "long"):
        raise pytest.UsageError(f"LAKE_SUITE={suite!r}: use short (the default) or long")
    if suite == "long":
        return
    long_tests = [item for item in items if item.get_closest_marker("lake_long")]
    if long_tests:
        config.hook.pytest_deselected(items=long_tests)
        items[:] = [item for item in items if item not in long_tests]
        LONG_LAKE.extend(item.nodeid for item in long_tests)


def pytest_terminal_summary(terminalreporter) -> None:
    for nodeid in LONG_LAKE:
        terminalreporter.write_line(f"deselected (runs with LAKE_SUITE=long): {nodeid}", yellow=True)


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
