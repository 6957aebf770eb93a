"""Topic declarations. CDC records are taken as raw bytes and decoded by streams.codec."""

from __future__ import annotations

from config import settings
from streams.app import app


def _raw(name: str, **options):
    return app.topic(name, key_type=bytes, value_type=bytes, key_serializer="raw",
                     value_serializer="raw", **options)


orders = _raw(settings.cdc_topic("orders"))
order_details = _raw(settings.cdc_topic("order_details"))
# Ticks the stream sends itself to settle complete orders when a partition goes quiet
# (agents/order_completion.py). Co-partitioned with the CDC topics.
settle_ticks = _raw(f"{settings.stream_app_id}-settle-ticks", partitions=settings.topic_partitions, internal=True)
order_final = _raw(settings.order_final_topic, partitions=settings.topic_partitions)
dead_letters = _raw(settings.dead_letter_topic, partitions=1)

# The completion agent reads all three, one partition number at a time (same keys, same counts).
# internal=True: the worker creates whichever is missing, with TOPIC_PARTITIONS partitions,
# before subscribing (Debezium creates a CDC topic only with its first record).
order_changes = app.topic(orders.get_topic_name(), order_details.get_topic_name(),
                          settle_ticks.get_topic_name(), key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw", internal=True,
                          partitions=settings.topic_partitions)


class TopicLayoutError(RuntimeError):
    """The topics on the broker do not have the partition counts the stream needs."""


@app.task
async def prepare_topics() -> None:
    """At start: create the topics the stream only writes to, and refuse to run on CDC topics
    whose partition count differs from TOPIC_PARTITIONS (their partitions would not line up
    with the table's)."""
    for topic in (order_final, dead_letters):
        await topic.maybe_declare()
    expected = settings.topic_partitions
    for name in order_changes.topics:
        found = app.consumer.topic_partitions(name)  # None or 0 while metadata is unknown
        if found and found != expected:
            message = (f"topic {name} has {found} partitions but TOPIC_PARTITIONS={expected}. Recreate it "
                       f"with {expected} partitions (CDC topics can be rebuilt by a fresh snapshot), or set "
                       f"TOPIC_PARTITIONS={found} everywhere.")
            app.log.error(message)
            raise TopicLayoutError(message)
