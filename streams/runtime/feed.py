"""The completion agent's records, handed from the consumer's fetch loop to the agent in batches.

Faust takes a record to an agent through its conductor (a decoding `Schema`, an `Event`, the
channel's queue), the stream's iterator (a task switch and sensor hooks per record) and
`take_events` (a processor and a buffer per record): together about a third of a busy
worker's CPU (py-spy), for an agent that wants the raw bytes of a batch of records. The feed
is that path made short: the fetch loop (streams.runtime.consumer) appends each record of the topics
the agent reads to a list, and the agent takes the list.

What Faust's path did and the feed keeps:
- Tracking: a record put here is tracked as unacknowledged (its offset is not committed) and
  holds one reference, released when the agent's state is durable (streams.runtime.commit_protocol).
- Back-pressure: the fetch loop puts only while flow is active and the feed has room;
  otherwise it waits, abandoning the delivery when a rebalance suspends the flow.
- Rebalances: the feed is cleared with the stream buffers when a revoke suspends the flow
  (a record dropped so is read again from the committed offset), not when the flow
  resumes (see `clear`), and a batch never carries a record of an earlier generation.
Records that reach the agent's stream anyway (Faust's `test_context`, or before the agent
has named its topics) are moved into the feed by a pump over the stream, so the agent reads
one source either way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from faust.types import Message

from streams.runtime.metrics import counters


class Feed:
    def __init__(self, app, maxsize: int) -> None:
        self.app, self.maxsize = app, maxsize
        self.topics: frozenset[str] = frozenset()  # the agent's, once it reads; routed here
        self._messages: list[Message] = []
        self._wanted = 1  # how many records wake the agent (a full batch, or any while it waits)
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        app.flow_control.manage_queue(self)  # cleared with the stream buffers

    def full(self) -> bool:
        return len(self._messages) >= self.maxsize

    def room(self) -> int:
        return self.maxsize - len(self._messages)

    def put(self, message: Message) -> None:
        """Take one record (the fetch loop checked `full` and the flow)."""
        self.put_many([message])

    def put_many(self, messages: list[Message]) -> None:
        """Take records in their partitions' order (the fetch loop checked `room` and the flow)."""
        track = self.app.consumer.track_message
        for message in messages:
            message.refcount += 1  # no other thread has it yet: Faust's ack lock is not needed
            if not message.tracked:
                message.tracked = True
                track(message)
        self._messages.extend(messages)
        if len(self._messages) >= self._wanted:
            self._arrived.set()

    async def put_when_room(self, message: Message) -> None:
        """Put once flow is active and there is room (the waits of Faust's conductor)."""
        while True:
            await self.app.flow_control.acquire()
            await self.app.producer.buffer.wait_until_ebb()
            if not self.full():
                break
            self._room.clear()
            await self._room.wait()
        self.put(message)

    def clear(self) -> None:
        """Faust clears its stream buffers when a revoke suspends the flow, and again each
        time it resumes the flow. Only the first drops records here. By a resume, this
        generation's seek has been made (table recovery resumes the flow before it, and
        again after), and what the consumer delivered since is the next records in order:
        the gate has moved past them, so dropping them then would lose them."""
        if self.app.flow_control.is_active():
            return
        if self._messages:
            counters["records_dropped_at_rebalance"] += len(self._messages)
        self._messages = []
        self._room.set()

    async def batches(self, stream, max_records: int, within_s: float) -> AsyncIterator[list[Message]]:
        """Up to `max_records` records at a time: as soon as that many are waiting, else
        `within_s` after the first one arrived. Subscribes the stream's topics and pumps
        whatever still reaches the stream."""
        self._room.set()  # a delivery waiting for room looks again
        # in this loop (an agent restarted by test_context runs in a new one)
        self._arrived, self._room = asyncio.Event(), asyncio.Event()
        pump = asyncio.ensure_future(self._pump(stream))
        self.topics = frozenset(stream.channel.topics) if hasattr(stream.channel, "topics") else frozenset()
        try:
            while True:
                if not self._messages:
                    self._wanted = 1
                    self._arrived.clear()
                    await self._arrived.wait()
                if len(self._messages) < max_records:
                    self._wanted = max_records
                    self._arrived.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), within_s)
                batch = self._take(max_records)
                if batch:
                    yield batch
        finally:
            pump.cancel()

    def _take(self, max_records: int) -> list[Message]:
        messages = self._messages
        batch, self._messages = messages[:max_records], messages[max_records:]
        self._room.set()
        generation = self.app.consumer_generation_id
        current = [message for message in batch if message.generation_id == generation]
        if len(current) != len(batch):
            counters["records_of_an_earlier_generation"] += len(batch) - len(current)
        return current

    async def _pump(self, stream) -> None:
        async for event in stream.events():
            self.put(event.message)  # the stream releases its own reference as it moves on
