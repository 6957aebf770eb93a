"""The reference reader against the real broker: topics that appear after the worker started
are found and read; a restart reads on from the offsets stored with the rows."""

from __future__ import annotations

import asyncio

import orjson
from confluent_kafka import Producer

from cdc.connector import CDC_TOPIC_PREFIX
from streams import topics
from streams.codec import ReferenceRow
from streams.runtime.reference_reader import NEW_TOPICS_EVERY_S, TopicReader
from tables.reference_data import ReferenceData


def customer(row_id: int, city: str) -> bytes:
    row = {"id": row_id, "name": f"n{row_id}", "email": f"e{row_id}@x", "city": city}
    return orjson.dumps({"op": "c", "after": row, "source": {"file": "b.000001", "pos": 4, "ts_ms": 0}})


def reader_of(topic: str, path) -> TopicReader:
    def decode(_topic, key, value):
        payload = orjson.loads(value)["after"]
        return ReferenceRow("customers", payload["id"], {k: payload[k] for k in ("name", "email", "city")})
    return TopicReader([topic], decode=decode, open_store=lambda: ReferenceData(path), dead_letter=topics.dead_letter)


def produce(settings, topic: str, rows: dict[int, str]) -> None:
    producer = Producer(settings.kafka_client_config())
    for row_id, city in rows.items():
        producer.produce(topic, key=orjson.dumps({"id": row_id}), value=customer(row_id, city))
    assert producer.flush(30) == 0


def test_a_topic_created_after_the_start_is_read_and_a_restart_reads_on(settings, unique_name, tmp_path):
    topic = f"{CDC_TOPIC_PREFIX}{unique_name}.customers"  # a CDC topic's name: the workers' user reads those

    async def first_run():
        reader = reader_of(topic, tmp_path / "store")
        await reader.catch_up("test", timeout_s=10)  # nothing there yet: caught up at once
        following = asyncio.ensure_future(reader.follow("test"))
        await asyncio.sleep(1)
        produce(settings, topic, {1: "Lyon", 2: "Oslo"})
        for _ in range(int(NEW_TOPICS_EVERY_S * 4 + 20)):
            if reader.store.count("customers") == 2:
                break
            await asyncio.sleep(0.5)
        found = reader.store.count("customers")
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        return found

    async def second_run():
        produce(settings, topic, {1: "Rome"})
        reader = reader_of(topic, tmp_path / "store")
        await reader.catch_up("test", timeout_s=30)
        city = orjson.loads(orjson.dumps(reader.store.customer(1)))["city"]
        await reader.close()
        return city

    assert asyncio.run(first_run()) == 2
    assert asyncio.run(second_run()) == "Rome"
