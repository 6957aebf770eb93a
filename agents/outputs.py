"""The two outputs the agent emits to exactly once (agents.emission): `order_final` and
`order_alerts`, each with what a partition's slice does with an item's outcome."""

from __future__ import annotations

import time

import orjson
from faust.types import TopicT

from agents.alert_watch import AlertWatch
from agents.alerts import alert_value
from agents.completion import completed_order
from agents.emission import Output, now_iso
from agents.guard import RedisGuard
from agents.settling import Settling
from streams.runtime.metrics import counters as stats, order_final_latency
from tables.reference_data import enrichment


class FinalOutput(Output):
    """order_final: items are order ids; recorded as `emitted` (agents.settling tracks them)."""

    notice = "emitted"

    def __init__(self, topic: TopicT, guard: RedisGuard, settling: Settling) -> None:
        super().__init__(topic, guard)
        self.settling = settling

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
        stats["completed"] += 1  # one message in order_final, acknowledged
        if source_ts_ms:
            order_final_latency.observe(max(0.0, acked_at_ms - source_ts_ms) / 1000)

    def message(self, part, item):
        state = part.get(item)
        customer, payment_method = enrichment(state.customer_id, state.payment_method_id)
        if customer is None:
            stats["unenriched_customer"] += 1
        if payment_method is None:
            stats["unenriched_payment_method"] += 1
        value = completed_order(item, state, now_iso(), customer, payment_method)
        return item.encode(), orjson.dumps(value), None, value["source_ts_ms"]

    def identify(self, key, headers):
        return key.decode(errors="replace")


class AlertOutput(Output):
    """order_alerts: items are `<kind>:<order_id>`; recorded in the state's `alerts`."""

    notice = "alerted"

    def __init__(self, topic: TopicT, guard: RedisGuard, watch: AlertWatch) -> None:
        super().__init__(topic, guard)
        self.watch = watch

    def items(self, part):
        return [f"{kind}:{order_id}" for kind, order_id in part.to_alert]

    def record(self, part, item):
        part.record_alerted(*item.split(":", 1))

    def wait(self, part, item):
        self.watch.again(part.partition, item.split(":", 1)[1])

    def sending(self, partition, item):
        self.watch.in_flight.add(tuple(item.split(":", 1)))

    def failed(self, partition, item):
        kind, order_id = item.split(":", 1)
        self.watch.in_flight.discard((kind, order_id))
        self.watch.again(partition, order_id)

    def confirmed(self, item, source_ts_ms, acked_at_ms):
        stats[f"alerts_{item.split(':', 1)[0]}"] += 1

    def message(self, part, item):
        kind, order_id = item.split(":", 1)
        value = alert_value(kind, order_id, part.get(order_id), now_iso())
        return order_id.encode(), orjson.dumps(value), [("kind", kind.encode())], 0

    def identify(self, key, headers):
        kind = dict(headers or ()).get("kind", b"").decode(errors="replace")
        return f"{kind}:{key.decode(errors='replace')}"
