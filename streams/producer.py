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
from faust.transport.producer import ProducerBuffer

BUFFER_MAX_MESSAGES = 20_000


class RoomyProducerBuffer(ProducerBuffer):
    """Faust's buffer, bounded at BUFFER_MAX_MESSAGES, whose size is its queue's: Faust's
    `size` reads the `producer_threaded` setting on every call, and the conductor asks for
    it on every incoming record (about 2% of a busy worker's CPU). This app never uses the
    threaded producer."""

    max_messages = BUFFER_MAX_MESSAGES

    @property
    def size(self) -> int:
        return self.pending.qsize()


class BatchingProducer(Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            raise ValueError("the stream's producer does not support producer_threaded")
        self.buffer = RoomyProducerBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app
