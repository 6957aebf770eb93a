"""One contender's figures: throughput on pre-filled CDC topics, latency at a steady write rate,
and the audit of its output against the generator's manifest."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import psutil
from tqdm import tqdm

from bench.peers.contenders import Contender, running, wait_groups_stable
from bench.stream import DUPLICATE_GRACE_S, percentiles
from cdc.topics import Message, read_topics
from config import Settings
from source import database, generate
from source.order_final_audit import Audit, audit
from source.traffic import Truth, Write



@dataclass(frozen=True)
class Throughput:
    events_per_s: float  # CDC records / (first output append -> last output append)
    wall_s: float  # process launch -> last output append, startup included
    audit: Audit
    cores: float = float("nan")  # the machine's busy cores over the same window, every process


# Each only grows, so their sum does too (total minus idle and iowait can step back by a rounding
# error, and Linux's iowait itself can go backwards). Guest time is already counted in user.
BUSY_FIELDS = ("user", "nice", "system", "irq", "softirq", "steal")


class BusyCores:
    """The machine's busy CPU time (all processes: contender, broker, Redis...), sampled in a
    thread every `every_s`, to be read afterwards over any window of the run."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self.samples: list[tuple[float, float]] = []  # (epoch ms, busy CPU seconds so far)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> BusyCores:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while True:
            times = psutil.cpu_times()
            self.samples.append((time.time() * 1000, sum(getattr(times, field, 0.0) for field in BUSY_FIELDS)))
            if self._stop.wait(self.every_s):
                return

    def between(self, start_ms: float, end_ms: float) -> float:
        """Busy cores from the last sample at or before `start_ms` to the first at or after `end_ms`."""
        before = [sample for sample in self.samples if sample[0] <= start_ms] or self.samples[:1]
        after = [sample for sample in self.samples if sample[0] >= end_ms] or self.samples[-1:]
        (t0, busy0), (t1, busy1) = before[-1], after[0]
        return (busy1 - busy0) / ((t1 - t0) / 1000) if t1 > t0 else float("nan")


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float
    audit: Audit


def collect_output(scratch: Settings, topic: str, expected: set[str], *, quiet_s: float,
                   timeout_s: float, desc: str) -> list[Message]:
    """The output topic's messages once every expected order is in (plus a grace period for
    duplicates), or once it has been quiet `quiet_s` (a contender that misses orders), or at
    the timeout."""
    started = time.monotonic()
    seen: set[str] = set()
    marks = {"count": 0, "changed": started, "complete": None}
    bar = tqdm(total=len(expected), unit="orders", desc=desc, leave=False)

    def done(messages: list[Message]) -> bool:
        now = time.monotonic()
        for message in messages[marks["count"]:]:
            order_id = message.value["order_id"]
            if order_id in expected and order_id not in seen:
                seen.add(order_id)
                bar.update()
        if len(messages) != marks["count"]:
            marks["count"], marks["changed"] = len(messages), now
        if marks["complete"] is None and seen >= expected:
            marks["complete"] = now
        return ((marks["complete"] is not None and now - marks["complete"] > DUPLICATE_GRACE_S)
                or (messages and now - marks["changed"] > quiet_s) or now - started > timeout_s)

    try:
        return read_topics(scratch, [topic], until=done, timeout_s=timeout_s + 10)
    finally:
        bar.close()


def throughput(contender: Contender, scratch: Settings, manifest: dict, records: int, *,
               web_port: int, quiet_s: float, timeout_s: float) -> Throughput:
    """Start the contender on CDC topics already holding `records` records; time its output."""
    launched_ms = time.time() * 1000
    with BusyCores() as busy, running(contender, scratch, web_port):
        messages = collect_output(scratch, contender.output_topic(scratch), set(manifest["complete"]),
                                  quiet_s=quiet_s, timeout_s=timeout_s, desc=f"{contender.label} output")
    result = audit(manifest, [m.value for m in messages])
    if not messages:
        return Throughput(0.0, float("nan"), result)
    first, last = min(m.timestamp_ms for m in messages), max(m.timestamp_ms for m in messages)
    return Throughput(records / max(last - first, 1) * 1000, (last - launched_ms) / 1000, result,
                      busy.between(first, last))


def latency(contender: Contender, scratch: Settings, writes: list[Write], orders: int, rate: float, *,
            web_port: int, quiet_s: float, timeout_s: float) -> Latency:
    """Start the contender, write `writes` at `rate` orders/s; last commit -> output append."""
    with running(contender, scratch, web_port):
        wait_groups_stable(scratch, contender.groups(scratch))
        committed: dict[str, float] = {}
        truth = Truth()
        generate.run(database.connect(scratch), writes, total_orders=orders, rate=rate, truth=truth,
                     progress=True, on_commit=lambda write: committed.__setitem__(write.order_id, time.time() * 1000))
        manifest = truth.manifest()
        messages = collect_output(scratch, contender.output_topic(scratch), set(manifest["complete"]),
                                  quiet_s=quiet_s, timeout_s=timeout_s, desc=f"{contender.label} output")
    first_copies = {}
    for message in messages:
        first_copies.setdefault(message.value["order_id"], message)
    lags = [m.timestamp_ms - committed[order_id] for order_id, m in first_copies.items() if order_id in committed]
    p50, p99 = percentiles(lags) if len(lags) > 1 else (float("nan"), float("nan"))
    return Latency(p50, p99, audit(manifest, [m.value for m in messages]))

