"""The worker's garbage collector settings and what /stats reports of them (streams.runtime.order_pipe_app)."""

import gc

import pytest

from streams.runtime.order_pipe_app import COLLECTOR_THRESHOLDS, collector_stats, freeze_start_up_heap, tune_collector


@pytest.fixture
def restored_collector():
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_start_up_heap_frozen_is_counted_once_and_reported_without_walking_it_again(restored_collector,
                                                                                         monkeypatch):
    tune_collector()
    kept = [[n] for n in range(20_000)]  # tracked objects alive at start, as a worker's are
    frozen = freeze_start_up_heap()
    assert frozen >= len(kept)

    def walk(*_):  # /stats is polled every 50 ms by the benchmarks; a walk costs ms per 100k objects
        raise AssertionError("gc.get_freeze_count walks every frozen object")

    monkeypatch.setattr(gc, "get_freeze_count", walk)
    reported = collector_stats(frozen)
    assert reported["frozen"] == frozen
    assert reported["thresholds"] == list(COLLECTOR_THRESHOLDS)
    assert reported["full_passes"] == gc.get_stats()[2]["collections"]
