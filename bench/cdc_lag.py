"""CDC lag: a row's commit in MariaDB to its change event's append in Kafka, p50/p99.

    python -m bench.cdc_lag [--orders 10000 --rate 1000 --baseline-orders 1000 --baseline-rate 100]

Runs in a scratch database with its own connector, so the main pipeline is untouched.
Commit time is the order row's `timestamp` (NOW(3), one statement per transaction);
Debezium's `source.ts_ms` is whole seconds on MariaDB, too coarse. Append time is the
broker's: the orders topic is created with LogAppendTime. Same clock, same machine.
The baseline is the same pipeline at a low rate, in the same process; the ratio says how
much the target rate costs in lag.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Annotated

import orjson
import typer
from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME, Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from cdc import rest
from cdc.connector import CDC_TABLES, connector_config, server_id
from cdc.topics import read_topics, snapshot_done
from config import Settings, cli, settings
from source import database, generate
from source.traffic import ChaosMix, InsertOrder, Truth, plan


def create_topics(settings: Settings) -> None:
    admin = AdminClient(settings.kafka_client_config())
    topics = [NewTopic(settings.cdc_topic(table), 1, settings.replication_factor,
                       config={"message.timestamp.type": "LogAppendTime"})
              for table in CDC_TABLES]
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)


def measure(settings: Settings, consumer: Consumer, orders: int, rate: float, seed: int) -> dict:
    """Write `orders` at `rate`, then collect each order insert's commit-to-append lag (ms)."""
    writes = plan(orders, seed=seed, customers=1000, chaos=ChaosMix.off())
    wanted = {w.order_id for w in writes if isinstance(w, InsertOrder)}
    stats = generate.run(database.connect(settings), writes, total_orders=orders, rate=rate,
                         truth=Truth(), progress=False)
    lags: list[float] = []
    deadline = time.monotonic() + 120
    while wanted and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=1000, timeout=0.5):
            if message.error() or message.value() is None:
                continue
            event = orjson.loads(message.value())
            kind, appended_ms = message.timestamp()
            order = event["after"] or {}
            if event["op"] == "c" and order.get("id") in wanted and kind == TIMESTAMP_LOG_APPEND_TIME:
                wanted.discard(order["id"])
                lags.append(appended_ms - order["timestamp"])
    if wanted:
        raise RuntimeError(f"{len(wanted)} order inserts never reached Kafka within 120 s")
    cuts = statistics.quantiles(lags, n=100)
    return {"orders": orders, "rate": rate, "achieved": stats.orders_per_s,
            "p50": cuts[49], "p99": cuts[98], "max": max(lags)}


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders in the measured run.")] = 10_000,
    rate: Annotated[float, typer.Option(min=0, help="Orders/s in the measured run.")] = 1000,
    baseline_orders: Annotated[int, typer.Option(min=1, help="Orders in the baseline run.")] = 1000,
    baseline_rate: Annotated[float, typer.Option(min=0, help="Orders/s in the baseline run.")] = 100,
) -> None:
    """Measure commit-to-Kafka lag of Debezium CDC at a baseline rate and a target rate."""
    suffix = f"bench_{uuid.uuid4().hex[:8]}"
    with database.scratch_database(settings, suffix) as scratch:
        db = database.connect(scratch)
        database.apply_schema(db)
        database.load_reference(db, 1000, seed=1, progress=False)
        create_topics(scratch)
        connect = rest.client(scratch)
        name = scratch.cdc_connector_name
        try:
            rest.put_config(connect, name, connector_config(scratch, **{"database.server.id": server_id(name)}))
            rest.wait_running(connect, name)
            read_topics(scratch, [scratch.cdc_topic(t) for t in CDC_TABLES], until=snapshot_done)
            consumer = Consumer({**scratch.kafka_client_config(), "group.id": suffix,
                                 "auto.offset.reset": "earliest", "enable.auto.commit": False})
            consumer.subscribe([scratch.cdc_topic("orders")])
            runs = [measure(scratch, consumer, baseline_orders, baseline_rate, seed=1),
                    measure(scratch, consumer, orders, rate, seed=2)]
            consumer.close()
        finally:
            rest.delete(connect, name)
    print(f"{'run':<9}{'orders':>8}{'rate':>8}{'achieved/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for label, run in zip(("baseline", "measured"), runs):
        print(f"{label:<9}{run['orders']:>8}{run['rate']:>8.0f}{run['achieved']:>12.0f}"
              f"{run['p50']:>9.1f}{run['p99']:>9.1f}{run['max']:>9.1f}")
    base, measured = runs
    print(f"ratio measured/baseline: p50 {measured['p50'] / base['p50']:.2f}x, "
          f"p99 {measured['p99'] / base['p99']:.2f}x")


if __name__ == "__main__":
    cli.run(main)
