"""Does scraping `/metrics` slow the stream? One worker on pre-filled CDC topics, in turn
without and with a burst of scrapes, in the same rounds; the ratio is printed.

    python -m bench.metrics_burst [--orders 20000] [--rounds 3] [--requests 1000] [--concurrency 20]

The burst starts once the worker has taken its first records and sends `--requests` GETs of
`/metrics`, `--concurrency` at a time, as fast as the worker answers them.
"""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from typing import Annotated

import httpx
import typer

from bench.stream import forget_emissions, isolated, load_note, ours, prefill
from config.cli import run
from stack.workers import Worker


def burst(requests: int, concurrency: int, answered: list[float]) -> Callable[[list[Worker]], None]:
    """A `during` hook for bench.stream.ours: the scrapes, their answers counted in `answered`."""
    def scrape(workers: list[Worker]) -> None:
        url = f"{workers[0].url}/metrics"
        while (workers[0].stats() or {}).get("counts", {}).get("events_in", 0) == 0:
            time.sleep(0.05)
        started = time.monotonic()
        with httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client, \
                ThreadPoolExecutor(concurrency) as pool:
            codes = list(pool.map(lambda _: client.get(url).status_code, range(requests)))
        answered.extend([sum(code == 200 for code in codes), time.monotonic() - started])
    return scrape


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders pre-filled.")] = 20_000,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds, each running both in turn.")] = 3,
    requests: Annotated[int, typer.Option(min=1, help="Scrapes in the burst.")] = 1000,
    concurrency: Annotated[int, typer.Option(min=1, help="Scrapes in flight at once.")] = 20,
) -> None:
    """One worker without and with a burst of /metrics scrapes; events/s and the ratio."""
    run = uuid.uuid4().hex[:8]
    ratios = []
    with isolated(f"burst_{run}") as scratch:
        filled = prefill(scratch, orders)
        print(f"{filled.records:,} CDC records from {orders:,} orders; a burst of {requests:,} /metrics GETs, "
              f"{concurrency} at a time")
        for number in range(1, rounds + 1):
            forget_emissions(scratch, filled.order_ids)
            quiet = ours(scratch, 1, filled.records, filled.manifest, f"q{number}")
            forget_emissions(scratch, filled.order_ids)
            answered: list[float] = []
            scraped = ours(scratch, 1, filled.records, filled.manifest, f"s{number}",
                           during=burst(requests, concurrency, answered))
            ratios.append(scraped.events_per_s / quiet.events_per_s)
            burst_note = (f"{answered[0]:,.0f} of {requests:,} answered 200 in {answered[1]:.1f} s" if answered
                          else "the burst had not finished when the run ended")
            print(f"round {number}/{rounds} ({load_note()}): without {quiet.events_per_s:,.0f} events/s, "
                  f"with the burst {scraped.events_per_s:,.0f} ({ratios[-1]:.2f}x; {burst_note}); "
                  f"audits: {quiet.audit.summary()} / {scraped.audit.summary()}", flush=True)
    print(f"with / without the burst: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    run(main)
