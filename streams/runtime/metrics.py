"""Per-worker counters: what went in, what came out; consumer lag; and two histograms.
Served by GET /stats (JSON) and GET /metrics (Prometheus text)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections import Counter
from typing import Iterable, Mapping

from faust.sensors import Monitor
from faust.types import TP
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

WORKER = f"{socket.gethostname()}:{os.getpid()}"
counters: Counter[str] = Counter()
# counters entries that go up and down
GAUGES = {"unsettled_now", "reference_caught_up_after_s", "outputs_ready_after_ms"}

# Observed once per batch and once per acknowledged order: cheap beside the work measured.
histograms = CollectorRegistry(auto_describe=True)
order_final_latency = Histogram(
    "orderpipe_commit_to_order_final_seconds",
    "From the source commit of an order's last change to the broker's ack of its order_final message.",
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300), registry=histograms)
batch_seconds = Histogram(
    "orderpipe_batch_processing_seconds", "One batch of CDC events through the completion agent.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=histograms)


class Figures:
    """A Prometheus collector over one scrape's figures: the counters, the state cache and
    the lag per partition (read at scrape time, nothing kept per record)."""

    def __init__(self, counts: Mapping[str, int], cache: Mapping[str, int], lag: Mapping[str, Mapping[str, int]]):
        self.counts, self.cache, self.lag = counts, cache, lag

    def collect(self):
        for name, value in sorted(self.counts.items()):
            if name in GAUGES:
                yield GaugeMetricFamily(f"orderpipe_{name}", f"/stats counts.{name}", value=value)
            else:
                yield CounterMetricFamily(f"orderpipe_{name}", f"/stats counts.{name}", value=value)
        for name, value in sorted(self.cache.items()):
            yield GaugeMetricFamily(f"orderpipe_state_cache_{name}", f"/stats state_cache.{name}", value=value)
        lag = GaugeMetricFamily("orderpipe_consumer_lag_records", "Records behind the log end, per CDC partition.",
                                labels=["topic", "partition"])
        for topic, by_partition in sorted(self.lag.items()):
            for partition, records in sorted(by_partition.items()):
                lag.add_metric([topic, partition], records)
        yield lag


def lag_by_topic(ends: Mapping[TP, int | None], positions: Mapping[TP, int | None]) -> dict[str, dict[str, int]]:
    """Records behind per topic and partition: log end minus the consumer's position.

    A partition whose end or position is not known yet (just assigned) is left out rather
    than guessed. A position read after the end was seen may pass it: that counts as 0."""
    lag: dict[str, dict[str, int]] = {}
    for tp, end in sorted(ends.items()):
        position = positions.get(tp)
        if end is None or position is None:
            continue
        lag.setdefault(tp.topic, {})[str(tp.partition)] = max(0, end - position)
    return lag


class LagGauge:
    """This worker's consumer lag on `topics`: per assigned partition, the log end seen in the
    last fetch response minus the consumer's position.

    Measured off the request path: Faust's consumer runs in its own thread and answers
    position() through a two-slot queue it shares with fetching and committing, where a call
    can wait a second behind a long-poll fetch (measured). So one measurement runs at a
    time, started by a request when the last one is older than `max_age_s`; a request waits
    at most `wait_s` for it and otherwise gets the newest finished one, with its age."""

    def __init__(self, topics: Iterable[str], max_age_s: float = 1.0, wait_s: float = 0.5) -> None:
        self.topics = frozenset(topics)
        self.max_age_s = max_age_s
        self.wait_s = wait_s
        self._running: asyncio.Future | None = None
        self._last: dict = {"lag": {}, "lag_total": None, "lag_error": "not measured yet"}
        self._last_at: float | None = None

    async def read(self, consumer) -> dict:
        """`{"lag": {topic: {partition: records}}, "lag_total": n, "lag_age_s": s}`; while it
        cannot be known (consumer not started, rebalancing), `lag_total` None and `lag_error`."""
        idle = self._running is None or self._running.done()
        if idle and (self._last_at is None or time.monotonic() - self._last_at >= self.max_age_s):
            self._running = asyncio.ensure_future(self._measure(consumer))
        if not self._running.done():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._running), self.wait_s)
        age = None if self._last_at is None else round(time.monotonic() - self._last_at, 1)
        return {**self._last, "lag_age_s": age}

    async def _measure(self, consumer) -> None:
        try:
            assigned = sorted(tp for tp in consumer.assignment() if tp.topic in self.topics)
            ends = {tp: consumer.highwater(tp) for tp in assigned}
            positions = {}
            for tp in assigned:  # one after another: never more than one queue slot taken
                positions[tp] = await consumer.position(tp)
            lag = lag_by_topic(ends, positions)
            self._last = {"lag": lag, "lag_total": sum(n for by_partition in lag.values() for n in by_partition.values())}
        except Exception as error:  # noqa: BLE001 - a figure on a page must never fail the page
            self._last = {"lag": {}, "lag_total": None, "lag_error": f"{type(error).__name__}: {error}"[:200]}
        self._last_at = time.monotonic()


class RecordQuietMonitor(Monitor):
    """Faust's Monitor without its per-record bookkeeping: timing every event and counting it
    per stream and per task is a visible share of a busy worker's CPU, and nothing reads
    those figures (the stream's own are `counters`). Commit, send and rebalance figures stay,
    and so does the offset each partition's stream last read (streams.runtime.consumer uses it)."""

    def on_message_in(self, tp, offset, message) -> None:
        self.tp_read_offsets[tp] = offset

    def on_stream_event_in(self, tp, offset, stream, event) -> None:
        return None

    def on_stream_event_out(self, tp, offset, stream, event, state=None) -> None:
        pass

    def on_message_out(self, tp, offset, message) -> None:
        pass
