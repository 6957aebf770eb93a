"""The fast lane's Kafka side: the CDC topics read with one confluent-kafka consumer for the life
of the process, each partition from the offset the archive says comes next (no consumer group:
the archive's Delta transaction ids are the committed offsets), in micro-batches that start as
soon as records arrive."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from batch.clocks import MAX_BATCH_BYTES
from batch.fastlane.archive import Record
from config import Settings

log = logging.getLogger("batch")
Partition = tuple[str, int]
# librdkafka's own lines below this level are dropped: a transient broker error it recovers
# from by itself is no news (an error that stops the lane raises; the lag shows one that lasts).
LIBRDKAFKA_LOG_LEVEL = logging.CRITICAL
REFUSALS = ("TOPIC_AUTHORIZATION_FAILED", "_AUTHENTICATION")  # errors no retry mends: the lane stops


def record_bytes(record: Record) -> int:
    return len(record.key or b"") + len(record.value or b"")


class Waiting:
    """Records read and not handed on yet, in the order they came."""

    def __init__(self) -> None:
        self.records: deque[Record] = deque()
        self.bytes = 0
        self.capped = False  # whether the last micro-batch taken stopped at a cap (more may follow at once)

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: Record) -> None:
        self.records.append(record)
        self.bytes += record_bytes(record)

    def full(self, max_records: int, max_bytes: int) -> bool:
        return len(self.records) >= max_records or self.bytes >= max_bytes

    def take(self, max_records: int, max_bytes: int) -> list[Record]:
        """The next micro-batch: at most `max_records` and `max_bytes` of keys and values, and at
        least one record (one larger than the cap goes alone); the rest wait for the one after."""
        taken: list[Record] = []
        size = 0
        while self.records and len(taken) < max_records:
            next_size = record_bytes(self.records[0])
            if taken and size + next_size > max_bytes:
                break
            taken.append(self.records.popleft())
            size += next_size
        self.bytes -= size
        self.capped = bool(self.records) or len(taken) >= max_records or size >= max_bytes
        return taken


class CdcSource:
    """The CDC topics `topics`, every partition assigned at `start_at(partitions)` (the next
    offset of each, or None for the partition's beginning); topics and partitions that appear
    later are picked up as they do."""

    def __init__(self, settings: Settings, topics: Iterable[str],
                 start_at: Callable[[list[Partition]], dict[Partition, int | None]]) -> None:
        self.topics, self.start_at = tuple(topics), start_at
        logger = logging.getLogger("batch.librdkafka")
        logger.setLevel(LIBRDKAFKA_LOG_LEVEL)
        self.consumer = Consumer({
            **settings.kafka_client_config("lake"), "group.id": "orderpipe-lake-fast-lane",
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "enable.partition.eof": False, "fetch.wait.max.ms": 100, "logger": logger})
        self.assigned: set[Partition] = set()
        self.next: dict[Partition, int | None] = {}  # the next offset to hand on (None: the partition's start)
        self.waiting = Waiting()  # read, beyond the last micro-batch's caps
        self.listed_at = 0.0

    def assign_new(self, every_s: float = 5.0) -> None:
        """Assign partitions not assigned yet (a topic Debezium created since, say)."""
        if time.monotonic() - self.listed_at < every_s:
            return
        self.listed_at = time.monotonic()
        metadata = self.consumer.list_topics(timeout=10)
        found = [(topic, partition) for topic in self.topics if topic in metadata.topics
                 and metadata.topics[topic].error is None for partition in metadata.topics[topic].partitions]
        new = sorted(set(found) - self.assigned)
        if not new:
            return
        starts = self.start_at(new)
        self.next.update({partition: starts.get(partition) for partition in new})
        self.consumer.incremental_assign([
            TopicPartition(topic, partition, OFFSET_BEGINNING if starts.get((topic, partition)) is None
                           else starts[(topic, partition)]) for topic, partition in new])
        self.assigned |= set(new)
        log.info("fast lane: reading %s", ", ".join(f"{topic}[{partition}]" for topic, partition in new))

    def poll(self, max_records: int, linger_s: float, wait_s: float, max_bytes: int = MAX_BATCH_BYTES) -> list[Record]:
        """A micro-batch: records once any arrive (waiting up to `wait_s` for the first, or for
        more when some wait from the last poll), then what else comes within `linger_s`, at most
        `max_records` and `max_bytes` of keys and values (what the lane holds while it applies a
        micro-batch grows with them). What is read past a cap waits for the next poll: up to one
        `consume` call's records beyond the cap."""
        self.assign_new()
        deadline = time.monotonic() + wait_s
        while not self.waiting.full(max_records, max_bytes):
            timeout = max(deadline - time.monotonic(), 0)
            for message in self.consumer.consume(num_messages=min(max_records - len(self.waiting), 10_000),
                                                 timeout=timeout):
                error = message.error()
                if error is not None:
                    if error.fatal() or error.name() in REFUSALS:
                        raise RuntimeError(f"the fast lane cannot read the CDC topics: {error.str()}")
                    continue
                kind, stamp = message.timestamp()
                self.waiting.add(Record(message.topic(), message.partition(), message.offset(), message.key(),
                                        message.value(), stamp if kind else None))
            if self.waiting and deadline > time.monotonic() + linger_s:
                deadline = time.monotonic() + linger_s  # records came: a short linger, then the batch
            if time.monotonic() >= deadline:
                break
        records = self.waiting.take(max_records, max_bytes)
        for record in records:
            self.next[(record.topic, record.partition)] = record.offset + 1
        return records

    @property
    def capped(self) -> bool:
        """Whether the last micro-batch stopped at a cap."""
        return self.waiting.capped

    def left(self) -> int:
        """Records the topics hold beyond what this consumer has handed on."""
        total = 0
        for (topic, partition), next_offset in self.next.items():
            low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5, cached=False)
            total += max(high - (low if next_offset is None else max(next_offset, low)), 0)
        return total

    def close(self) -> None:
        self.consumer.close()
