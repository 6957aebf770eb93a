"""agents.upkeep: a timer that fails is counted and runs again; it never stops the worker."""

from __future__ import annotations

import asyncio
import inspect

from aiokafka.errors import KafkaTimeoutError

from agents.upkeep import runs_again
from streams.app import app


def test_a_failing_timer_is_counted_and_runs_again_at_its_next_tick():
    ticks = []

    @runs_again
    async def asks_the_broker() -> None:
        ticks.append("tick")
        raise KafkaTimeoutError("Failed to get offsets by times in 90000 ms")

    before = app.completion.counters["upkeep_failures"]
    for _ in range(2):
        asyncio.run(asks_the_broker())

    assert ticks == ["tick", "tick"]
    assert app.completion.counters["upkeep_failures"] == before + 2
    assert asks_the_broker.__name__ == "asks_the_broker"  # Faust names the timer after it


def test_every_timer_of_the_worker_runs_again_after_a_failure():
    from agents import upkeep

    timers = [upkeep.reread_stuck_partitions, upkeep.flush_quiet_state, upkeep.drop_expired_state,
              upkeep.send_alert_checks, upkeep.tick_quiet_partitions]

    def guarded(timer) -> bool:  # Faust's own wrapper lies outside ours
        return getattr(inspect.unwrap(timer, stop=lambda layer: getattr(layer, "runs_again", False)),
                       "runs_again", False)

    assert [timer.__name__ for timer in timers if not guarded(timer)] == []
