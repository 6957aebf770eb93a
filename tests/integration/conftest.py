"""Integration tests talk to the real local stack; they fail (never skip) when it is down."""

from __future__ import annotations

import uuid

import pytest

from config import Settings
from stack import control
from stack.services import all_services


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


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
