"""The Prometheus text of one scrape (streams.runtime.metrics.Figures), read back by the client's parser."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams.runtime.metrics import Figures


def scrape(counts, cache, lag) -> dict:
    registry = CollectorRegistry()
    registry.register(Figures(counts, cache, lag))
    families = text_string_to_metric_families(generate_latest(registry).decode())
    return {family.name: family for family in families}


def test_counters_gauges_and_lag_per_partition():
    found = scrape({"events_in": 120, "completed": 30, "unsettled_now": 4}, {"dirty": 7},
                   {"mysql.db.orders": {"0": 5, "1": 0}, "mysql.db.order_details": {"0": 2}})

    assert found["orderpipe_events_in"].type == "counter"
    assert found["orderpipe_events_in"].samples[0].value == 120
    assert found["orderpipe_completed"].samples[0].value == 30
    assert found["orderpipe_unsettled_now"].type == "gauge" and found["orderpipe_unsettled_now"].samples[0].value == 4
    assert found["orderpipe_state_cache_dirty"].samples[0].value == 7
    lag = {(s.labels["topic"], s.labels["partition"]): s.value for s in found["orderpipe_consumer_lag_records"].samples}
    assert lag == {("mysql.db.orders", "0"): 5, ("mysql.db.orders", "1"): 0, ("mysql.db.order_details", "0"): 2}


def test_an_idle_worker_still_answers():
    found = scrape({}, {}, {})
    assert list(found) == ["orderpipe_consumer_lag_records"] and found["orderpipe_consumer_lag_records"].samples == []
