"""Debezium's stored binlog offsets, made safe to resume from.

A binlog connector's offset says where to restart (a GTID set, a binlog file and position)
and how many events of the transaction there it had already sent (`event`, and `row` within
the last one); on restart it skips that many events from the first transaction it reads.
But Debezium also counts the server's heartbeats (sent every 0.8 x
`connect.keep.alive.interval.ms` while the binlog is quiet) as events, after a transaction
has ended, and its own heartbeats store that count. A connector restarted after a quiet
spell therefore skipped the first events of the first new transactions: changes lost,
silently.

So before a connector's task starts, its offset loses `event` and `row`: the task reads the
transaction at its restart point whole. When the count was real (stopped mid-transaction),
that transaction's records come again, which Kafka Connect allows anyway (at least once) and
the stream and the lake absorb.

Two ways in: while Kafka Connect is down, a newer record in its offset storage topic (read
at its start; `clear_stored_skips`), and while it runs, a stopped connector's offsets
through its REST API (`cdc.rest.resume_without_skips`, after every stop, config change and
registration the project makes).
"""

from __future__ import annotations

import uuid

import orjson
from confluent_kafka import Producer

from cdc.topics import TopicMissing, read_to_end
from config import Settings

SKIP_KEYS = ("event", "row")


def without_skips(offset: dict | None) -> dict | None:
    """The offset to resume from instead, or None if `offset` skips nothing already."""
    if not offset or not any(key in offset for key in SKIP_KEYS):
        return None
    return {key: value for key, value in offset.items() if key not in SKIP_KEYS}


def clear_stored_skips(settings: Settings) -> list[str]:
    """While Kafka Connect is down: for each connector whose newest stored offset skips
    events, a newer record without the skips (same key, same partition, so it is the one
    Connect reads last). The names of the connectors corrected."""
    try:
        stored = read_to_end(settings, settings.connect_offsets_topic, raw=True)
    except TopicMissing:
        return []
    newest = {message.key: (message.partition, message.value) for message in stored}  # a key keeps to one partition
    corrected = []
    producer = Producer({**settings.kafka_client_config(), "acks": "all",
                         "client.id": f"offset-skips-{uuid.uuid4().hex[:8]}"})
    for key, (partition, value) in newest.items():
        offset = orjson.loads(value) if value else None
        if (resumable := without_skips(offset)) is not None:
            producer.produce(settings.connect_offsets_topic, orjson.dumps(resumable), key, partition=partition)
            corrected.append(str(orjson.loads(key)[0]))
    if producer.flush(30):
        raise TimeoutError(f"corrected offsets not acknowledged by {settings.kafka_bootstrap} within 30 s")
    return corrected
