"""The dashboard's figures without workers: rates, members, the payload, lag, the page itself."""

from __future__ import annotations

import asyncio
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest
from faust.types import TP

from streams.runtime.metrics import LagGauge, lag_by_topic
from web.dashboard_figures import RateMeter, dashboard_payload, member_urls

ORDERS, DETAILS = "mysql.project_db.orders", "mysql.project_db.order_details"


def stats(worker: str, events_in: int, completed: int = 0, lag_total: int | None = 0, **counts) -> dict:
    return {"worker": worker, "counts": {"events_in": events_in, "completed": completed, **counts},
            "lag": {ORDERS: {"0": lag_total}} if lag_total is not None else {}, "lag_total": lag_total}


def test_a_rate_is_unknown_until_a_second_sample_then_counts_per_second():
    meter = RateMeter(window_s=3)

    first = meter.rate("w", at=10.0, value=100)
    second = meter.rate("w", at=12.0, value=300)

    assert first is None
    assert second == pytest.approx(100.0)


def test_a_rate_spans_the_last_window_of_samples_not_the_whole_history():
    meter = RateMeter(window_s=3)
    for second, value in [(0, 0), (1, 1000), (2, 1010), (3, 1020), (4, 1030), (5, 1040)]:
        rate = meter.rate("w", at=float(second), value=value)

    # the burst in the first second has left the window: 10 events/s since t=2
    assert rate == pytest.approx(10.0)


def test_a_counter_that_goes_down_restarts_its_rate():
    meter = RateMeter()
    meter.rate("w", at=0.0, value=5000)

    after_restart = meter.rate("w", at=1.0, value=20)
    next_sample = meter.rate("w", at=2.0, value=70)

    assert after_restart is None
    assert next_sample == pytest.approx(50.0)


def test_members_are_this_worker_and_every_url_the_assignor_knows_once_each():
    tables = {"http://127.0.0.1:6066": {"changelog": [0, 1]}, "http://127.0.0.1:6067": {"changelog": [2, 3]}}
    external = {"http://127.0.0.1:6067/": {ORDERS: [2, 3]}, "http://127.0.0.1:6068": {}}

    urls = member_urls("http://127.0.0.1:6066", tables, external)

    assert urls == ["http://127.0.0.1:6066", "http://127.0.0.1:6067", "http://127.0.0.1:6068"]


def test_members_before_any_assignment_are_this_worker_alone():
    assert member_urls("http://127.0.0.1:6066", {}, {}) == ["http://127.0.0.1:6066"]


def test_the_payload_sums_reachable_workers_and_marks_the_silent_one_unreachable():
    meter = RateMeter()
    a, b, c = "http://127.0.0.1:6066", "http://127.0.0.1:6067", "http://127.0.0.1:6068"
    dashboard_payload("app", {a: stats("h:1", 100, 10), b: stats("h:2", 200, 20)}, meter, at=0.0, now=1e9)

    payload = dashboard_payload("app", {
        a: stats("h:1", 300, 30, lag_total=4, duplicates_prevented=2, dead_lettered=1, alerts_bulk=3,
                 unenriched_customer=1),
        b: stats("h:2", 400, 40, lag_total=None),
        c: {"error": "ClientConnectorError: connection refused"},
    }, meter, at=2.0, now=1e9 + 2)

    rows = {row["url"]: row for row in payload["workers"]}
    assert rows[a] | {"lag_by_partition": None} == {
        "url": a, "worker": "h:1", "reachable": True, "events_in": 300, "completed": 30,
        "duplicates_prevented": 2, "dead_lettered": 1, "events_per_s": 100.0, "completed_per_s": 10.0,
        "lag": 4, "lag_by_partition": None, "alerts_bulk": 3, "alerts_stalled": 0,
        "alerts_cancelled_after_details": 0, "unenriched_customer": 1}
    assert rows[c] == {"url": c, "reachable": False, "error": "ClientConnectorError: connection refused"}
    assert payload["totals"] == {
        "workers": 3, "reachable": 2, "events_in": 700, "completed": 70, "duplicates_prevented": 2,
        "dead_lettered": 1, "events_per_s": 200.0, "completed_per_s": 20.0, "lag": 4, "alerts_bulk": 3,
        "alerts_stalled": 0, "alerts_cancelled_after_details": 0, "unenriched_customer": 1}
    assert payload["at"] == 1e9 + 2 and payload["app"] == "app"


def test_a_restarted_worker_starts_a_fresh_rate_under_its_new_id():
    meter = RateMeter()
    url = "http://127.0.0.1:6066"
    dashboard_payload("app", {url: stats("h:1", 5000)}, meter, at=0.0, now=0.0)

    payload = dashboard_payload("app", {url: stats("h:99", 7000)}, meter, at=1.0, now=1.0)

    assert payload["workers"][0]["events_per_s"] is None
    assert payload["totals"]["events_per_s"] is None


def test_lag_is_log_end_minus_position_per_topic_and_partition():
    ends = {TP(ORDERS, 0): 120, TP(ORDERS, 2): 50, TP(DETAILS, 0): 400, TP(DETAILS, 2): 10}
    positions = {TP(ORDERS, 0): 100, TP(ORDERS, 2): 50, TP(DETAILS, 0): 390, TP(DETAILS, 2): None}

    lag = lag_by_topic(ends, positions)

    # partition 2 of the details has no position yet: left out, not guessed
    assert lag == {ORDERS: {"0": 20, "2": 0}, DETAILS: {"0": 10}}


def test_a_position_read_after_the_log_end_moved_counts_as_no_lag():
    assert lag_by_topic({TP(ORDERS, 1): 10}, {TP(ORDERS, 1): 12}) == {ORDERS: {"1": 0}}


def test_lag_of_a_consumer_not_started_is_unknown_with_the_reason_not_an_error():
    from streams.app import app

    lag = asyncio.run(LagGauge([ORDERS]).read(app.consumer))

    assert lag["lag"] == {} and lag["lag_total"] is None
    assert "ConsumerNotStarted" in lag["lag_error"]


def test_the_page_ships_as_package_data_of_tables():
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())

    assert "dashboard.html" in pyproject["tool"]["setuptools"]["package-data"]["web"]
    assert resources.files("web").joinpath("dashboard.html").is_file()


def test_the_page_loads_nothing_from_the_network():
    page = resources.files("web").joinpath("dashboard.html").read_text(encoding="utf-8")

    assert "/dashboard/data" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page, re.I)
    assert not re.search(r"""(fetch\(|import\s|@import)\s*["'(]?\s*(https?:)?//""", page, re.I)
