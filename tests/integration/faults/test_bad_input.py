"""The CDC topics fuzzed while real orders flow: every record is either processed or
dead-lettered with its reason, the workers keep running, and the real orders still
complete exactly once."""

from __future__ import annotations

import random
import uuid

import orjson
from confluent_kafka import Consumer, Producer

from tests.integration.faults.injection import FaultRow, cdc_records, collect
from tests.integration.scratch_stream import scratch_stream, uncommitted, write_orders

SOURCE = {"file": "mysql-bin.000001", "pos": 4, "row": 0, "ts_ms": 0}
ORDER_ID = str(uuid.uuid4())


def envelope(op, after=None, before=None, source=SOURCE) -> bytes:
    return orjson.dumps({"op": op, "after": after, "before": before, "source": source})


ORDER = {"id": ORDER_ID, "customer_id": 1, "payment_method_id": 1, "num_products": 1}
DETAIL = {"order_id": ORDER_ID, "product_id": 1, "quantity": 1}
# (table, key, value): each one must be dead-lettered
MALFORMED = {
    "invalid JSON": ("orders", ORDER_ID, b"{nope"),
    "binary garbage": ("order_details", ORDER_ID, bytes(range(256))),
    "empty value": ("orders", ORDER_ID, b""),
    "a JSON list": ("orders", ORDER_ID, b"[1, 2, 3]"),
    "a JSON string": ("order_details", ORDER_ID, b'"c"'),
    "unknown op": ("orders", ORDER_ID, envelope("x", after=ORDER)),
    "no op": ("order_details", ORDER_ID, orjson.dumps({"after": DETAIL, "source": SOURCE})),
    "no source": ("orders", ORDER_ID, orjson.dumps({"op": "c", "after": ORDER})),
    "no row image": ("order_details", ORDER_ID, envelope("c")),
    "num_products a string": ("orders", ORDER_ID, envelope("c", after={**ORDER, "num_products": "3"})),
    "customer_id a float": ("orders", ORDER_ID, envelope("u", after={**ORDER, "customer_id": 1.5})),
    "product_id missing": ("order_details", ORDER_ID, envelope("c", after={"order_id": ORDER_ID, "quantity": 1})),
    "quantity a list": ("order_details", ORDER_ID, envelope("c", after={**DETAIL, "quantity": [1]})),
    "order id missing": ("orders", ORDER_ID, envelope("c", after={k: v for k, v in ORDER.items() if k != "id"})),
    "hostile order id": ("orders", "x", envelope("c", after={**ORDER, "id": "'; DROP TABLE orders; --"})),
    "key of another order": ("order_details", str(uuid.uuid4()), envelope("c", after=DETAIL)),
    "oversized id": ("orders", ORDER_ID, envelope("c", after={**ORDER, "id": "a" * 500_000})),
    "oversized junk": ("order_details", ORDER_ID, orjson.dumps({"op": "c", "junk": "x" * 900_000})),
    "nested 20,000 deep": ("orders", ORDER_ID, b'{"op":"c","after":' + b'{"a":' * 20_000 + b"1" + b"}" * 20_001),
}
COPIES = 3


OUTCOMES = ("order_changes", "detail_changes", "tombstones", "truncates", "dead_lettered")


def test_fuzzed_cdc_records_are_dead_lettered_and_every_record_is_accounted_for(
        settings, unique_name, fault_table):
    with scratch_stream(settings, unique_name, workers=2, web_port=16120) as (scratch, workers):
        pids = [worker.pid() for worker in workers]
        injected = inject_malformed(scratch, random.Random(7))
        manifest = write_orders(scratch, 600, rate=0)
        outcome = collect(scratch, manifest, timeout_s=180)
        dead = dead_letters(scratch, len(injected))
        records = cdc_records(scratch)
        unread = uncommitted(scratch)  # offsets are committed only after processing
        counts = [worker.stats()["counts"] for worker in workers]
        still_running = [worker.pid() for worker in workers]

    fault_table.append(FaultRow("malformed CDC records", len(injected), 600, sum(outcome.audit.duplicates.values()),
                                len(outcome.audit.missing), outcome.longest_pause_s))
    assert unread == {}, f"CDC records never processed: {unread}"
    assert set(dead) == set(injected), "dead letters differ from the records injected"
    assert all(dead[at]["reason"] for at in dead)
    # Processing is at-least-once: a rebalance re-delivers records since the last commit,
    # and each delivery, first or not, must end in exactly one outcome.
    for worker_counts in counts:
        taken_in = worker_counts.get("events_in", 0)
        assert taken_in == sum(worker_counts.get(name, 0) for name in OUTCOMES), worker_counts
    events_in = sum(c.get("events_in", 0) for c in counts)
    assert events_in >= records, f"{records} CDC records, {events_in} taken in: {counts}"
    assert sum(c.get("dead_lettered", 0) for c in counts) >= len(injected)
    assert outcome.exact, outcome.summary()
    assert still_running == pids, "a worker was restarted or died"


def inject_malformed(settings, chooser: random.Random) -> list[tuple[str, int, int]]:
    """Produce COPIES of every malformed record to random partitions; their (topic, partition, offset)."""
    producer = Producer({**settings.kafka_client_config(), "message.max.bytes": 2_000_000})
    where: list[tuple[str, int, int]] = []

    def delivered(error, message) -> None:
        assert error is None, error
        where.append((message.topic(), message.partition(), message.offset()))

    cases = [case for case in MALFORMED.values() for _ in range(COPIES)]
    chooser.shuffle(cases)
    for table, key, value in cases:
        producer.produce(settings.cdc_topic(table), key=orjson.dumps(key), value=value,
                         partition=chooser.randrange(settings.topic_partitions), on_delivery=delivered)
        producer.poll(0)
    producer.flush(30)
    assert len(where) == len(cases)
    return where


def dead_letters(settings, expected: int) -> dict[tuple[str, int, int], dict]:
    """Dead letters by the (topic, partition, offset) of the record they stand for."""
    found: dict[tuple[str, int, int], dict] = {}
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"dlq-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.dead_letter_topic])
    try:
        for _ in range(120):
            for message in consumer.consume(500, timeout=0.5):
                if message.error():
                    continue
                headers = {name: value.decode() for name, value in message.headers() or []}
                found[(headers["topic"], int(headers["partition"]), int(headers["offset"]))] = headers
            if len(found) >= expected:
                break
    finally:
        consumer.close()
    return found
