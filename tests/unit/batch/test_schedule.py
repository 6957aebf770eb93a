from __future__ import annotations

import logging
import threading

import pytest
import typer

from batch.schedule import every, period_seconds


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("0.5m", 30)])
def test_periods_read_as_seconds(text, seconds):
    assert period_seconds(text) == seconds


@pytest.mark.parametrize("text", ["15", "15x", "m", "0s", "-1m"])
def test_a_period_without_a_unit_is_refused_with_the_fix(text):
    with pytest.raises(typer.BadParameter, match="s, m or h"):
        period_seconds(text)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_failed_run_is_logged_and_the_next_comes_on_schedule(caplog):
    clock = Clock()
    calls = []

    def run_once(number: int) -> str:
        calls.append(number)
        clock.now += 10  # each run takes 10 s
        if number == 2:
            raise RuntimeError("MinIO unreachable")
        return f"written {number}"

    batch_log = logging.getLogger("batch")  # it may not propagate (batch.runs.show_progress)
    batch_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="batch"):
            failed = every(60, run_once, runs=3, clock=lambda: clock.now, sleep=clock.sleep)
    finally:
        batch_log.removeHandler(caplog.handler)

    assert (calls, failed, clock.slept) == ([1, 2, 3], 1, [50, 50])
    lines = [record.getMessage() for record in caplog.records]
    assert "run 1 ok in 10.0 s: written 1" in lines
    assert "run 2 failed after 10.0 s: MinIO unreachable; the next run comes on schedule" in lines
    assert "run 3 ok in 10.0 s: written 3" in lines


def test_a_run_longer_than_the_period_is_followed_at_once():
    clock = Clock()

    def slow(number: int) -> str:
        clock.now += 90
        return "done"

    every(60, slow, runs=2, clock=lambda: clock.now, sleep=clock.sleep)

    assert clock.slept == [0.0]


def test_a_stop_during_a_run_ends_the_loop_after_it_without_promising_another(caplog):
    clock, stopping = Clock(), threading.Event()

    def cancelled(number: int) -> str:
        clock.now += 10
        stopping.set()  # what Ctrl-C does while a run is under way (it cancels the run's jobs)
        raise RuntimeError("Job cancelled")

    batch_log = logging.getLogger("batch")
    batch_log.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="batch"):
            failed = every(60, cancelled, stopping=stopping, clock=lambda: clock.now, sleep=clock.sleep)
    finally:
        batch_log.removeHandler(caplog.handler)

    assert (failed, clock.slept) == (1, [])
    assert {record.getMessage() for record in caplog.records} == {"run 1 failed after 10.0 s: Job cancelled"}


def test_a_stop_during_the_pause_ends_the_loop_before_the_next_run():
    stopping, calls = threading.Event(), []

    every(60, lambda number: calls.append(number) or "done", stopping=stopping,
          sleep=lambda seconds: stopping.set())

    assert calls == [1]
