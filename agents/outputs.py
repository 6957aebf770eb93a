"""The two outputs the agent emits to exactly once (agents.emission): `order_final` and
`order_alerts`, each with what a partition's slice does with its items' outcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
from faust.types import TopicT

from agents.alerts import Alert, alert_value
from agents.completion import completed_order, version
from agents.emission import Answers, Outcomes, Outgoing, Output, now_iso
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

    def settle(self, part, outcomes: Outcomes):
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

    def settle(self, part, outcomes: Outcomes):
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

    def message(self, part, item):
        value = alert_value(item.kind, item.order_id, part.get(item.order_id), now_iso())
        return Outgoing(item.order_id.encode(), orjson.dumps(value), [("kind", item.kind.encode())], 0, str(item))

    def identify(self, key, headers):
        return Alert(dict(headers or ()).get("kind", b"").decode(errors="replace"), key.decode(errors="replace"))
