"""The live dashboard's figures: every worker's /stats answer folded into one payload.

Pure: the caller passes the answers and the clock, so the folding is tested without workers.
"""

from __future__ import annotations

from collections import deque
from typing import Callable, Hashable, Mapping

COUNTERS = ("events_in", "completed", "duplicates_prevented", "dead_lettered")
# Shown in total only: what the stream noticed about the orders.
NOTICED = ("alerts_bulk", "alerts_stalled", "alerts_cancelled_after_details", "unenriched_customer")
RATES = {"events_in": "events_per_s", "completed": "completed_per_s"}
RATE_WINDOW_S = 3.0


class RateMeter:
    """Per-second rates of growing counters from successive samples.

    A rate spans the last `window_s` seconds of samples (one sample short of that when the
    samples are sparse), so a page polled every second, or by several viewers at once,
    shows a steady figure. A counter that goes down was restarted: its history is dropped."""

    def __init__(self, window_s: float = RATE_WINDOW_S) -> None:
        self.window_s = window_s
        self._samples: dict[Hashable, deque[tuple[float, int]]] = {}

    def rate(self, key: Hashable, at: float, value: int) -> float | None:
        """The rate of `key` up to this sample taken at `at` (monotonic seconds); None until
        there are two samples apart in time."""
        samples = self._samples.setdefault(key, deque())
        if samples and (value < samples[-1][1] or at < samples[-1][0]):
            samples.clear()
        samples.append((at, value))
        while len(samples) > 2 and at - samples[1][0] >= self.window_s:
            samples.popleft()
        first_at, first_value = samples[0]
        if at <= first_at:
            return None
        return (value - first_value) / (at - first_at)

    def retain(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop the history of the keys `keep` rejects (workers gone from the cluster)."""
        for key in [k for k in self._samples if not keep(k)]:
            del self._samples[key]


def member_urls(own: str, *distributions: Mapping[str, object]) -> list[str]:
    """The web URLs of the app's workers: this one's and every member the partition
    assignor knows (its distributions map each member's URL to its partitions, empty for
    a member without any)."""
    urls = {own, *(url for distribution in distributions for url in distribution)}
    return sorted({str(url).rstrip("/") for url in urls})


def worker_row(url: str, answer: Mapping, meter: RateMeter, at: float) -> dict:
    """One worker's line: its counters, their rates, its lag; or why it is unreachable."""
    if not isinstance(answer.get("counts"), Mapping):
        return {"url": url, "reachable": False, "error": str(answer.get("error", "no counters in answer"))}
    counts = answer["counts"]
    row: dict = {"url": url, "worker": answer.get("worker"), "reachable": True}
    for name in (*COUNTERS, *NOTICED):
        row[name] = int(counts.get(name, 0))
    for counter, rate_name in RATES.items():
        rate = meter.rate((url, row["worker"], counter), at, row[counter])
        row[rate_name] = None if rate is None else round(rate, 1)
    row["lag"] = answer.get("lag_total")
    row["lag_by_partition"] = answer.get("lag", {})
    return row


def totals(rows: list[dict]) -> dict:
    """Sums over the reachable workers; a rate or lag no worker knows yet stays None."""
    up = [row for row in rows if row["reachable"]]
    summed: dict = {"workers": len(rows), "reachable": len(up)}
    for name in (*COUNTERS, *NOTICED):
        summed[name] = sum(row[name] for row in up)
    for name in (*RATES.values(), "lag"):
        known = [row[name] for row in up if row[name] is not None]
        summed[name] = round(sum(known), 1) if known else None
    return summed


def dashboard_payload(app_id: str, answers: Mapping[str, Mapping], meter: RateMeter, at: float,
                      now: float) -> dict:
    """`answers` maps each worker URL to its /stats JSON, or to {"error": ...}; `at` is a
    monotonic clock for rates, `now` the epoch time the chart plots."""
    rows = [worker_row(url, answers[url], meter, at) for url in sorted(answers)]
    # A worker's history goes with it: gone from the cluster, or restarted under a new id.
    live = {row["url"]: row.get("worker") for row in rows}
    meter.retain(lambda key: key[0] in live and live[key[0]] in (None, key[1]))
    return {"app": app_id, "at": now, "workers": rows, "totals": totals(rows)}
