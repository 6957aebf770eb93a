"""One partition's slice of a batch: its records and the orders they touched.

Reads and writes go through the state cache (tables.order_progress), in the slice's
partition. What the slice decides about an order that waits, or needs no more waiting, goes
to the worker's settling bookkeeping (agents.settling); the alerts it raises, to
`to_alert`, unless one is in flight already (agents.alert_watch).
"""

from __future__ import annotations

import time

from faust.types import Message

from agents.alert_watch import AlertWatch
from agents.alerts import AlertRules, on_completion
from agents.settling import Settling
from streams.runtime.state_cache import WriteBackCache
from tables.order_state import OrderProgress, marker


class PartitionSlice:
    def __init__(self, partition: int, messages: list[Message], states: WriteBackCache[OrderProgress],
                 settling: Settling, watch: AlertWatch, rules: AlertRules) -> None:
        self.partition, self.messages = partition, messages
        self.states, self.settling, self.watch, self.rules = states, settling, watch, rules
        self.touched: set[str] = set()
        self.to_emit: list[str] = []
        self.to_alert: list[tuple[str, str]] = []  # kind, order id

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
        """The order is in order_final: its state says so (and only that, tables.order_state,
        once no completion alert is owed), and it waits for nothing more."""
        state = self.get(order_id)
        if not state.emitted:
            owed = on_completion(state, self.rules)
            self.put(order_id, state._replace(emitted=True) if owed else marker(int(time.time())))
            for kind in owed:
                self.raise_alert(kind, order_id)
        self.settling.emitted(self.partition, order_id)

    def raise_alert(self, kind: str, order_id: str) -> None:
        if (kind, order_id) not in self.watch.in_flight and (kind, order_id) not in self.to_alert:
            self.to_alert.append((kind, order_id))

    def record_alerted(self, kind: str, order_id: str) -> None:
        """The alert is on order_alerts: the state says so; an emitted order owing nothing more
        shrinks to the marker."""
        self.watch.in_flight.discard((kind, order_id))
        state = self.get(order_id)
        if kind in state.alerts:
            return
        state = state._replace(alerts=state.alerts | {kind})
        done = state.emitted and not on_completion(state, self.rules)
        self.put(order_id, marker(int(time.time())) if done else state)
