"""Topic declarations. CDC records are taken as raw bytes and decoded by streams.codec."""

from __future__ import annotations

import asyncio
import time

import faust
from aiokafka import TopicPartition

from config import settings
from streams.app import app
from streams.runtime.metrics import counters
from streams.runtime.producer import raw_producer

# A fresh topic answers NOT_LEADER for a moment after it is created, and aiokafka's producer
# can then stall on its retried batch for good (aio-libs/aiokafka#1018: a
# worker that created order_final and sent at once never delivered an order). Senders wait
# for `app.outputs.ready`, set once every output partition has a leader and, when the worker
# found any of them without one at its start (just created), a settle time has passed.
LEADER_SETTLE_S = 1.0


# Every topic the stream creates: a write is acknowledged once this many replicas have it
# (with the app's topic_replication_factor, both from the settings).
TOPIC_CONFIG = {"min.insync.replicas": str(settings.min_insync_replicas)}


def _raw(name: str, **options):
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", config=TOPIC_CONFIG, **options)


orders = _raw(settings.cdc_topic("orders"))
order_details = _raw(settings.cdc_topic("order_details"))
# Ticks the stream sends itself to settle complete orders when a partition goes quiet
# (agents/completion_loop.py). Co-partitioned with the CDC topics.
settle_ticks = _raw(f"{settings.stream_app_id}-settle-ticks", partitions=settings.topic_partitions, internal=True)
order_final = _raw(settings.order_final_topic, partitions=settings.topic_partitions)
order_alerts = _raw(settings.order_alerts_topic, partitions=settings.topic_partitions)
dead_letters = _raw(settings.dead_letter_topic, partitions=1)



class CompletionSources(faust.Topic):
    """The CDC topics and the settle ticks, read together. Faust declares an internal topic's
    names before subscribing; of these the worker makes only the ticks: the stack makes the CDC
    topics with TOPIC_PARTITIONS partitions before any worker starts (a worker's login may read
    them, not create them), as Debezium would make them only with its first record."""

    async def declare(self) -> None:
        await settle_ticks.declare()


# The completion agent reads all three, one partition number at a time (same keys, same counts).
order_changes = CompletionSources(app, topics=[orders.get_topic_name(), order_details.get_topic_name(),
                                               settle_ticks.get_topic_name()],
                                  key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
                                  internal=True, partitions=settings.topic_partitions, config=TOPIC_CONFIG)


def same_partition(topic, partition: int) -> int | None:
    """An output record goes to its order's CDC partition number when the output topic has
    TOPIC_PARTITIONS partitions (as the worker creates it): a partition known already, so the
    producer need not hash the key (murmur2, in Python); an
    output topic made with another count is left to the key's hash."""
    return partition if topic.get_topic_name() in app.outputs.laid_out else None


async def outputs_ready() -> None:
    """Return once the output topics can take records (prepare_topics, at the worker's start)."""
    await app.outputs.ready.wait()


async def produce(topic, *, key: bytes, value: bytes, headers: list | None = None,
                  partition: int | None = None) -> asyncio.Future:
    """Hand one record to the Kafka producer (aiokafka's, under Faust's); the future
    resolves to its RecordMetadata.

    For the stream's hot output: Faust's `Topic.send` wraps each record in its own
    bookkeeping (a FutureMessage, callbacks, sensor hooks), and its producer's `send` more,
    none of which the completion agent uses. Same producer, partitioner and bytes."""
    return await raw_producer(app).send(topic.get_topic_name(), value, key=key, headers=headers,
                                        partition=partition)


async def dead_letter(message, reason: str) -> None:
    """Park a record the stream cannot use on the dead-letter topic, its reason and origin in
    the headers, and wait for the broker's ack (its offset may be committed after this)."""
    await outputs_ready()
    counters["dead_lettered"] += 1
    app.log.warning("dead-lettering %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
    headers = [("reason", reason.encode()), ("topic", message.topic.encode()),
               ("partition", str(message.partition).encode()), ("offset", str(message.offset).encode())]
    await (await dead_letters.send(key=message.key, value=message.value, headers=headers))


class TopicLayoutError(RuntimeError):
    """The topics on the broker do not have the partition counts the stream needs."""


@app.task
async def prepare_topics() -> None:
    """At start: create the topics the stream only writes to, and refuse to run on CDC topics
    whose partition count differs from TOPIC_PARTITIONS (their partitions would not line up
    with the table's)."""
    started = time.monotonic()
    outputs = [topic.get_topic_name() for topic in (order_final, order_alerts, dead_letters)]
    led_before = await all_led(outputs)
    for topic in (order_final, order_alerts, dead_letters):
        await topic.maybe_declare()
    await wait_for_leaders(outputs, settle_s=0.0 if led_before else LEADER_SETTLE_S)
    counters["outputs_ready_after_ms"] = round((time.monotonic() - started) * 1000)
    expected = settings.topic_partitions
    cluster = raw_producer(app).client.cluster
    for name in (order_final.get_topic_name(), order_alerts.get_topic_name()):
        if len(cluster.partitions_for_topic(name) or ()) == expected:
            app.outputs.laid_out.add(name)
        else:
            app.log.warning("topic %s does not have TOPIC_PARTITIONS=%d partitions: its records are placed by "
                            "their key's hash", name, expected)
    for name in order_changes.topics:
        found = app.consumer.topic_partitions(name)  # None or 0 while metadata is unknown
        if found and found != expected:
            message = (f"topic {name} has {found} partitions but TOPIC_PARTITIONS={expected}. Recreate it "
                       f"with {expected} partitions (CDC topics can be rebuilt by a fresh snapshot), or set "
                       f"TOPIC_PARTITIONS={found} everywhere.")
            app.log.error(message)
            raise TopicLayoutError(message)


async def all_led(names: list[str]) -> bool:
    """Whether the broker names a leader for every partition of `names` now (a topic unknown
    to it has none)."""
    client = raw_producer(app).client
    await client.force_metadata_update()
    return all(_all_led(client.cluster, name) for name in names)


async def wait_for_leaders(names: list[str], settle_s: float, timeout_s: float = 60) -> None:
    """Set `app.outputs.ready` once the broker names a leader for every partition of `names`,
    and `settle_s` after that."""
    client = raw_producer(app).client
    deadline = time.monotonic() + timeout_s
    while True:
        await client.force_metadata_update()
        leaderless = [name for name in names if not _all_led(client.cluster, name)]
        if not leaderless:
            break
        if time.monotonic() > deadline:
            app.log.warning("no leader yet for %s after %.0f s; sending anyway", ", ".join(leaderless), timeout_s)
            break
        await asyncio.sleep(0.2)
    await asyncio.sleep(settle_s)
    app.outputs.ready.set()


def _all_led(cluster, name: str) -> bool:
    partitions = cluster.partitions_for_topic(name)
    return bool(partitions) and all(cluster.leader_for_partition(TopicPartition(name, p)) not in (None, -1)
                                    for p in partitions)
