"""`python -m batch --every 15m`: runs on a schedule, one log line each; a failed run is
logged with its cause and the next one still comes on time, until `stopping` is set."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import typer

from batch.runs import log

PERIOD = re.compile(r"(\d+(?:\.\d+)?)([smh])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def period_seconds(text: str) -> float:
    """`30s`, `15m`, `1h` -> seconds."""
    match = PERIOD.fullmatch(text.strip())
    if match is None or float(match[1]) <= 0:
        raise typer.BadParameter(f"{text!r}: give a positive number and a unit, s, m or h (30s, 15m, 1h)")
    return float(match[1]) * UNIT_SECONDS[match[2]]


def every(period_s: float, run_once: Callable[[int], str], *, runs: int | None = None,
          stopping: threading.Event | None = None, clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], object] = time.sleep) -> int:
    """Call `run_once(n)` every `period_s`, start to start (a run longer than the period is
    followed at once by the next), `runs` times or until `stopping` is set; returns the
    number that failed. `run_once` returns a summary for the log line; a run that raises is
    logged and skipped. Pass `sleep=stopping.wait` so a stop does not wait out the pause."""
    stopping = stopping or threading.Event()
    failed = 0
    number = 0
    while (runs is None or number < runs) and not stopping.is_set():
        number += 1
        started = clock()
        try:
            summary = run_once(number)
        except Exception as error:  # noqa: BLE001 - a scheduled loop outlives a bad run
            failed += 1
            log.error("run %d failed after %.1f s: %s%s", number, clock() - started, error,
                      "" if stopping.is_set() else "; the next run comes on schedule")
        else:
            log.info("run %d ok in %.1f s: %s", number, clock() - started, summary)
        if (runs is not None and number >= runs) or stopping.is_set():
            break
        wait = max(0.0, started + period_s - clock())
        log.info("next run in %.0f s", wait)
        sleep(wait)
    return failed
