"""Whole topics read into a store of the worker's own: every partition, no consumer group,
from the offsets the store keeps (Kafka Streams' global tables work this way).

For reference data every worker needs in full (tables.reference_data). The store writes
each batch's rows together with the offsets to read next, so a restart continues where the
last write ended; a new worker (empty datadir) reads the topics from the beginning. A
record that does not decode goes to the dead-letter topic once, not once per worker: the
worker that claims its offset in Redis parks it.

A worker catches up before it joins the consumer group (`catch_up`, awaited by the app as it
starts, like a table's recovery, at most READY_TIMEOUT_S), so its first orders go out
enriched and no CDC record waits in its buffers meanwhile; after that the reader follows the
topics in the background (`follow`), and reference data never holds an order back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from config import settings
from streams.codec import CodecError
from streams.runtime.metrics import counters

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
BATCH_MAX = 1000  # records decoded between two yields to the event loop
NEW_TOPICS_EVERY_S = 5.0  # a topic Debezium has not created yet is looked for again this often
DEAD_LETTER_CLAIM_TTL_S = 7 * 24 * 3600


class Store(Protocol):
    def next_offsets(self) -> dict[tuple[str, int], int]: ...
    def apply(self, rows: list, read: dict[tuple[str, int], int]) -> None: ...
    def open_dbs(self) -> list: ...  # its RocksDBs, for the worker's memory figures
    def close(self) -> None: ...


class TopicReader:
    def __init__(self, names: Sequence[str], *, decode: Callable, open_store: Callable[[], Store],
                 dead_letter: Callable[[object, str], Awaitable[None]]) -> None:
        self.names = tuple(names)
        self.decode = decode  # (topic, key, value) -> row or None; raises CodecError
        self.open_store = open_store
        self.dead_letter = dead_letter  # (record, reason): parks it, returns once the broker has it
        self.store: Store | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._claims: aioredis.Redis | None = None
        self._assigned: set[TopicPartition] = set()
        self._look_again = 0.0

    async def catch_up(self, app_id: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Read the topics to the ends they have now (at most `timeout_s`)."""
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._catch_up(app_id), timeout_s)
        except TimeoutError:
            log.warning("reference data not caught up after %.0f s; starting without what is missing "
                        "(orders of unknown customers go out with customer: null)", timeout_s)
            await self.close()  # following reopens from the offsets stored with the rows
            return
        counters["reference_caught_up_after_s"] = round(time.monotonic() - started)
        log.info("reference data caught up: %d records of %s read in %.1f s", counters["reference_records_read"],
                 ", ".join(self.names), time.monotonic() - started)

    async def follow(self, app_id: str) -> None:
        """Keep reading, for as long as the worker runs."""
        await self._open(app_id)
        try:
            while True:
                await self._step()
        finally:
            await self.close()

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            await self._claims.aclose()
            self.store.close()
            self._consumer = self._claims = self.store = None
            self._assigned = set()

    async def _catch_up(self, app_id: str) -> None:
        await self._open(app_id)
        ends = await self._consumer.end_offsets(list(self._assigned)) if self._assigned else {}
        while not all([await self._consumer.position(tp) >= end for tp, end in ends.items()]):
            await self._step()

    async def _open(self, app_id: str) -> None:
        if self._consumer is not None:
            return
        self.store = self.open_store()
        self._consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap,
                                          **settings.kafka_aiokafka_auth("stream"), group_id=None,
                                          client_id=f"{app_id}-reference-reader", enable_auto_commit=False,
                                          auto_offset_reset="earliest")
        self._claims = aioredis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
        await self._consumer.start()
        await self._assign()

    async def _step(self) -> None:
        if not self._assigned:  # aiokafka's getmany waits for an assignment that never comes
            await asyncio.sleep(max(0.0, self._look_again - time.monotonic()))
            await self._assign()
            return
        batches = await self._consumer.getmany(timeout_ms=500, max_records=BATCH_MAX)
        if batches:
            await self._apply(batches)
        if time.monotonic() > self._look_again:
            await self._assign()

    async def _assign(self) -> None:
        """Every partition of the topics that exist now; a new one is read from the stored offset."""
        consumer = self._consumer
        self._look_again = time.monotonic() + NEW_TOPICS_EVERY_S
        await consumer._client.force_metadata_update()
        found = {TopicPartition(name, p) for name in self.names for p in consumer.partitions_for_topic(name) or ()}
        if found == self._assigned:
            return
        positions = {tp: await consumer.position(tp) for tp in self._assigned}
        consumer.assign(sorted(found))
        stored = self.store.next_offsets()
        for tp in found:
            offset = positions.get(tp, stored.get((tp.topic, tp.partition)))
            if offset is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        self._assigned = found

    async def _apply(self, batches: dict) -> None:
        rows, read = [], {}
        for tp, records in batches.items():
            for record in records:
                try:
                    row = self.decode(record.topic, record.key, record.value)
                except CodecError as error:
                    await self._dead_letter_once(record, str(error))
                    continue
                if row is not None:
                    rows.append(row)
            read[(tp.topic, tp.partition)] = records[-1].offset + 1
        self.store.apply(rows, read)
        counters["reference_records_read"] += sum(len(records) for records in batches.values())

    async def _dead_letter_once(self, record, reason: str) -> None:
        key = f"dead_letter_claim:{record.topic}:{record.partition}:{record.offset}"
        if await self._claims.set(key, b"1", nx=True, ex=DEAD_LETTER_CLAIM_TTL_S):
            await self.dead_letter(record, reason)
        else:
            counters["reference_dead_letters_by_another_worker"] += 1
