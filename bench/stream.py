"""The stream's speed: events/s per worker (1 and 2 workers), end-to-end latency, worker RSS.

    python -m bench.stream [--orders 20000] [--latency-orders 10000 --rate 1000]

Everything runs in a scratch database with its own connector, topics and consumer groups.
- Throughput: the CDC topics are filled first; then the same events are read by a plain
  confluent-kafka consumer that only decodes JSON (the baseline, same process), by one
  Faust worker, and by two. events/s counts CDC records (orders + order_details).
- Latency: two workers run; orders are written at a steady rate; for each completed order,
  its last write's commit (wall clock, taken by the writer right after COMMIT) to its
  order_final append (broker LogAppendTime). The CDC share (commit to the CDC record's
  append) is measured in the same run.
- RSS: each worker's resident memory at the end (psutil).
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
import time
import uuid
from typing import Annotated

import orjson
import psutil
import redis
import typer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cdc import rest
from cdc.connector import CDC_TABLES, connector_config, server_id
from cdc.topics import read_topics
from config import Settings, settings
from source import database, generate
from source.audit import audit
from agents.guard import KEY
from source.traffic import ChaosMix, InsertOrder, Truth, plan
from stack.workers import Worker, start_workers

CUSTOMERS = 10_000


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def prepare(scratch: Settings) -> None:
    db = database.connect(scratch)
    database.apply_schema(db)
    database.load_reference(db, CUSTOMERS, seed=1, progress=False)
    append_time = {"message.timestamp.type": "LogAppendTime"}
    topics = [NewTopic(scratch.cdc_topic(t), scratch.topic_partitions, 1, config=append_time) for t in CDC_TABLES]
    topics.append(NewTopic(scratch.order_final_topic, scratch.topic_partitions, 1, config=append_time))
    admin = AdminClient({"bootstrap.servers": scratch.kafka_bootstrap})  # must outlive its futures
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    connect = rest.client(scratch.kafka_connect_url)
    name = scratch.cdc_connector_name
    rest.put_config(connect, name, connector_config(scratch, **{"database.server.id": server_id(name)}))
    rest.wait_running(connect, name)


def end_offsets(scratch: Settings, tables=("orders", "order_details")) -> int:
    consumer = Consumer({"bootstrap.servers": scratch.kafka_bootstrap, "group.id": "bench-offsets"})
    total = 0
    for table in tables:
        for p in range(scratch.topic_partitions):
            total += consumer.get_watermark_offsets(TopicPartition(scratch.cdc_topic(table), p), timeout=10)[1]
    consumer.close()
    return total


def wait_topics_still(scratch: Settings) -> int:
    """Wait until the CDC topics stop growing; their record count."""
    last, still_since = -1, time.monotonic()
    while time.monotonic() - still_since < 3:
        now = end_offsets(scratch)
        if now != last:
            last, still_since = now, time.monotonic()
        time.sleep(0.5)
    return last


def baseline_events_per_s(scratch: Settings, total: int) -> float:
    consumer = Consumer({"bootstrap.servers": scratch.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([scratch.cdc_topic("orders"), scratch.cdc_topic("order_details")])
    seen, started = 0, None
    while seen < total:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error():
                continue
            started = started or time.monotonic()
            if message.value() is not None:
                orjson.loads(message.value())
            seen += 1
    consumer.close()
    return seen / (time.monotonic() - started)


def forget_emissions(scratch: Settings, order_ids: list[str]) -> None:
    """Clear the Redis guard of these orders, so the next run emits them afresh."""
    client = redis.Redis.from_url(scratch.redis_url)
    for start in range(0, len(order_ids), 1000):
        client.delete(*(KEY.format(order_id=o) for o in order_ids[start:start + 1000]))


def faust_events_per_s(scratch: Settings, workers_count: int, total: int) -> tuple[float, list[float]]:
    """events/s of `workers_count` fresh workers reading `total` CDC records; their RSS (MB)."""
    group = scratch.model_copy(update={"stream_app_id": f"{scratch.stream_app_id}-tp{workers_count}",
                                       "order_final_topic": f"{scratch.order_final_topic}-tp{workers_count}"})
    workers = start_workers(group, workers_count)
    try:
        started = None
        while True:
            counts = [w.stats()["counts"] for w in workers]
            seen = sum(c.get("events_in", 0) for c in counts)
            if seen and started is None:
                started = time.monotonic()
            if seen >= total:
                rate = seen / (time.monotonic() - started)
                return rate, [psutil.Process(w.pid()).memory_info().rss / 2**20 for w in workers]
            time.sleep(0.1)
    finally:
        for worker in workers:
            worker.stop()


def latency(scratch: Settings, orders: int, rate: float) -> dict:
    workers = start_workers(scratch, 2)
    try:
        return measure_latency(scratch, workers, orders, rate)
    finally:
        for worker in workers:
            worker.stop()


def measure_latency(scratch: Settings, workers: list[Worker], orders: int, rate: float) -> dict:
    time.sleep(5)  # let the group settle before the clock starts
    committed: dict[str, float] = {}
    writes = plan(orders, seed=int(time.time()), customers=CUSTOMERS, chaos=ChaosMix())

    def on_commit(write) -> None:
        committed[write.order_id] = time.time() * 1000

    truth = Truth()
    generate.run(database.connect(scratch), writes, total_orders=orders, rate=rate, truth=truth,
                 progress=False, on_commit=on_commit)
    manifest = truth.manifest()
    expected = manifest["counts"]["complete"]
    # The workers also emit the throughput runs' orders (they read the topics from the start).
    def mine(messages):
        return [m for m in messages if m.value["order_id"] in committed]

    finals = mine(read_topics(scratch, [scratch.order_final_topic],
                              until=lambda m: len(mine(m)) >= expected, timeout_s=300))
    consumer = Consumer({"bootstrap.servers": scratch.kafka_bootstrap, "group.id": f"bench-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe([scratch.cdc_topic("orders"), scratch.cdc_topic("order_details")])
    cdc_append: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(cdc_append) < len(committed) and time.monotonic() < deadline:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error() or message.value() is None:
                continue
            event = orjson.loads(message.value())
            row = event["before"] if event["op"] == "d" else event["after"]
            order_id = row.get("order_id") or row.get("id")
            cdc_append[order_id] = max(cdc_append.get(order_id, 0), message.timestamp()[1])
    consumer.close()
    end_to_end = [m.timestamp_ms - committed[m.value["order_id"]] for m in finals]
    cdc_share = [cdc_append[m.value["order_id"]] - committed[m.value["order_id"]] for m in finals]
    result = audit(manifest, [m.value for m in finals])
    rss = [psutil.Process(w.pid()).memory_info().rss / 2**20 for w in workers]
    return {"e2e": percentiles(end_to_end), "cdc": percentiles(cdc_share), "audit": result.summary(),
            "rss": rss, "orders": orders, "rate": rate}


def isolated(suffix: str):
    """A scratch database with its own connector, topics, consumer group and web ports."""
    @contextmanager
    def scope():
        with database.scratch_database(settings, suffix) as scratch:
            scratch = scratch.model_copy(update={"stream_app_id": f"orderpipe-{suffix}",
                                                 "order_final_topic": f"order_final_{suffix}",
                                                 "dead_letter_topic": f"dead_letters_{suffix}",
                                                 "faust_web_port": 17066})
            prepare(scratch)
            try:
                yield scratch
            finally:
                rest.delete(rest.client(scratch.kafka_connect_url), scratch.cdc_connector_name)
    return scope()


def main(
    orders: Annotated[int, typer.Option(help="Orders pre-filled for the throughput runs.")] = 20_000,
    latency_orders: Annotated[int, typer.Option(help="Orders in the latency run.")] = 10_000,
    rate: Annotated[float, typer.Option(help="Orders/s in the latency run.")] = 1000,
) -> None:
    """Measure the stream: events/s per worker (baseline, 1 and 2 workers), latency, RSS."""
    run = uuid.uuid4().hex[:8]
    with isolated(f"bench_{run}_tp") as scratch:
        writes = plan(orders, seed=int(time.time()), customers=CUSTOMERS, chaos=ChaosMix())
        generate.run(database.connect(scratch), writes, total_orders=orders, rate=0, truth=Truth(),
                     progress=False)
        order_ids = [w.order_id for w in writes if isinstance(w, InsertOrder)]
        total = wait_topics_still(scratch)
        print(f"throughput: {total:,} CDC records (orders + order_details) from {orders:,} orders")
        base = baseline_events_per_s(scratch, total)
        print(f"  baseline: plain consumer + JSON decode   {base:>9,.0f} events/s")
        for count in (1, 2):
            forget_emissions(scratch, order_ids)
            rate_all, rss = faust_events_per_s(scratch, count, total)
            print(f"  faust, {count} worker(s):                 {rate_all:>9,.0f} events/s in all, "
                  f"{rate_all / count:,.0f} per worker ({rate_all / count / base:.2f}x baseline); "
                  f"RSS {', '.join(f'{r:.0f}' for r in rss)} MB")
    with isolated(f"bench_{run}_lat") as scratch:
        result = latency(scratch, latency_orders, rate)
    print(f"latency at {result['rate']:.0f} orders/s over {result['orders']:,} orders, 2 workers: "
          f"commit -> order_final p50 {result['e2e'][0]:.0f} ms, p99 {result['e2e'][1]:.0f} ms; "
          f"of which commit -> CDC record p50 {result['cdc'][0]:.0f} ms, p99 {result['cdc'][1]:.0f} ms "
          f"(ratio p99 {result['e2e'][1] / result['cdc'][1]:.2f}x)")
    print(f"  audit: {result['audit']}; worker RSS {', '.join(f'{r:.0f}' for r in result['rss'])} MB")


if __name__ == "__main__":
    typer.run(main)
