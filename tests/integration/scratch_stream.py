"""A stream of a test's own: scratch database, connector, topics, consumer group, workers.

Shared by every test that runs Faust workers end to end (completion, dashboard, faults).
"""

from __future__ import annotations

import random
import time
import uuid
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, TopicPartition

from cdc import rest
from cdc.connector import connector_config, server_id
from cdc.topics import TopicMissing, read_to_end, read_topics, wait_for_records
from config import Settings
from source import database, generate
from source.traffic import ChaosMix, InsertDetail, InsertOrder, Truth, plan
from stack.services import make_cdc_topics, super_user_admin
from stack.workers import Worker, start_workers, wait_for_group
from tests.integration.waiting import wait_for

CUSTOMERS = 2000
CHAOS = ChaosMix(0.1, 0.05, 0.1, 0.05)
SENTINELS: dict[str, set[str]] = {}  # per stream: orders written only to show its workers went past a point
LAST_STATS: dict[str, dict[str, dict | None]] = {}  # per test name: its workers' /stats as they were stopped


@contextmanager
def scratch_stream(settings: Settings, name: str, workers: int = 2, web_port: int = 16066,
                   **overrides) -> Iterator[tuple[Settings, list[Worker]]]:
    """Yield scratch settings and `workers` running Faust workers; stop and delete after."""
    with database.scratch_database(settings, name) as scratch:
        scratch = scratch.model_copy(update={  # named after the stack's own: its Kafka ACLs cover them
            "stream_app_id": f"{settings.stream_app_id}-{name}", "order_final_topic": f"{settings.order_final_topic}_{name}",
            "order_alerts_topic": f"{settings.order_alerts_topic}_{name}",
            "dead_letter_topic": f"{settings.dead_letter_topic}_{name}", "faust_web_port": web_port, **overrides})
        db = database.connect(scratch)
        database.apply_schema(db)
        database.load_reference(db, CUSTOMERS, seed=3, progress=False)
        make_cdc_topics(super_user_admin(scratch), scratch)  # as `stack up` makes the stack's own
        connect = rest.client(scratch)
        connector = scratch.cdc_connector_name
        rest.put_config(connect, connector, connector_config(scratch, **{"database.server.id": server_id(connector)}))
        running: list[Worker] = []
        try:  # a set-up that fails leaves no connector (it would loop on the dropped database) nor worker
            rest.wait_running(connect, connector)
            # the workers read the reference data before they join (streams.runtime.reference_reader):
            # let Debezium's snapshot of it be there first, so every order is enriched
            wait_for_records(scratch, scratch.cdc_topic("customers"), CUSTOMERS, timeout_s=120, progress=False)
            running += start_workers(scratch, workers) if workers else []
            if running:
                wait_for_group(scratch, running)
            yield scratch, running
        finally:
            LAST_STATS[name] = {worker.name: worker.stats() for worker in running}  # shown if the test fails
            for worker in running:
                worker.stop()
            with rest.client(current_rest_login(scratch)) as connect_now:
                rest.delete(connect_now, connector)


def current_rest_login(settings: Settings) -> Settings:
    """`settings` with Kafka Connect's REST password as the stack's secrets file has it now (a test
    may have rotated it)."""
    now = Settings(STACK_HOME=str(settings.stack_home)).kafka_connect_rest_password
    return settings.model_copy(update={"kafka_connect_rest_password": now or settings.kafka_connect_rest_password})


def fresh_seed() -> int:
    """Order ids follow from the seed, and Redis remembers every id ever sent: never reuse one."""
    return random.SystemRandom().randrange(2**31)


def write_orders(settings: Settings, orders: int, rate: float, seed: int | None = None) -> dict:
    """Write `orders` chaotic orders at `rate` orders/s (0 = full speed); the manifest."""
    truth = Truth()
    writes = plan(orders, seed=fresh_seed() if seed is None else seed, customers=CUSTOMERS, chaos=CHAOS)
    generate.run(database.connect(settings), writes, total_orders=orders, rate=rate, truth=truth,
                 progress=False)
    return truth.manifest()


def order_final(settings: Settings, expected: int, workers, timeout_s: float = 180,
                manifest: dict | None = None) -> list[dict]:
    """order_final's values (sentinels left out) once `expected` have arrived and the workers
    went past everything written so far, so a duplicate would be there too. With the
    manifest, a failure shows what the workers hold for a few missing orders."""
    try:
        read_topics(settings, [settings.order_final_topic], timeout_s=timeout_s,
                    until=lambda messages: sum(m.value["order_id"] not in sentinels(settings) for m in messages) >= expected)
    except TimeoutError as error:
        pytest.fail(f"{error}; expected {expected}; workers: {[w.stats() for w in workers]}"
                    f"{missing_orders(settings, workers, manifest)}")
    go_past(settings)
    return order_final_values(settings)


def order_final_values(settings: Settings) -> list[dict]:
    """order_final's values now, sentinel orders left out."""
    return [m.value for m in read_to_end(settings, settings.order_final_topic)
            if m.value["order_id"] not in sentinels(settings)]


def sentinels(settings: Settings) -> set[str]:
    """The sentinel orders written into this stream so far (`go_past`)."""
    return SENTINELS.get(settings.stream_app_id, set())


def order_id_in(partition: int, partitions: int) -> str:
    """A fresh order id that Kafka's default partitioner puts in `partition`."""
    while partition_of(order_id := str(uuid.uuid4()), partitions) != partition:
        pass
    return order_id


def go_past(settings: Settings, *, stalled: bool = False, timeout_s: float = 120) -> set[str]:
    """Write a sentinel order into every partition and wait for what it raises: its order_final,
    or with `stalled` (one of its two products) its stalled alert. Until then the workers have
    not processed every record written before it, nor, for a stalled one, run an alert check
    after them: an absence asserted before this could be a stalled worker's. Returns the ids."""
    connection = database.connect(settings)
    cursor = connection.cursor()
    sentinels = {order_id_in(partition, settings.topic_partitions) for partition in range(settings.topic_partitions)}
    SENTINELS.setdefault(settings.stream_app_id, set()).update(sentinels)
    for order_id in sorted(sentinels):  # the detail first: complete at its header, it needs no settle tick
        generate.execute(cursor, InsertDetail(order_id, 1, 1))
        generate.execute(cursor, InsertOrder(order_id, 1, 1, 1, 2 if stalled else 1))
    topic = settings.order_alerts_topic if stalled else settings.order_final_topic

    def raised() -> set[str]:
        try:
            return {m.value["order_id"] for m in read_to_end(settings, topic)} & sentinels
        except TopicMissing:  # no worker has sent to it yet
            return set()
    assert wait_for(lambda: raised() == sentinels, timeout_s=timeout_s), \
        f"sentinel orders {sorted(sentinels - raised())} not in {topic} after {timeout_s:.0f} s: a worker is stuck"
    return sentinels


def missing_orders(settings: Settings, workers, manifest: dict | None, shown: int = 5) -> str:
    """The first missing orders, each with its partition and the state a worker holds for it."""
    if manifest is None or not workers:
        return ""
    sent = {m.value["order_id"] for m in read_to_end(settings, settings.order_final_topic)}
    missing = sorted(set(manifest["complete"]) - sent)
    lines = [f"\n{len(missing)} complete orders missing, e.g.:"]
    for order_id in missing[:shown]:
        answer = httpx.get(f"{workers[0].url}/orders/{order_id}", timeout=5, follow_redirects=True)
        lines.append(f"  {order_id} partition {partition_of(order_id, settings.topic_partitions)}: "
                     f"{answer.status_code} {answer.text[:300]}; truth {manifest['complete'][order_id]}")
    return "\n".join(lines)


def partition_of(order_id: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the order's JSON key."""
    every = list(range(partitions))
    return DefaultPartitioner()(f'"{order_id}"'.encode(), every, every)


def uncommitted(settings: Settings, timeout_s: float = 30) -> dict[str, int]:
    """CDC records past the workers' committed offsets, per topic-partition, once every one
    is committed or `timeout_s` passed: {} means the group has committed everything."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": settings.stream_app_id,
                         "enable.auto.commit": False})
    partitions = [TopicPartition(settings.cdc_topic(table), p)
                  for table in ("orders", "order_details") for p in range(settings.topic_partitions)]
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            behind = {}
            for tp in consumer.committed(partitions, timeout=10):
                end = consumer.get_watermark_offsets(tp, timeout=10)[1]
                if end > max(tp.offset, 0):
                    behind[f"{tp.topic}[{tp.partition}]"] = end - max(tp.offset, 0)
            if not behind or time.monotonic() > deadline:
                return behind
            time.sleep(0.5)
    finally:
        consumer.close()

