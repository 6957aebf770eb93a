"""The two outputs the agent emits to exactly once (agents.emission.exactly_once): `order_final` and
`order_alerts`, each with what a partition's slice does with its items' outcomes."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

import orjson
from faust.types import TopicT

from agents.alert_watch import AlertWatch
from agents.alerts import Alert, alert_value
from agents.completion_rule import completed_order, version
from agents.emission.exactly_once import Answers, Outcomes, Outgoing, Output, Slice, now_iso
from agents.emission.guard import RedisGuard
from agents.settling import Settling
from streams.runtime.metrics import order_final_latency
from streams.runtime.reference_reader import TopicReader
from tables.order_state import OrderState
from tables.reference_data import enrichment


class OrderSlice(Slice, Protocol):
    """What the outputs read and record in a partition's slice (agents.partition_slice)."""

    to_emit: list[str]
    to_alert: list[Alert]

    def get(self, order_id: str) -> OrderState: ...
    def record_emitted(self, order_id: str) -> None: ...
    def keep_unsettled(self, order_id: str) -> None: ...
    def record_alerted(self, alert: Alert) -> None: ...


class FinalOutput(Output):
    """order_final: items are order ids; recorded as `emitted` (agents.settling tracks them)."""

    notice = "emitted"

    def __init__(self, topic: TopicT, guard: RedisGuard, *, settling: Settling, reference: TopicReader,
                 counters: Counter[str]) -> None:
        super().__init__(topic, guard)
        self.settling, self.reference, self.counters = settling, reference, counters

    def items(self, part: OrderSlice):
        return part.to_emit

    def settle(self, part: OrderSlice, outcomes: Outcomes):
        for order_id in outcomes.recorded:
            part.record_emitted(order_id)
        for order_id in outcomes.waiting:
            part.keep_unsettled(order_id)
        for order_id in outcomes.in_flight:
            self.settling.sent(part.partition, order_id)

    def answered(self, partition, answers: Answers):
        for order_id in answers.failed:
            self.settling.send_failed(partition, order_id, answers.at_ms / 1000)
        self.counters["completed"] += len(answers.confirmed)  # messages in order_final, acknowledged
        for _, source_ts_ms in answers.confirmed:
            if source_ts_ms:
                order_final_latency.observe(max(0.0, answers.at_ms - source_ts_ms) / 1000)

    def message(self, part: OrderSlice, item):
        state = part.get(item)
        customer, payment_method = enrichment(self.reference.store, state.customer_id, state.payment_method_id)
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

    def __init__(self, topic: TopicT, guard: RedisGuard, *, watch: AlertWatch, counters: Counter[str]) -> None:
        super().__init__(topic, guard)
        self.watch, self.counters = watch, counters

    def items(self, part: OrderSlice):
        return part.to_alert

    def settle(self, part: OrderSlice, outcomes: Outcomes):
        for alert in outcomes.recorded:
            part.record_alerted(alert)
        for alert in outcomes.waiting:
            self.watch.again(part.partition, alert.order_id)
        self.watch.in_flight.update(outcomes.in_flight)

    def answered(self, partition, answers: Answers):
        for alert in answers.failed:
            self.watch.in_flight.discard(alert)
            self.watch.again(partition, alert.order_id)
        for alert, _ in answers.confirmed:
            self.counters[f"alerts_{alert.kind}"] += 1

    def message(self, part: OrderSlice, item):
        value = alert_value(item.kind, item.order_id, part.get(item.order_id), now_iso())
        return Outgoing(item.order_id.encode(), orjson.dumps(value), [("kind", item.kind.encode())], 0, str(item))

    def identify(self, key, headers):
        return Alert(dict(headers or ()).get("kind", b"").decode(errors="replace"), key.decode(errors="replace"))
