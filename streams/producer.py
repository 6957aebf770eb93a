"""Faust's Kafka producer with room in its send buffer.

Table writes are synchronous, so Faust queues their changelog records in a buffer and, once
more than `max_messages` (100) wait, blocks the fetch loop on every incoming record until
the buffer drains, logging "producer buffer full" each time. The state cache
(streams.state_cache) writes a flush's worth of keys at once, hundreds in a burst, so that
threshold stalled the stream several times a second. The buffer's records are already in
memory; the bound only has to stop a runaway, so it is raised.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import Producer

BUFFER_MAX_MESSAGES = 20_000


class BatchingProducer(Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.buffer.max_messages = BUFFER_MAX_MESSAGES
