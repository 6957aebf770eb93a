"""Worker memory and state over a long run: RSS of one worker, and its datadir on disk
(RocksDB: the order_progress table and the reference data), while it takes N orders.

    python -m bench.stream_rss [--orders 1000000] [--customers 1000000]

A scratch database and stream; the generator writes as fast as it can while one worker
consumes; the worker's RSS is sampled every 15 s until it has read every CDC record. The
baseline is the same worker's RSS after its first 10,000 orders, so the ratio is growth.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Annotated

import psutil
import typer

from bench.stream import isolated, wait_topics_still
from config.cli import run
from source import database, generate
from source.traffic import ChaosMix, Truth, plan
from stack.workers import start_workers


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def main(
    orders: Annotated[int, typer.Option(help="Orders to write and process.")] = 1_000_000,
    customers: Annotated[int, typer.Option(help="Customers in the reference data, which the worker "
                                                "holds beside the orders' state.")] = 1_000_000,
) -> None:
    """Sample one worker's RSS and datadir size while it processes `orders` orders."""
    with isolated(f"bench_{uuid.uuid4().hex[:8]}_rss", customers) as scratch:
        [worker] = start_workers(scratch, 1)
        try:
            writer = threading.Thread(target=generate.run, args=(
                database.connect(scratch), plan(orders, seed=int(time.time()), customers=customers,
                                                chaos=ChaosMix())),
                kwargs={"total_orders": orders, "rate": 0, "truth": Truth(), "progress": False})
            started = time.monotonic()
            writer.start()
            process = psutil.Process(worker.pid())
            samples, baseline, total = [], None, None
            while True:
                time.sleep(15)
                events = worker.stats()["counts"].get("events_in", 0)
                rss = process.memory_info().rss / 2**20
                samples.append((time.monotonic() - started, events, rss))
                print(f"{samples[-1][0]:7.0f} s  {events:>10,} events  RSS {rss:6.0f} MB  "
                      f"datadir {disk_mb(worker.datadir):6.0f} MB", flush=True)
                if baseline is None and events >= 30_000:  # about 10,000 orders
                    baseline = rss
                if not writer.is_alive():
                    total = total or wait_topics_still(scratch)
                    if events >= total:
                        break
            print(f"after {orders:,} orders ({total:,} CDC records) in {samples[-1][0]:.0f} s: RSS "
                  f"{samples[-1][2]:.0f} MB, peak {max(s[2] for s in samples):.0f} MB; after ~10,000 orders "
                  f"{baseline:.0f} MB (ratio {samples[-1][2] / baseline:.2f}x)")
        finally:
            worker.stop()


if __name__ == "__main__":
    run(main)
