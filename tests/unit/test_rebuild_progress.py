"""When a rebuild has caught up, from its worker's /stats (streams.rebuild, pure)."""

from __future__ import annotations

from streams.rebuild import Progress, caught_up, read_progress


def stats(events_in: int, completed: int, lag_total: int | None = 0, unsettled: int = 0, held: int = 0) -> dict:
    return {"counts": {"events_in": events_in, "completed": completed, "unsettled_now": unsettled},
            "state_cache": {"held_events": held}, "lag_total": lag_total}


def test_caught_up_once_read_committed_settled_and_quiet():
    progress = read_progress(stats(100, 10), Progress(), now=1.0)
    assert not caught_up(progress, now=3.0, quiet_s=5)  # not quiet long enough
    later = read_progress(stats(100, 10), progress, now=7.0)
    assert later.quiet_since == 1.0
    assert caught_up(later, now=7.0, quiet_s=5)


def test_new_records_or_emissions_restart_the_quiet_clock():
    progress = read_progress(stats(100, 10), Progress(), now=1.0)
    moved = read_progress(stats(120, 10), progress, now=9.0)
    assert moved.quiet_since == 9.0 and not caught_up(moved, now=10.0, quiet_s=5)


def test_lag_waiting_orders_or_held_events_are_not_caught_up():
    for busy in (stats(100, 10, lag_total=3), stats(100, 10, lag_total=None), stats(100, 10, unsettled=2),
                 stats(100, 10, held=7), stats(0, 0)):
        progress = read_progress(busy, Progress(quiet_since=0.5, events_in=busy["counts"]["events_in"],
                                                completed=busy["counts"]["completed"]), now=100.0)
        assert not caught_up(progress, now=100.0, quiet_s=5), busy
