"""One partition's slice of a batch, and what the worker does with it.

`process` reads the slice's records in order: CDC changes are applied to their orders'
states (agents.completion_rule), notices from the worker's own tick topic are recorded (an
order_final or alert acknowledged, a quiet partition's settle tick, an alert check). Then it
decides about every order the slice touched: to be sent (`to_emit`), still waiting to settle
(agents.settling), settled for good; and the alerts they owe (`to_alert`, agents.alerts).
The worker's `Emission` sends both lists for every slice of the batch at once.

Reads and writes of state go through the worker's state cache, in the slice's partition:
the cache writes the changed orders at its next flush. An order is judged by its state at
the end of the slice: one that completes and is cancelled within the same batch is not
emitted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Protocol

import orjson
from faust.types import TP, Message

from agents.alert_watch import AlertWatch
from agents.alerts import STALLED, Alert, AlertRules, is_stalled, on_completion, owed_alerts
from agents.completion_rule import CAUGHT_UP, Verdict, apply_detail, apply_order, is_behind, noticed_version, verdict
from agents.retention import Retention
from agents.settling import Settling, Tick
from streams.codec import Change, CodecError, OrderChange, Position, Tombstone, Truncate, decode_detail, decode_order
from streams.runtime.state_cache import WriteBackCache
from tables.order_state import OrderState, marker

log = logging.getLogger(__name__)

# A quiet partition's tick settles orders unsettled at least this long before its check:
# the broker appends one produce request's partitions one after another.
SETTLE_MARGIN_S = 0.05


class SliceWorker(Protocol):
    """What a slice uses of its worker (agents.completion_worker.CompletionWorker)."""

    orders_topic: str
    ticks_topic: str
    counters: Counter[str]
    states: WriteBackCache[OrderState]
    settling: Settling
    retention: Retention
    rules: AlertRules
    watch: AlertWatch

    def committed_offset(self, tp: TP) -> int | None: ...
    async def dead_letter(self, message: Message, reason: str) -> None: ...


class PartitionSlice:
    def __init__(self, worker: SliceWorker, partition: int, messages: list[Message]) -> None:
        self.worker, self.partition, self.messages = worker, partition, messages
        self.states, self.settling, self.counters = worker.states, worker.settling, worker.counters
        self.touched: set[str] = set()
        self.to_emit: list[str] = []
        self.to_alert: list[Alert] = []
        self.frontier: Position | None = None  # the newest orders change applied in an unbroken run
        self.tick: Tick | None = None  # the newest settle tick of the slice
        self.quiet_before: float | None = None  # an alert check's: orders quiet since before it may have stalled

    async def process(self) -> None:
        for message in self.messages:
            if message.topic == self.worker.ticks_topic:
                self.take_notice(orjson.loads(message.value))
                continue
            self.counters["events_in"] += 1
            is_orders = message.topic == self.worker.orders_topic
            in_order = self.settling.read(self.partition, is_orders, message.offset,
                                          self.worker.committed_offset(message.tp))
            if is_orders and not in_order:
                self.counters["orders_records_after_a_gap"] += 1
            try:
                change = decode_order(message.key, message.value) if is_orders else \
                    decode_detail(message.key, message.value)
            except CodecError as error:
                await self.worker.dead_letter(message, str(error))
                continue
            self.apply(change, in_order)
        self.decide()

    def take_notice(self, notice: dict) -> None:
        """A notice the worker sent itself: sends acknowledged, or a tick to act on."""
        if "emitted" in notice:
            for order_id, *sent in notice["emitted"]:  # [order id, its sent version]
                self.record_emitted(order_id, sent=sent)
        elif "alerted" in notice:
            for text in notice["alerted"]:
                self.record_alerted(Alert.parse(text))
        elif "check" in notice:
            self.quiet_before = max(self.quiet_before or 0.0, notice["check"] - self.worker.rules.stall_after_s)
        elif "source" in notice:
            self.counters["ticks_received"] += 1
            tick = Tick(notice["at"] - SETTLE_MARGIN_S, Position(*notice["source"]))
            self.tick = tick if self.tick is None else max(self.tick, tick)
        else:  # of no shape this worker writes: counted, it changes nothing
            self.counters["notices_unknown"] += 1

    def apply(self, change: Change, in_order: bool) -> None:
        """One CDC change to its order's state. An orders change read past a gap (agents.settling)
        does not move the frontier."""
        if isinstance(change, Tombstone):
            self.counters["tombstones"] += 1
            return
        if isinstance(change, Truncate):
            self.counters["truncates"] += 1
            log.warning("TRUNCATE of %s at %s ignored: orders in flight keep their state", change.table,
                        change.position)
            return
        if isinstance(change, OrderChange):
            self.counters["order_changes"] += 1
            if in_order and (self.frontier is None or change.position > self.frontier):
                self.frontier = change.position
        else:
            self.counters["detail_changes"] += 1
        state = self.get(change.order_id)
        if state.emitted:  # settled for good: nothing it changes can matter any more
            self.counters["changes_after_emission"] += 1
            return
        updated = apply_order(state, change) if isinstance(change, OrderChange) else apply_detail(state, change)
        if updated is state:
            self.counters["redeliveries_ignored"] += 1
        self.put(change.order_id, updated)

    def decide(self) -> None:
        """Every touched order, and every waiting one the frontier or a tick settles, judged."""
        view = self.settling.close_slice(self.partition, self.frontier, self.tick)
        now = time.time()
        for order_id in self.touched - view.ready:
            self.judge(order_id, view.frontier, view.details_gap, now)
        for order_id in view.ready:
            self.judge(order_id, CAUGHT_UP, view.details_gap, now)
        if self.quiet_before is not None:
            for order_id in self.worker.watch.due(self.partition, self.quiet_before):
                self.check_alerts(order_id)
        self.counters["unsettled_now"] = self.settling.unsettled_count()

    def judge(self, order_id: str, frontier: Position | None, details_gap: bool, now: float) -> None:
        """Mark a settled order to be sent; keep a complete one that is not yet (any, while an
        order_details record of the partition is missing: agents.settling) waiting."""
        if order_id in self.settling.in_flight:
            return
        state = self.get(order_id)
        outcome = verdict(state, frontier)
        # quiet since its last change in the source (a stall is checked only once caught up)
        self.worker.watch.changed(self.partition, order_id, state.last_committed_ms / 1000 or now,
                                  incomplete=outcome is Verdict.INCOMPLETE)
        if outcome is Verdict.EMIT and details_gap:
            self.counters["emissions_held_for_a_gap"] += 1
            self.keep_unsettled(order_id)
        elif outcome is Verdict.EMIT:
            self.to_emit.append(order_id)
        elif outcome is Verdict.UNSETTLED:
            self.keep_unsettled(order_id)
        else:
            self.settling.settled(self.partition, order_id)
            if outcome is Verdict.DELETED:
                self.worker.retention.deleted(self.partition, order_id, now)
            for kind in owed_alerts(state, self.worker.rules):
                self.raise_alert(Alert(kind, order_id))

    def check_alerts(self, order_id: str) -> None:
        """An order due a look (agents.alert_watch): stalled, or its alert waits."""
        state = self.get(order_id)
        for kind in ([STALLED] if is_stalled(state) else owed_alerts(state, self.worker.rules)):
            self.raise_alert(Alert(kind, order_id))

    def get(self, order_id: str) -> OrderState:
        self.touched.add(order_id)
        return self.states.get(self.partition, order_id)

    def put(self, order_id: str, state: OrderState) -> None:
        self.touched.add(order_id)
        self.states.put(self.partition, order_id, state)

    def keep_unsettled(self, order_id: str) -> None:
        """A complete order waits (agents.settling says until when)."""
        self.settling.wait(self.partition, order_id, self.get(order_id).newest_detail, time.time())

    def record_emitted(self, order_id: str, sent: list | None = None) -> None:
        """The order is in order_final: its state says so (and only that, tables.order_state,
        once no completion alert is owed), and it waits for nothing more.

        `sent`: the version of the state that went out, as the notice has it
        (agents.completion_rule.version). A state behind it lacks changes that were applied before
        the send but are not in the changelog: the worker that sent it stopped before its next
        flush, and those records are read again after this notice. Recorded now, the order
        would keep a partial state (a bulk order's alert missed); it is recorded from its claim
        once they are applied. An order this worker has in flight is held as it was sent (a
        recovery forgets what is in flight), so only the others are compared."""
        state = self.get(order_id)
        if (sent is not None and order_id not in self.settling.in_flight and not state.emitted
                and is_behind(state, noticed_version(sent))):
            self.counters["emitted_notices_ahead_of_state"] += 1
            self.settling.emitted(self.partition, order_id)
            return
        if not state.emitted:
            owed = on_completion(state, self.worker.rules)
            self.put(order_id, state._replace(emitted=True) if owed else marker(int(time.time())))
            for kind in owed:
                self.raise_alert(Alert(kind, order_id))
        self.settling.emitted(self.partition, order_id)

    def raise_alert(self, alert: Alert) -> None:
        if alert not in self.worker.watch.in_flight and alert not in self.to_alert:
            self.to_alert.append(alert)

    def record_alerted(self, alert: Alert) -> None:
        """The alert is on order_alerts: the state says so; an emitted order owing nothing more
        shrinks to the marker."""
        self.worker.watch.in_flight.discard(alert)
        state = self.get(alert.order_id)
        if alert.kind in state.alerts:
            return
        state = state._replace(alerts=state.alerts | {alert.kind})
        done = state.emitted and not on_completion(state, self.worker.rules)
        self.put(alert.order_id, marker(int(time.time())) if done else state)
