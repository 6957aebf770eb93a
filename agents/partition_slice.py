"""One partition's slice of a batch: its records and the orders they touched.

Reads and writes go through the state cache (tables.order_progress), in the slice's
partition. What the slice decides about an order that waits, or needs no more waiting, goes
to the worker's settling bookkeeping (agents.settling).
"""

from __future__ import annotations

import time
from faust.types import Message

from agents.settling import Settling
from streams.state_cache import WriteBackCache
from tables.order_state import EMITTED, OrderProgress


class PartitionSlice:
    def __init__(self, partition: int, messages: list[Message], states: WriteBackCache[OrderProgress],
                 settling: Settling) -> None:
        self.partition, self.messages = partition, messages
        self.states, self.settling = states, settling
        self.touched: set[str] = set()
        self.to_emit: list[str] = []

    def get(self, order_id: str) -> OrderProgress:
        self.touched.add(order_id)
        return self.states.get(self.partition, order_id)

    def put(self, order_id: str, state: OrderProgress) -> None:
        self.touched.add(order_id)
        self.states.put(self.partition, order_id, state)

    def keep_unsettled(self, order_id: str) -> None:
        """A complete order waits (agents.settling says until when)."""
        self.settling.wait(self.partition, order_id, self.get(order_id).newest_detail, time.time())

    def record_emitted(self, order_id: str) -> None:
        """The order is in order_final: its state says so (and only that: tables.order_state),
        and it waits for nothing more."""
        if not self.get(order_id).emitted:
            self.put(order_id, EMITTED)
        self.settling.emitted(self.partition, order_id)
