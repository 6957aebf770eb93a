"""Worker memory and state over a long run: RSS of one worker, and its datadir on disk
(RocksDB: the order_progress table and the reference data) and what RocksDB holds in memory
by its own account (/stats `rocksdb`), while it takes N orders.

    python -m bench.stream_rss [--orders 1000000] [--customers 1000000] [--retention-s 300]

A scratch database and stream; the generator writes as fast as it can while one worker
consumes; the worker's RSS and datadir are sampled every 15 s until it has read every CDC
record. The baseline is the same worker's after its first 10,000 orders, so the ratios are
growth. With a retention much shorter than the run, finished orders are forgotten as fast
as they come, and the datadir should stay flat after the first retention.
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


def rocksdb_mb(rocksdb: dict[str, int]) -> str:
    """/stats' `rocksdb`: MB in memtables, block cache and table readers, and their sum."""
    parts = {part: rocksdb.get(part, 0) / 2**20 for part in ("memtables", "block_cache", "table_readers")}
    return f"{sum(parts.values()):5.0f} MB (" + " ".join(f"{part} {mb:.0f}" for part, mb in parts.items()) + ")"


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders to write and process.")] = 1_000_000,
    customers: Annotated[int, typer.Option(min=1, help="Customers in the reference data, which the worker "
                                                "holds beside the orders' state.")] = 1_000_000,
    retention_s: Annotated[float | None, typer.Option(
        min=0.1, help="The worker's STATE_RETENTION_S (default: the settings'): how long finished orders' "
             "state stays.")] = None,
) -> None:
    """Sample one worker's RSS and datadir size while it processes `orders` orders."""
    with isolated(f"bench_{uuid.uuid4().hex[:8]}_rss", customers) as scratch:
        if retention_s is not None:
            scratch = scratch.model_copy(update={"state_retention_s": retention_s})
        print(f"STATE_RETENTION_S {scratch.state_retention_s:,.0f}", flush=True)
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
                stats = worker.stats()
                counts = stats["counts"]
                events = counts.get("events_in", 0)
                rss, disk = process.memory_info().rss / 2**20, disk_mb(worker.datadir)
                samples.append((time.monotonic() - started, events, rss, disk))
                print(f"{samples[-1][0]:7.0f} s  {events:>10,} events  RSS {rss:6.0f} MB  datadir {disk:6.0f} MB  "
                      f"markers dropped {counts.get('emitted_markers_dropped', 0):>9,}  "
                      f"RocksDB {rocksdb_mb(stats['rocksdb'])}", flush=True)
                if baseline is None and events >= 30_000:  # about 10,000 orders
                    baseline = samples[-1]
                if not writer.is_alive():
                    total = total or wait_topics_still(scratch)
                    if events >= total:
                        break
            last = samples[-1]
            print(f"after {orders:,} orders ({total:,} CDC records) in {last[0]:.0f} s: RSS {last[2]:.0f} MB, "
                  f"peak {max(s[2] for s in samples):.0f} MB; after ~10,000 orders {baseline[2]:.0f} MB "
                  f"(ratio {last[2] / baseline[2]:.2f}x); datadir {last[3]:.0f} MB, peak "
                  f"{max(s[3] for s in samples):.0f} MB, after ~10,000 orders {baseline[3]:.0f} MB "
                  f"(ratio {last[3] / baseline[3]:.2f}x); RocksDB in memory {rocksdb_mb(stats['rocksdb'])}")
        finally:
            worker.stop()


if __name__ == "__main__":
    run(main)
