"""How far the CDC connector's records are surely in Kafka: its committed source position.

Kafka Connect sends a connector's records to many partitions at once and retries each
partition's batch on its own, so when a broker comes back, a later order_details change can
be in Kafka before an earlier orders change. A topic's log end therefore says nothing about
changes still on their way. Connect's committed offset does: it is written (to its offset
storage topic, every `offset.flush.interval.ms`) only once every record before it has been
acknowledged by the brokers. Heartbeats (`heartbeat.interval.ms` in the connector) move it
past the last change when the database goes quiet.

Every worker follows that topic from its beginning, with no consumer group, and keeps the
newest position committed for its connector (`settings.cdc_connector_name`); agents.upkeep
reads it before it asks for a quiet partition's log end (agents/settling.py).
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer

from streams.codec import Position, committed_position, offset_connector
from streams.runtime.metrics import counters

READ_TIMEOUT_MS = 200


class ConnectorPosition:
    def __init__(self, bootstrap: str, topic: str, connector: str, auth: dict[str, str] | None = None) -> None:
        self.bootstrap, self.topic, self.connector = bootstrap, topic, connector
        self.auth = auth or {}  # aiokafka's SASL keyword arguments
        self.position: Position | None = None  # None until a committed position is read

    async def follow(self, app_id: str) -> None:
        """Read the offset storage topic for as long as the worker runs; raises if it is missing."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, **self.auth, group_id=None, enable_auto_commit=False,
                                    client_id=f"{app_id}-connect-offsets", auto_offset_reset="earliest")
        await consumer.start()
        try:
            if self.topic not in await consumer.topics():
                raise LookupError(f"Kafka Connect's offset topic {self.topic!r} is missing: set "
                                  f"CONNECT_OFFSETS_TOPIC to its offset.storage.topic")
            consumer.subscribe([self.topic])  # no group: every partition, from the beginning
            while True:
                batches = await consumer.getmany(timeout_ms=READ_TIMEOUT_MS)
                for records in batches.values():
                    for record in records:
                        self.take(record.key, record.value)
        finally:
            await consumer.stop()

    def take(self, key: bytes | None, value: bytes | None) -> None:
        """One offset storage record: the connector's newest committed position if it is ours."""
        if key is None or self.connector.encode() not in key or offset_connector(key) != self.connector:
            return
        counters["connect_offsets_read"] += 1
        self.position = committed_position(value)
