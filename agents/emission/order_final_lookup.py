"""Were these orders already sent to `order_final` (or alerts to `order_alerts`)? Read from a
time on, look for their keys.

Only for resolving stale claims (agents/emission/exactly_once.py): rare, and a batch's are resolved in one
read, so a plain blocking consumer run in a thread is fine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from config import Settings


def order_id_of(key: bytes, headers: list | None) -> str:
    """order_final's records name their order by key."""
    return key.decode(errors="replace")


def find_sent(settings: Settings, order_ids: set[str], since_ms: int, timeout_s: float = 30, *,
              topic: str | None = None, identify: Callable[[bytes, list | None], str] = order_id_of,
              ) -> dict[str, tuple[int, int]]:
    """(partition, offset) of each of `order_ids`' first message in `topic` (order_final by
    default) at or after `since_ms`, a message naming its id by `identify(key, headers)`; ids
    with none are absent from the answer."""
    consumer = Consumer({**settings.kafka_client_config("stream"), "group.id": f"{settings.stream_app_id}-lookup-{uuid.uuid4()}",
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        topic = topic or settings.order_final_topic
        partitions = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        starts = consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions],
                                            timeout=timeout_s)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
                for p in partitions}
        wanted = [tp for tp in starts if tp.offset not in (OFFSET_END, -1) and tp.offset < ends[tp.partition]]
        found: dict[str, tuple[int, int]] = {}
        if not wanted:
            return found
        consumer.assign(wanted)
        remaining = {tp.partition for tp in wanted}
        deadline = time.monotonic() + timeout_s
        while remaining and len(found) < len(order_ids):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic} not read to its end within {timeout_s} s")
            for message in consumer.consume(num_messages=500, timeout=1.0):
                if message.error():
                    continue
                order_id = identify(message.key() or b"", message.headers())
                if order_id in order_ids and order_id not in found:
                    found[order_id] = message.partition(), message.offset()
                if message.offset() + 1 >= ends[message.partition()]:
                    remaining.discard(message.partition())
        return found
    finally:
        consumer.close()
