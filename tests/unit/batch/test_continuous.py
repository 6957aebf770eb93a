"""When the continuous lake rebuilds its marts (no services)."""

import pytest

from batch.continuous import MARTS_BACKLOG_FACTOR, marts_due


@pytest.mark.parametrize(("age_s", "idle", "due"), [
    (59.0, True, False),                          # not yet a period old
    (60.0, True, True),                           # a period old and nothing to do
    (60.0, False, False),                         # a micro-batch running or records waiting: later
    (60.0 * MARTS_BACKLOG_FACTOR - 1, False, False),
    (60.0 * MARTS_BACKLOG_FACTOR, False, True),   # a long backlog does not starve them
    (float("inf"), True, True),                   # never built
])
def test_marts_wait_for_an_idle_lake_but_not_forever(age_s, idle, due):
    assert marts_due(age_s, idle, every_s=60.0) is due
