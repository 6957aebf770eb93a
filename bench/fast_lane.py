"""The fast lane's micro-batch on lakes of two sizes, without Kafka in the timing: a scratch lake
grown by the lane itself from synthetic Debezium records to `--orders`, then to ten times that,
and on each, micro-batches of `--batch` new orders (with their details, and a fifth as many
earlier orders cancelled) applied by `FastLane.apply`, timed by stage.

    python -m bench.fast_lane [--orders 250000] [--batch 1000] [--rounds 3] [--grow 10] [--profile]

The baseline, in the same process: the same micro-batches on the smaller lake. Prints each
size's median and range per stage, the ratio of the larger to the smaller, the lane's records/s
on one core while it grows the lake, and its peak RSS. `--profile`: where the larger lake's
micro-batches spend their time (cProfile, the calls that take it: delta-rs and pyarrow work
inside one call each).
"""

from __future__ import annotations

import cProfile
import pstats
import random
import statistics
import time
import uuid
from contextlib import nullcontext
from datetime import datetime, timezone
from typing import Annotated

import orjson
import psutil
import typer

from batch.fastlane.archive import Record
from batch.fastlane.lane import FastLane, MicroBatch
from batch.runs import show_progress
from config import Settings, settings
from config.cli import run
from stack.scratch import scratch_lake

START_MS = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() * 1000)


class Source:
    """Debezium records of a synthetic shop, in binlog order."""

    def __init__(self, settings: Settings, customers: int, seed: int = 1) -> None:
        self.settings, self.customers, self.random = settings, customers, random.Random(seed)
        self.position, self.offsets, self.orders = 0, {}, []

    def record(self, table: str, op: str, row: dict, key) -> Record:
        self.position += 1
        envelope = {"before": row if op == "d" else None, "after": None if op == "d" else row, "op": op,
                    "source": {"file": "mysql-bin.000001", "pos": self.position, "row": 0,
                               "ts_ms": START_MS + self.position, **({"snapshot": "true"} if op == "r" else {})},
                    "ts_ms": START_MS + self.position}
        topic = self.settings.cdc_topic(table)
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Record(topic, 0, offset, orjson.dumps(key), orjson.dumps(envelope), START_MS + self.position)

    def customers_snapshot(self) -> list[Record]:
        return [self.record("customers", "r", {"id": n, "name": f"c{n}", "email": f"c{n}@shop.example",
                                                "phone": "1", "city": "Oslo", "created_at": START_MS}, {"id": n})
                for n in range(1, self.customers + 1)]

    def new_orders(self, count: int) -> list[Record]:
        records = []
        for _ in range(count):
            order_id = str(uuid.UUID(int=self.random.getrandbits(128)))
            products = self.random.randint(1, 4)
            records.append(self.record("orders", "c", {
                "id": order_id, "customer_id": self.random.randint(1, self.customers), "store_id": 1,
                "payment_method_id": self.random.randint(1, 12), "num_products": products,
                "timestamp": START_MS + self.position}, order_id))
            for product in self.random.sample(range(1, 500), products):
                records.append(self.record("order_details", "c", {"order_id": order_id, "product_id": product,
                                                                  "quantity": self.random.randint(1, 3)}, order_id))
            self.orders.append(order_id)
        return records

    def cancellations(self, count: int) -> list[Record]:
        return [self.record("orders", "d", {"id": order_id, "customer_id": 1, "store_id": 1, "payment_method_id": 1,
                                            "num_products": 1, "timestamp": START_MS}, order_id)
                for order_id in self.random.sample(self.orders, count)]


def grow(lane: FastLane, source: Source, to_orders: int, step: int = 50_000) -> float:
    """The lake grown to `to_orders` orders in micro-batches of `step`, its hot tables compacted
    between them as the running lane does when they hold many files; records/s applied."""
    applying, records = 0.0, 0
    while len(source.orders) < to_orders:
        batch = source.new_orders(min(step, to_orders - len(source.orders)))
        started = time.monotonic()
        lane.apply(batch)
        applying += time.monotonic() - started
        records += len(batch)
        compacted = lane.compact()
        print(f"  grown to {len(source.orders):,} orders{'; compacted ' + ', '.join(compacted) if compacted else ''}",
              flush=True)
    return records / applying


def timed(lane: FastLane, source: Source, orders: int, rounds: int) -> list[MicroBatch]:
    return [lane.apply(source.new_orders(orders) + source.cancellations(orders // 5)) for _ in range(rounds)]


def summary(batches: list[MicroBatch]) -> str:
    def spread(values: list[float]) -> str:
        return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"
    return (f"total {spread([b.seconds for b in batches])}, archive {spread([b.archive_s for b in batches])}, "
            f"silver {spread([b.silver_s for b in batches])}, gold {spread([b.gold_s for b in batches])}, "
            f"{statistics.median(b.commits for b in batches):.0f} commits")


def main(
    orders: Annotated[int, typer.Option(help="Orders in the smaller lake.", min=1_000)] = 250_000,
    batch: Annotated[int, typer.Option(help="New orders per timed micro-batch.", min=1)] = 1_000,
    rounds: Annotated[int, typer.Option(help="Timed micro-batches per lake size.", min=1)] = 3,
    factor: Annotated[int, typer.Option("--grow", help="How many times larger the second lake is.", min=2)] = 10,
    customers: Annotated[int, typer.Option(help="Customers in the source.", min=1)] = 100_000,
    profile: Annotated[bool, typer.Option(help="Print where the larger lake's micro-batches spend their time.")] = False,
) -> None:
    """Time the fast lane's micro-batches on a lake of `--orders` orders and on one `--grow`
    times larger (synthetic records, a scratch bucket); the ratio of the two."""
    show_progress()
    me = psutil.Process()
    with scratch_lake(settings, f"bench-fast-{uuid.uuid4().hex[:8]}") as scratch:
        lane, source = FastLane(scratch), Source(scratch, customers)
        lane.apply(source.customers_snapshot())
        rate = grow(lane, source, orders)
        small = timed(lane, source, batch, rounds)
        print(f"lake of {len(source.orders):,} orders, micro-batches of {batch:,} orders (+ details, + {batch // 5} "
              f"cancelled): {summary(small)}", flush=True)
        grow(lane, source, orders * factor)
        profiler = cProfile.Profile()
        with profiler if profile else nullcontext():
            large = timed(lane, source, batch, rounds)
        print(f"lake of {len(source.orders):,} orders, micro-batches of {batch:,} orders: {summary(large)}")
        ratio = statistics.median(b.seconds for b in large) / statistics.median(b.seconds for b in small)
        print(f"ratio: the {factor}x larger lake's micro-batch {ratio:.2f}x the time")
        print(f"the lane applied {rate:,.0f} CDC records/s while growing the lake (one process, one core); "
              f"peak RSS {me.memory_info().rss / 2**20:,.0f} MB now, high-water {peak_mb(me):,.0f} MB")
        if profile:
            print(f"where the {rounds} micro-batches on the larger lake spent their time (seconds in the call itself):")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def peak_mb(process: psutil.Process) -> float:
    """The process's high-water resident set (VmHWM)."""
    for line in open(f"/proc/{process.pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


if __name__ == "__main__":
    run(main)
