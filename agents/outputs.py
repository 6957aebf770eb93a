"""The two outputs the agent emits to exactly once (agents.emission): `order_final` and
`order_alerts`, each with what a partition's slice does with an item's outcome."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from faust.types import TopicT

from agents.alerts import Alert, alert_value
from agents.completion import completed_order, version
from agents.emission import Outgoing, Output, now_iso
from agents.guard import RedisGuard
from streams.runtime.metrics import order_final_latency
from tables.reference_data import enrichment

if TYPE_CHECKING:
    from agents.worker import CompletionWorker


class FinalOutput(Output):
    """order_final: items are order ids; recorded as `emitted` (agents.settling tracks them)."""

    notice = "emitted"

    def __init__(self, topic: TopicT, guard: RedisGuard, worker: CompletionWorker) -> None:
        super().__init__(topic, guard)
        self.worker, self.settling, self.counters = worker, worker.settling, worker.counters

    def items(self, part):
        return part.to_emit

    def record(self, part, item):
        part.record_emitted(item)

    def wait(self, part, item):
        part.keep_unsettled(item)

    def sending(self, partition, item):
        self.settling.sent(partition, item)

    def failed(self, partition, item):
        self.settling.send_failed(partition, item, time.time())

    def confirmed(self, item, source_ts_ms, acked_at_ms):
        self.counters["completed"] += 1  # one message in order_final, acknowledged
        if source_ts_ms:
            order_final_latency.observe(max(0.0, acked_at_ms - source_ts_ms) / 1000)

    def message(self, part, item):
        state = part.get(item)
        customer, payment_method = enrichment(self.worker.reference.store, state.customer_id, state.payment_method_id)
        if customer is None:
            self.counters["unenriched_customer"] += 1
        if payment_method is None:
            self.counters["unenriched_payment_method"] += 1
        value = completed_order(item, state, now_iso(), customer, payment_method)
        # the notice names the state sent by its newest changes (agents.partition_slice.record_emitted)
        sent = [None if position is None else list(position) for position in version(state)]
        return Outgoing(item.encode(), orjson.dumps(value), None, value["source_ts_ms"], [item, *sent])

    def identify(self, key, headers):
        return key.decode(errors="replace")


class AlertOutput(Output):
    """order_alerts: items are `Alert`s; recorded in the state's `alerts`."""

    notice = "alerted"

    def __init__(self, topic: TopicT, guard: RedisGuard, worker: CompletionWorker) -> None:
        super().__init__(topic, guard)
        self.watch, self.counters = worker.watch, worker.counters

    def items(self, part):
        return part.to_alert

    def record(self, part, item):
        part.record_alerted(item)

    def wait(self, part, item):
        self.watch.again(part.partition, item.order_id)

    def sending(self, partition, item):
        self.watch.in_flight.add(item)

    def failed(self, partition, item):
        self.watch.in_flight.discard(item)
        self.watch.again(partition, item.order_id)

    def confirmed(self, item, source_ts_ms, acked_at_ms):
        self.counters[f"alerts_{item.kind}"] += 1

    def message(self, part, item):
        value = alert_value(item.kind, item.order_id, part.get(item.order_id), now_iso())
        return Outgoing(item.order_id.encode(), orjson.dumps(value), [("kind", item.kind.encode())], 0, str(item))

    def identify(self, key, headers):
        return Alert(dict(headers or ()).get("kind", b"").decode(errors="replace"), key.decode(errors="replace"))
