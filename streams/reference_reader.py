"""Whole topics read into a store of the worker's own: every partition, no consumer group,
from the offsets the store keeps (Kafka Streams' global tables work this way).

For reference data every worker needs in full (tables.reference_data). The store writes
each batch's rows together with the offsets to read next, so a restart continues where the
last write ended; a new worker (empty datadir) reads the topics from the beginning. A
record that does not decode goes to the dead-letter topic once, not once per worker: the
worker that claims its offset in Redis parks it.

`caught_up` is set when the topics have been read to the ends they had when reading began:
the agent waits for it (up to `READY_TIMEOUT_S`) before its first batch, so a starting
worker emits enriched orders; after that, reference data never holds an order back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from config import settings
from streams import topics
from streams.codec import CodecError
from streams.metrics import counters

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
BATCH_MAX = 1000  # records decoded between two yields to the event loop
NEW_TOPICS_EVERY_S = 5.0  # a topic Debezium has not created yet is looked for again this often
DEAD_LETTER_CLAIM_TTL_S = 7 * 24 * 3600


class Store(Protocol):
    def next_offsets(self) -> dict[tuple[str, int], int]: ...
    def apply(self, rows: list, read: dict[tuple[str, int], int]) -> None: ...
    def close(self) -> None: ...


class TopicReader:
    def __init__(self, names: Sequence[str], *, decode: Callable, open_store: Callable[[], Store]) -> None:
        self.names = tuple(names)
        self.decode = decode  # (topic, key, value) -> row or None; raises CodecError
        self.open_store = open_store
        self.store: Store | None = None
        self.caught_up = asyncio.Event()
        self.running = False

    async def ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until the first read has caught up (at once if the reader is not running)."""
        if not self.running or self.caught_up.is_set():
            return
        try:
            await asyncio.wait_for(self.caught_up.wait(), timeout_s)
        except TimeoutError:
            log.warning("reference data not caught up after %.0f s; emitting without what is missing", timeout_s)

    async def run(self, app_id: str) -> None:
        self.running = True
        self.store = self.open_store()
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                    client_id=f"{app_id}-reference-reader", enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        claims = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        await consumer.start()
        try:
            await self._read(consumer, claims)
        finally:
            await consumer.stop()
            await claims.aclose()
            self.store.close()

    async def _read(self, consumer: AIOKafkaConsumer, claims: aioredis.Redis) -> None:
        started = time.monotonic()
        assigned = await self._assign(consumer, set())
        ends = await consumer.end_offsets(list(assigned)) if assigned else {}
        rows_read, look_again = 0, time.monotonic() + NEW_TOPICS_EVERY_S
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=BATCH_MAX)
            if batches:
                rows_read += await self._apply(batches, claims)
            if not self.caught_up.is_set() and all([await consumer.position(tp) >= end for tp, end in ends.items()]):
                self.caught_up.set()
                counters["reference_caught_up_after_s"] = round(time.monotonic() - started)
                log.info("reference data caught up: %d records of %s read in %.1f s", rows_read,
                         ", ".join(self.names), time.monotonic() - started)
            if time.monotonic() > look_again:
                assigned = await self._assign(consumer, assigned)
                look_again = time.monotonic() + NEW_TOPICS_EVERY_S

    async def _assign(self, consumer: AIOKafkaConsumer, assigned: set[TopicPartition]) -> set[TopicPartition]:
        """Every partition of the topics that exist now; a new one is read from the stored offset."""
        await consumer._client.force_metadata_update()
        found = {TopicPartition(name, p) for name in self.names for p in consumer.partitions_for_topic(name) or ()}
        if found == assigned:
            return assigned
        positions = {tp: await consumer.position(tp) for tp in assigned}
        consumer.assign(sorted(found))
        stored = self.store.next_offsets()
        for tp in found:
            offset = positions.get(tp, stored.get((tp.topic, tp.partition)))
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        return found

    async def _apply(self, batches: dict, claims: aioredis.Redis) -> int:
        rows, read = [], {}
        for tp, records in batches.items():
            for record in records:
                try:
                    row = self.decode(record.topic, record.key, record.value)
                except CodecError as error:
                    await self._dead_letter_once(record, str(error), claims)
                    continue
                if row is not None:
                    rows.append(row)
            read[(tp.topic, tp.partition)] = records[-1].offset + 1
        self.store.apply(rows, read)
        n = sum(len(records) for records in batches.values())
        counters["reference_records_read"] += n
        return n

    async def _dead_letter_once(self, record, reason: str, claims: aioredis.Redis) -> None:
        key = f"dead_letter_claim:{record.topic}:{record.partition}:{record.offset}"
        if await claims.set(key, b"1", nx=True, ex=DEAD_LETTER_CLAIM_TTL_S):
            await topics.dead_letter(record, reason)
        else:
            counters["reference_dead_letters_by_another_worker"] += 1
