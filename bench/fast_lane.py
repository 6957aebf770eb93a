"""The fast lane's micro-batch on a shop's lake at two ages, without Kafka in the timing: a
scratch lake grown by the lane itself from synthetic Debezium records to `--orders` orders
placed over the shop's past days (`--orders-per-day`), then to `--grow` times that (a shop
as many times older), and on each, micro-batches shaped like a live shop's: `--batch` new
orders with their details (one in ten missing a detail, which arrives in the next micro-batch),
a fifth as many of the last day's orders cancelled, and 1 % of the batch as late changes to
orders anywhere in the past (a payment method changed, an order cancelled).

    python -m bench.fast_lane [--orders 250000] [--batch 1000] [--rounds 3] [--grow 10] [--profile]

First the connector's snapshot of `--customers` customers is caught up, in micro-batches
within the running lane's caps on records and bytes: its time and the process's high-water RSS
are printed. The baseline, in the same process: the same micro-batches on the younger lake. Prints each
lake's median and range per step (archive, Silver, Gold) and per table, the lane's records/s
on one core while it grows the lake, its peak RSS, and last the ratio of the older lake's
micro-batch to the younger's. `--profile`: where the older lake's micro-batches spend their
time (cProfile, the calls that take it: delta-rs and pyarrow work inside one call each).
"""

from __future__ import annotations

import cProfile
import pstats
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from datetime import datetime, timedelta, timezone
from typing import Annotated

import orjson
import polars as pl
import psutil
import typer

from batch.clocks import MAX_BATCH_BYTES, MAX_RECORDS_PER_BATCH
from batch.fastlane.archive import Record
from batch.fastlane.lane import FastLane, MicroBatch
from batch.fastlane.source import Waiting
from batch.paths import GOLD
from batch.runs import show_progress
from config import Settings, settings
from config.cli import run
from stack.process import peak_rss_mb
from stack.scratch import scratch_lake

START_MS = int(datetime(2024, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)
DAY_MS = 86_400_000
INCOMPLETE_EVERY = 10  # one new order in so many misses a detail until the next micro-batch
LATE_SHARE = 0.01  # of a micro-batch's orders: changes to orders anywhere in the shop's past
# The rest of the `source` block Debezium's MySQL connector writes (schemas off), so a record
# weighs what the connector's do: the lane's byte cap counts it.
DEBEZIUM_SOURCE = {"version": "2.7.3.Final", "connector": "mysql", "name": "shop", "db": "shop", "sequence": None,
                   "server_id": 1, "gtid": None, "thread": None, "query": None}


def encoded(value) -> bytes:
    """JSON bytes the size of their text, as a Kafka consumer hands them on (orjson's bytes keep
    its 4 KB working buffer: a million records held would weigh 4 GB)."""
    return memoryview(orjson.dumps(value)).tobytes()


class Source:
    """Debezium records of a synthetic shop, in binlog order, on a clock that places
    `orders_per_day` orders a day."""

    def __init__(self, settings: Settings, customers: int, orders_per_day: int, seed: int = 1) -> None:
        self.settings, self.customers, self.random = settings, customers, random.Random(seed)
        self.position, self.offsets, self.orders = 0, {}, []
        self.now_ms, self.order_gap_ms = START_MS, DAY_MS / orders_per_day
        self.orders_per_day = orders_per_day
        self.late_details: list[Record] = []  # the details the newest incomplete orders wait for

    def record(self, table: str, op: str, row: dict, key, before: dict | None = None) -> Record:
        self.position += 1
        at_ms = int(self.now_ms)
        envelope = {"before": before or (row if op == "d" else None), "after": None if op == "d" else row, "op": op,
                    "source": {**DEBEZIUM_SOURCE, "table": table, "file": "mysql-bin.000001", "pos": self.position,
                               "row": 0, "ts_ms": at_ms, "ts_us": at_ms * 1000, "ts_ns": at_ms * 1_000_000,
                               "snapshot": "true" if op == "r" else "false"},
                    "ts_ms": at_ms, "ts_us": at_ms * 1000, "ts_ns": at_ms * 1_000_000, "transaction": None}
        topic = self.settings.cdc_topic(table)
        offset = self.offsets.get(topic, 0)
        self.offsets[topic] = offset + 1
        return Record(topic, 0, offset, encoded(key), encoded(envelope), int(self.now_ms))

    def customers_snapshot(self) -> Iterator[Record]:
        """The connector's snapshot of the customers, one record at a time (as Kafka hands them)."""
        return (self.record("customers", "r", {"id": n, "name": f"c{n}", "email": f"c{n}@shop.example",
                                               "phone": "1", "city": "Oslo", "created_at": START_MS}, {"id": n})
                for n in range(1, self.customers + 1))

    def order(self, order_id: str, placed_ms: int, products: int, payment_method: int = 1) -> dict:
        return {"id": order_id, "customer_id": 1 + int(order_id[:8], 16) % self.customers, "store_id": 1,
                "payment_method_id": payment_method, "num_products": products, "timestamp": placed_ms}

    def new_orders(self, count: int) -> list[Record]:
        """`count` orders placed now, with their details; the details the previous call held back first."""
        records, self.late_details = self.late_details, []
        for _ in range(count):
            self.now_ms += self.order_gap_ms
            order_id = str(uuid.UUID(int=self.random.getrandbits(128)))
            products = self.random.randint(1, 4)
            placed_ms = int(self.now_ms)
            records.append(self.record("orders", "c", self.order(order_id, placed_ms, products,
                                                                 self.random.randint(1, 12)), order_id))
            details = [self.record("order_details", "c", {"order_id": order_id, "product_id": product,
                                                          "quantity": self.random.randint(1, 3)}, order_id)
                       for product in self.random.sample(range(1, 500), products)]
            held_back = 1 if len(self.orders) % INCOMPLETE_EVERY == 0 else 0
            records.extend(details[: len(details) - held_back])
            self.late_details.extend(details[len(details) - held_back:])
            self.orders.append((order_id, placed_ms, products))
        return records

    def cancelled(self, orders: list[tuple[str, int, int]]) -> list[Record]:
        """The orders deleted (and no longer among those a later change may pick)."""
        gone = {order_id for order_id, _, _ in orders}
        self.orders = [order for order in self.orders if order[0] not in gone]
        return [self.record("orders", "d", self.order(order_id, placed_ms, products), order_id)
                for order_id, placed_ms, products in orders]

    def live_changes(self, count: int) -> list[Record]:
        """What a live shop sends in the time of `count` new orders: them, a fifth as many of the
        last day's orders cancelled, and late changes to orders of any day."""
        recent, past = self.orders[-self.orders_per_day:], self.orders[: -self.orders_per_day]
        cancelled = self.random.sample(recent, count // 5)
        late = self.random.sample(past, max(1, round(count * LATE_SHARE)))
        records = self.new_orders(count) + self.cancelled(cancelled + late[1::2])  # half the late ones cancelled
        return records + [self.record("orders", "u", self.order(order_id, placed_ms, products, 12), order_id,
                                      before=self.order(order_id, placed_ms, products))
                          for order_id, placed_ms, products in late[::2]]  # the other half's payment changed


def dated_days(lane: FastLane, days: int) -> None:
    """Gold's `dim_date` as the deferred dimension job leaves a shop's lake: a row for each of
    its `days` from the first (the columns facts resolve against), so each fact lies in its
    order's day's partition rather than all in the unknown member's."""
    start = datetime.fromtimestamp(START_MS / 1000, timezone.utc).date()
    dates = pl.date_range(start, start + timedelta(days=days), eager=True).alias("date")
    rows = pl.DataFrame(dates).with_columns(pl.col("date").dt.strftime("%Y%m%d").cast(pl.Int32).alias("date_id"))
    lane.lake.append(lane.location(GOLD, "dim_date"), rows.select("date_id", "date"))


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
        days = (source.now_ms - START_MS) / DAY_MS
        print(f"  grown to {len(source.orders):,} orders over {days:,.0f} days"
              f"{'; compacted ' + ', '.join(compacted) if compacted else ''}", flush=True)
    return records / applying


def catch_up(lane: FastLane, records: Iterator[Record]) -> tuple[float, int]:
    """`records` applied as the running lane takes them from Kafka: micro-batches within its
    caps on records and bytes. The seconds it took and the micro-batches."""
    waiting, batches, started = Waiting(), 0, time.monotonic()
    for record in records:
        waiting.add(record)
        if waiting.full(MAX_RECORDS_PER_BATCH, MAX_BATCH_BYTES):
            lane.apply(waiting.take(MAX_RECORDS_PER_BATCH, MAX_BATCH_BYTES))
            batches += 1
    while waiting:
        lane.apply(waiting.take(MAX_RECORDS_PER_BATCH, MAX_BATCH_BYTES))
        batches += 1
    return time.monotonic() - started, batches


def timed(lane: FastLane, source: Source, orders: int, rounds: int) -> list[MicroBatch]:
    return [lane.apply(source.live_changes(orders)) for _ in range(rounds)]


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def summary(batches: list[MicroBatch]) -> str:
    steps = (f"total {spread([b.seconds for b in batches])}, archive {spread([b.archive_s for b in batches])}, "
             f"silver {spread([b.silver_s for b in batches])}, gold {spread([b.gold_s for b in batches])}, "
             f"{statistics.median(b.commits for b in batches):.0f} commits")
    tables = sorted({table for b in batches for table in b.table_s})
    return "\n".join([steps, *(f"    {table}: {spread([b.table_s.get(table, 0.0) for b in batches])}"
                               for table in tables)])


def main(
    orders: Annotated[int, typer.Option(help="Orders in the younger lake.", min=1_000)] = 250_000,
    batch: Annotated[int, typer.Option(help="New orders per timed micro-batch.", min=100)] = 1_000,
    rounds: Annotated[int, typer.Option(help="Timed micro-batches per lake.", min=1)] = 3,
    factor: Annotated[int, typer.Option("--grow", help="How many times older (and larger) the second lake is.",
                                        min=2)] = 10,
    orders_per_day: Annotated[int, typer.Option(help="Orders the shop takes a day.", min=100)] = 2_500,
    customers: Annotated[int, typer.Option(help="Customers in the source.", min=1)] = 100_000,
    profile: Annotated[bool, typer.Option(help="Print where the older lake's micro-batches spend their time.")] = False,
) -> None:
    """Time the fast lane's micro-batches on a shop's lake of `--orders` orders and on the same
    shop `--grow` times older (synthetic records, a scratch bucket); the ratio of the two."""
    show_progress()
    me = psutil.Process()
    with scratch_lake(settings, f"bench-fast-{uuid.uuid4().hex[:8]}") as scratch:
        lane, source = FastLane(scratch), Source(scratch, customers, orders_per_day)
        dated_days(lane, days=orders * factor // orders_per_day + rounds * 2 * batch // orders_per_day + 2)
        caught_up_s, batches = catch_up(lane, source.customers_snapshot())
        print(f"the source's {customers:,} customers caught up in {caught_up_s:.1f} s ({batches} micro-batches); "
              f"high-water RSS {peak_mb(me):,.0f} MB", flush=True)
        rate = grow(lane, source, orders)
        younger = timed(lane, source, batch, rounds)
        shape = (f"micro-batches of {batch:,} new orders (+ details), {batch // 5:,} of the last day's cancelled, "
                 f"{max(1, round(batch * LATE_SHARE)):,} late changes")
        print(f"lake of {len(source.orders):,} orders, {shape}: {summary(younger)}", flush=True)
        grow(lane, source, orders * factor)
        profiler = cProfile.Profile()
        with profiler if profile else nullcontext():
            older = timed(lane, source, batch, rounds)
        print(f"lake of {len(source.orders):,} orders, the same micro-batches: {summary(older)}")
        print(f"the lane applied {rate:,.0f} CDC records/s while growing the lake (one process, one core); "
              f"RSS {me.memory_info().rss / 2**20:,.0f} MB now, high-water {peak_mb(me):,.0f} MB")
        if profile:
            print(f"where the {rounds} micro-batches on the older lake spent their time (seconds in the call itself):")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        ratio = statistics.median(b.seconds for b in older) / statistics.median(b.seconds for b in younger)
        print(f"ratio: the {factor}x older lake's micro-batch {ratio:.2f}x the time")


def peak_mb(process: psutil.Process) -> float:
    return peak_rss_mb(process.pid) or 0.0


if __name__ == "__main__":
    run(main)
