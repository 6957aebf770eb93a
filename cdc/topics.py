"""Reading CDC topics whole: every message of some topics from the beginning, decoded as JSON.

For checks and benchmarks (the stream processor consumes through Faust, not this)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from tenacity import retry, retry_if_exception, stop_after_delay, wait_fixed
from tqdm import tqdm

from config import Settings

QUIET = logging.getLogger("cdc.librdkafka")
QUIET.setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    key: object
    value: object  # None for a tombstone
    timestamp_ms: int = 0  # CreateTime, or LogAppendTime if the topic is so configured
    headers: tuple[tuple[str, bytes], ...] = ()


def _key(raw: bytes | None) -> object:
    """A JSON key decoded (CDC topics), or the UTF-8 text of a plain one (order_final)."""
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", errors="replace")


def read_topics(settings: Settings, topics: list[str], *, until: Callable[[list[Message]], bool],
                timeout_s: float = 90) -> list[Message]:
    """Messages of `topics` from the beginning, until `until(messages)` holds.

    Raises TimeoutError (saying how many messages arrived) if it does not hold in time.
    """
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"test-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "topic.metadata.refresh.interval.ms": 1000})
    consumer.subscribe(topics)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not until(messages) and time.monotonic() < deadline:
            for raw in consumer.consume(num_messages=1000, timeout=0.5):
                if raw.error():
                    continue
                messages.append(Message(raw.topic(), raw.partition(), raw.offset(), _key(raw.key()),
                                        orjson.loads(raw.value()) if raw.value() else None,
                                        raw.timestamp()[1]))
    finally:
        consumer.close()
    if not until(messages):
        raise TimeoutError(f"{len(messages)} messages from {', '.join(topics)} after {timeout_s:.0f} s, "
                           "and the awaited condition does not hold yet")
    return messages


class TopicMissing(LookupError):
    """The topic is not on the broker."""


_LEADERLESS = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
               KafkaError.UNKNOWN_TOPIC_OR_PART}


def no_leader_yet(error: BaseException) -> bool:
    """What a topic answers for a moment after it is created, or while a leader is elected."""
    return isinstance(error, KafkaException) and error.args[0].code() in _LEADERLESS


@retry(retry=retry_if_exception(no_leader_yet), stop=stop_after_delay(30), wait=wait_fixed(0.2), reraise=True)
def partition_offsets(consumer: Consumer, topic: str, partitions) -> dict[int, tuple[int, int]]:
    """Each of `partitions`' (start, end) offsets, waiting up to 30 s for partitions without a leader."""
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}


def watermarks(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """Each partition's (start, end) offsets now; empty if the topic is missing."""
    # A consumer made and closed per count: librdkafka's lines about the group coordinator it
    # had no time to reach are noise (a count that fails raises instead).
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"count-{uuid.uuid4()}", "logger": QUIET})
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None:
            return {}
        return partition_offsets(consumer, topic, found.partitions)
    finally:
        consumer.close()


def records_held(settings: Settings, topic: str) -> int:
    """How many records `topic` holds now (its partitions' end minus start offsets); 0 if missing."""
    return sum(high - low for low, high in watermarks(settings, topic).values())


def wait_for_records(settings: Settings, topic: str, count: int, timeout_s: float, *, progress: bool = True) -> float:
    """Until `topic` holds at least `count` records (a snapshot of a table of `count` rows, say);
    seconds waited. Raises TimeoutError saying how far it got."""
    started = time.monotonic()
    with tqdm(total=count, unit="records", desc=topic, disable=not progress) as bar:
        while (held := records_held(settings, topic)) < count:
            bar.update(max(0, held - bar.n))
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{topic} holds {held:,} of {count:,} records after {timeout_s:.0f} s: "
                                   "see `python -m cdc show` and .stack/logs/kafka-connect.log")
            time.sleep(1)
        bar.update(count - bar.n)
    return time.monotonic() - started


def read_to_end(settings: Settings, topic: str, timeout_s: float = 120, *, raw: bool = False,
                last: int | None = None, since_ms: int | None = None) -> list[Message]:
    """Every message of `topic`, from the beginning (or each partition's `last` newest, or its
    first stamped at or after `since_ms`) to the end offsets it had when called; `raw`: keys and
    values as the bytes they are (dead letters need not be JSON)."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"audit-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            raise TopicMissing(f"topic {topic} is not on the broker at {settings.kafka_bootstrap}")
        ends = {p: end for p, (_, end) in partition_offsets(consumer, topic, found.partitions).items()}
        starts = {p: 0 if last is None else max(0, end - last) for p, end in ends.items()}
        if since_ms is not None:
            stamped = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in ends], timeout=10)
            starts = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition] for tp in stamped}
        pending = {p for p, end in ends.items() if starts[p] < end}
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in pending])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: {len(messages)} messages read in {timeout_s:.0f} s, "
                                   f"partitions {sorted(pending)} not read to their end")
            for record in consumer.consume(num_messages=1000, timeout=0.5):
                if record.error() or record.offset() >= ends[record.partition()]:
                    continue
                key, value = (record.key(), record.value()) if raw else (
                    _key(record.key()), orjson.loads(record.value()) if record.value() else None)
                messages.append(Message(record.topic(), record.partition(), record.offset(), key, value,
                                        record.timestamp()[1], tuple(record.headers() or ())))
            # positions, not offsets seen: a transaction marker takes an offset but is no message
            positions = consumer.position([TopicPartition(topic, p) for p in pending])
            pending -= {tp.partition for tp in positions if tp.offset >= ends[tp.partition]}
        return messages
    finally:
        consumer.close()


def last_appends(settings: Settings, order_ids: set[str], since_ms: int) -> dict[str, int]:
    """When each of `order_ids`' newest CDC record (orders or order_details, from `since_ms`)
    was appended to its topic, in ms: the commit's arrival in Kafka, before any processor."""
    appends: dict[str, int] = {}
    for table in ("orders", "order_details"):
        for message in read_to_end(settings, settings.cdc_topic(table), since_ms=since_ms):
            row = message.value and (message.value["after"] or message.value["before"])
            order_id = row and (row.get("order_id") or row.get("id"))
            if order_id in order_ids:
                appends[order_id] = max(appends.get(order_id, 0), message.timestamp_ms)
    return appends


def snapshot_done(messages: list[Message]) -> bool:
    """Debezium marks the last record of its initial snapshot `source.snapshot == "last"`."""
    return any(m.value and m.value["source"].get("snapshot") == "last" for m in messages)
