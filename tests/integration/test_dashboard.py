"""The live dashboard in a real browser (headless Chromium) while orders stream through two workers.

Chromium runs with `--virtual-time-budget`: the page's timers run on virtual time, which
stands still while a fetch is pending, so the page polls /dashboard/data for real a few
times in about a second, then the DOM is dumped and a screenshot taken.
"""

from __future__ import annotations

import struct
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.runtime.order_pipe_app import COLLECTOR_THRESHOLDS
from streams.runtime.rocksdb_budget import BLOCK_CACHE_BYTES, MEMTABLE_BYTES
from tests.integration.browser import chromium_render
from tests.integration.scratch_stream import scratch_stream, write_orders

RATE = 75  # orders/s, written until the page has been rendered: it loads during a run
CHUNK = 25  # orders per write: how often the writer looks whether to stop
WEB_PORT = 16166  # away from the other stream tests' 16066
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIRTUAL_TIME_MS = 5000  # ~5 polls of the page's 1 s period
VOID_TAGS = {"meta", "link", "br", "hr", "img", "input", "area", "base", "col", "source", "wbr"}


class DashboardDom(HTMLParser):
    """What the page shows: text by element id, the chart's polyline points, worker rows by URL."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self.points: dict[str, list[str]] = {}
        self.rows: dict[str, dict[str, str]] = {}
        self._open: list[tuple[str, dict | None, str | None]] = []  # tag, where its text goes, key
        self._row: dict[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "polyline":
            self.points[attributes.get("id", "")] = (attributes.get("points") or "").split()
        if tag == "tr":
            self._row = self.rows.setdefault(attributes["data-url"], {}) if "data-url" in attributes else None
        if tag in VOID_TAGS:
            return
        if tag == "td" and self._row is not None and "data-field" in attributes:
            self._open.append((tag, self._row, attributes["data-field"]))
        elif "id" in attributes:
            self._open.append((tag, self.text, attributes["id"]))
        else:
            self._open.append((tag, None, None))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, where, key in self._open:
            if where is not None:
                where[key] = where.get(key, "") + data


def number(shown: str) -> float:
    return float(shown.replace(",", ""))


def wait_until(condition, workers, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out; workers: {[w.stats() for w in workers]}"
        time.sleep(0.2)


def all_processing(workers) -> bool:
    return all((w.stats() or {}).get("counts", {}).get("events_in", 0) > 0 for w in workers)


def write_until(settings, stop: threading.Event) -> None:
    while not stop.is_set():
        write_orders(settings, CHUNK, RATE)


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=2, web_port=WEB_PORT) as running:
        yield running


def test_the_dashboard_shows_each_worker_s_figures_and_a_chart_during_a_run(stream, tmp_path):
    settings, workers = stream
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    screenshot.unlink(missing_ok=True)
    rendered = threading.Event()
    writer = threading.Thread(target=write_until, args=(settings, rendered), daemon=True)
    writer.start()
    try:
        wait_until(lambda: all_processing(workers), workers)
        # Virtual time squeezes the page's polls into about a second of real time; a sample
        # taken now gives its rates a longer real baseline, as a page open for a while has.
        httpx.get(f"{workers[0].url}/dashboard/data", timeout=5).raise_for_status()
        time.sleep(1.5)

        before = [w.stats() for w in workers]
        dom = DashboardDom(chromium_render(f"{workers[0].url}/dashboard", screenshot, tmp_path / "chromium",
                                           VIRTUAL_TIME_MS))
        after = [w.stats() for w in workers]
    finally:
        rendered.set()
        writer.join()

    assert set(dom.rows) == {w.url for w in workers}, dom.rows
    for worker, then, now in zip(workers, before, after):
        row = dom.rows[worker.url]
        assert row["state"] == "up" and then["worker"] in row["url"], row
        for counter in ("events_in", "completed"):
            assert then["counts"].get(counter, 0) <= number(row[counter]) <= now["counts"].get(counter, 0), \
                (counter, row, then, now)
        assert number(row["events_in"]) > 0
        assert row["lag"] != "–" and number(row["lag"]) >= 0, row
    assert number(dom.text["total-events_in"]) == sum(number(r["events_in"]) for r in dom.rows.values())
    assert number(dom.text["total-completed"]) == sum(number(r["completed"]) for r in dom.rows.values())
    assert number(dom.text["total-events_per_s"]) > 0, dom.text
    assert "2 of 2 workers answering" in dom.text["status"], dom.text["status"]
    assert len(dom.points["chart-events"]) >= 2, dom.points
    png = screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", png[16:24]) == (1280, 900)
    assert len(png) > 20_000, f"{screenshot}: {len(png)} bytes, a blank page?"


def test_each_worker_reports_lag_for_its_own_share_of_the_cdc_partitions(stream):
    settings, workers = stream
    topics = {settings.cdc_topic("orders"), settings.cdc_topic("order_details")}
    every_partition = {str(p) for p in range(settings.topic_partitions)}

    def shares(answers) -> dict[str, list[set[str]]]:
        return {topic: [set(a["lag"].get(topic, {})) for a in answers] for topic in topics}

    def caught_up_and_shared() -> bool:
        answers = [w.stats() or {"lag": {}} for w in workers]
        return all(a.get("lag_total") == 0 for a in answers) and all(
            all(share) and not share[0] & share[1] and share[0] | share[1] == every_partition
            for share in shares(answers).values())

    write_orders(settings, 200, rate=0)
    wait_until(caught_up_and_shared, workers)
    answers = [w.stats() for w in workers]

    assert set(answers[0]["lag"]) == set(answers[1]["lag"]) == topics, answers
    for answer in answers:
        assert answer["lag_total"] == sum(n for by_partition in answer["lag"].values() for n in by_partition.values())
        assert isinstance(answer["lag_age_s"], (int, float)) and answer["lag_age_s"] >= 0, answer


def test_a_started_worker_runs_with_the_runtime_s_collector_thresholds_and_its_start_up_heap_frozen(stream):
    _, workers = stream
    write_orders(stream[0], 20, rate=0)
    wait_until(lambda: all_processing(workers), workers)

    for collector in (w.stats()["collector"] for w in workers):
        assert collector["thresholds"] == list(COLLECTOR_THRESHOLDS), collector
        assert collector["frozen"] > 10_000, collector


def test_a_worker_reports_what_its_rocksdb_holds_in_memory_within_its_budget(stream):
    _, workers = stream
    write_orders(stream[0], 20, rate=0)
    # An empty memtable reports a few KB; the first write allocates a 1 MB arena block.
    wait_until(lambda: all(w.stats()["rocksdb"]["memtables"] > 1 << 20 for w in workers), workers)

    for rocksdb in (w.stats()["rocksdb"] for w in workers):
        assert rocksdb["block_cache_capacity"] == BLOCK_CACHE_BYTES, rocksdb
        assert rocksdb["memtable_limit"] == MEMTABLE_BYTES, rocksdb
        assert 0 < rocksdb["block_cache"] <= BLOCK_CACHE_BYTES, rocksdb
        assert rocksdb["table_readers"] >= 0, rocksdb


def test_a_worker_that_stops_answering_shows_as_unreachable_and_the_data_still_comes(stream):
    _, workers = stream
    wait_until(lambda: len(httpx.get(f"{workers[0].url}/dashboard/data", timeout=5).json()["workers"]) == 2, workers)

    workers[1].kill()  # the group forgets it only after the session timeout
    response = httpx.get(f"{workers[0].url}/dashboard/data", timeout=5)

    assert response.status_code == 200
    data = response.json()
    rows = {row["url"]: row for row in data["workers"]}
    assert rows[workers[1].url]["reachable"] is False and rows[workers[1].url]["error"], rows
    assert rows[workers[0].url]["reachable"] is True
    assert (data["totals"]["workers"], data["totals"]["reachable"]) == (2, 1)


def quiet_metrics(worker, timeout_s: float = 30) -> tuple[dict, httpx.Response]:
    """/metrics read between two equal /stats counts: completions go on after the lag reaches 0
    (settling, acknowledgements), so a single read of each can straddle one."""
    deadline = time.monotonic() + timeout_s
    while True:
        before = worker.stats()
        response = httpx.get(f"{worker.url}/metrics", timeout=5)
        after = worker.stats()
        if before["counts"] == after["counts"]:
            return after, response
        assert time.monotonic() < deadline, f"counts never stood still: {before['counts']} -> {after['counts']}"
        time.sleep(0.5)


def test_metrics_are_prometheus_text_that_agrees_with_stats(stream):
    settings, workers = stream
    write_orders(settings, 300, rate=0)
    wait_until(lambda: all(((w.stats() or {}).get("lag_total") == 0
                            and (w.stats() or {}).get("counts", {}).get("completed", 0) > 0) for w in workers), workers)

    for worker in workers:
        stats, response = quiet_metrics(worker)
        families = {f.name: f for f in text_string_to_metric_families(response.text)}
        value = {f.name: f.samples[0].value for f in families.values() if f.samples and f.type in ("counter", "gauge")
                 and f.name != "orderpipe_consumer_lag_records"}
        latency = {s.name: s.value for s in families["orderpipe_commit_to_order_final_seconds"].samples}
        batches = {s.name: s.value for s in families["orderpipe_batch_processing_seconds"].samples}

        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        assert value["orderpipe_events_in"] == stats["counts"]["events_in"]
        assert value["orderpipe_completed"] == stats["counts"]["completed"]
        assert latency["orderpipe_commit_to_order_final_seconds_count"] == stats["counts"]["completed"]
        assert batches["orderpipe_batch_processing_seconds_count"] > 0
        partitions = {(s.labels["topic"], s.labels["partition"]) for s in families["orderpipe_consumer_lag_records"].samples}
        assert partitions == {(topic, p) for topic, by_partition in stats["lag"].items() for p in by_partition}
