"""The completion agent: CDC changes in, exactly one `order_final` per completed order out.

The loop decodes, loads the order's state, applies the change (agents.completion, pure),
decides which orders are settled (agents.settling, pure), and hands those to the worker's
`Emission` (agents.emission), which says why each is sent exactly once.

Batches: events are taken up to BATCH_MAX at a time or every BATCH_WITHIN_S; each
partition's slice is applied in order and decided; then the settled orders of every slice
are claimed in one Redis round trip (a round trip costs milliseconds, a batch spans up to
TOPIC_PARTITIONS partitions), and table writes wait for the cache's next flush. An order
is judged by its state at the end of the slice: one that completes and is cancelled within
the same 20 ms is not emitted (the generator's traffic never leaves "complete", so for it
this changes nothing).

Settling across topics (see agents.completion): a complete order waits until the orders
topic has been read past its newest detail. Per partition the worker tracks that frontier;
when a partition goes quiet, a timer checks that the orders partition has been processed to
its log end and sends itself a tick on `orderpipe-settle-ticks`, whose processing settles
orders that became complete before the check.

Alerts (agents.alerts): a slice raises the ones its orders call for, and `Emission` sends
them to `order_alerts` like order_final. The timers, the hand-over before partitions move
and the rebuild after recovery are in agents.upkeep.
"""

from __future__ import annotations

import logging
import time

import orjson
from faust.types import Message

from agents.guard import RedisGuard
from agents.completion import CAUGHT_UP, Verdict, apply_detail, apply_order, verdict
from agents.alert_watch import AlertWatch
from agents.alerts import STALLED, AlertRules, is_stalled, on_completion, on_deletion
from agents.emission import CLAIM_TTL_MS, Emission
from agents.outputs import AlertOutput, FinalOutput
from agents.partition_slice import PartitionSlice
from agents.retention import Retention
from agents.settling import Settling
from config import settings
from streams import topics
from streams.app import app
from streams.runtime.metrics import WORKER, batch_seconds, counters as stats
from streams.codec import Change, CodecError, OrderChange, Position, Tombstone, Truncate, decode_detail, decode_order
from tables.order_progress import order_states

log = logging.getLogger(__name__)

# A quiet partition's tick settles orders unsettled at least this long before its check:
# the broker appends one produce request's partitions one after another.
SETTLE_MARGIN_S = 0.05
# Events are taken in batches: decisions, Redis claims and table writes once per batch.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.02

states = order_states
settling = Settling()
retention = Retention(settings.state_retention_s)
rules = AlertRules(settings.alert_bulk_quantity, settings.alert_bulk_products, settings.stall_after_s)
watch = AlertWatch(settings.stall_after_s)
emission = Emission([
    FinalOutput(topics.order_final, RedisGuard(settings.redis_url, WORKER, CLAIM_TTL_MS, settings.order_final_topic),
                settling),
    AlertOutput(topics.order_alerts, RedisGuard(settings.redis_url, WORKER, CLAIM_TTL_MS, settings.order_alerts_topic),
                watch)])


ORDERS_TOPIC = topics.orders.get_topic_name()
TICKS_TOPIC = topics.settle_ticks.get_topic_name()


def decode(message) -> Change:
    if message.topic == ORDERS_TOPIC:
        return decode_order(message.key, message.value)
    return decode_detail(message.key, message.value)


@app.agent(topics.order_changes)
async def complete_orders(stream):
    # The records come through the app's feed (streams.runtime.feed), straight from the consumer.
    # Each holds one reference, released by the state cache once the changelog holds what
    # the record changed: an offset committed before that would let the partition's next
    # owner skip a change it never recovered (tables.order_progress says how Faust's own
    # flush falls short).
    async for batch in app.feed.batches(stream, BATCH_MAX, within_s=BATCH_WITHIN_S):
        started = time.perf_counter()
        by_partition: dict[int, list[Message]] = {}
        for message in batch:
            by_partition.setdefault(message.partition, []).append(message)
        parts = [PartitionSlice(partition, messages, states, settling, watch, rules)
                 for partition, messages in by_partition.items()]
        for part in parts:
            await process(part)
        await emission.emit(parts)
        for part in parts:
            states.hold(part.partition, part.messages)
        if states.flush_due:
            states.flush()
        batch_seconds.observe(time.perf_counter() - started)


async def process(part: PartitionSlice) -> None:
    """Apply one partition's events in order, then decide which orders are to be sent (the
    state cache writes the changed orders at its next flush)."""
    partition = part.partition
    settled_before: float | None = None  # a tick's check time: settle what waited since before it
    quiet_before: float | None = None  # an alert check's: orders quiet since before it may have stalled
    for message in part.messages:
        if message.topic == TICKS_TOPIC:
            notice = orjson.loads(message.value)
            if "emitted" in notice:
                for order_id in notice["emitted"]:
                    part.record_emitted(order_id)
            elif "alerted" in notice:
                for item in notice["alerted"]:
                    part.record_alerted(*item.split(":", 1))
            elif "check" in notice:
                quiet_before = max(quiet_before or 0.0, notice["check"] - rules.stall_after_s)
            else:
                stats["ticks_received"] += 1
                settled_before = max(settled_before or 0.0, notice["at"] - SETTLE_MARGIN_S)
            continue
        stats["events_in"] += 1
        in_order = True
        if message.topic == ORDERS_TOPIC:
            in_order = settling.orders_record_read(partition, message.offset,
                                                   app.consumer.committed_offset(message.tp))
            if not in_order:
                stats["orders_records_after_a_gap"] += 1
        else:
            settling.details_record_read(partition, message.offset, app.consumer.committed_offset(message.tp))
        try:
            change = decode(message)
        except CodecError as error:
            await topics.dead_letter(message, str(error))
            continue
        apply(part, change, moves_frontier=in_order)
    ready = settling.ready(partition, settled_before)
    decide(part, part.touched - ready, settling.frontier(partition))
    decide(part, ready, CAUGHT_UP)
    if quiet_before is not None:
        check_alerts(part, watch.due(partition, quiet_before))
    stats["unsettled_now"] = settling.unsettled_count()


def apply(part: PartitionSlice, change, moves_frontier: bool = True) -> None:
    if isinstance(change, Tombstone):
        stats["tombstones"] += 1
        return
    if isinstance(change, Truncate):
        stats["truncates"] += 1
        log.warning("TRUNCATE of %s at %s ignored: orders in flight keep their state", change.table,
                    change.position)
        return
    if isinstance(change, OrderChange):
        stats["order_changes"] += 1
        if moves_frontier:
            settling.orders_change_applied(part.partition, change.position)
    else:
        stats["detail_changes"] += 1
    state = part.get(change.order_id)
    if state.emitted:  # settled for good: nothing it changes can matter any more
        stats["changes_after_emission"] += 1
        return
    updated = apply_order(state, change) if isinstance(change, OrderChange) else apply_detail(state, change)
    if updated is state:
        stats["redeliveries_ignored"] += 1
    part.put(change.order_id, updated)


def decide(part: PartitionSlice, order_ids: set[str], frontier: Position | None) -> None:
    """Mark the settled orders to be sent; remember the complete ones that are not yet (all
    of them while an order_details record of the partition is missing: agents.settling)."""
    details_gap = settling.details_gap(part.partition)
    now = time.time()
    for order_id in order_ids:
        if order_id in settling.in_flight:
            continue
        state = part.get(order_id)
        outcome = verdict(state, frontier)
        # quiet since its last change in the source (a stall is checked only once caught up)
        watch.changed(part.partition, order_id, state.last_committed_ms / 1000 or now,
                      incomplete=outcome is Verdict.INCOMPLETE)
        if outcome is Verdict.EMIT and details_gap:
            stats["emissions_held_for_a_gap"] += 1
            part.keep_unsettled(order_id)
        elif outcome is Verdict.EMIT:
            part.to_emit.append(order_id)
        elif outcome is Verdict.UNSETTLED:
            part.keep_unsettled(order_id)
        else:
            settling.settled(part.partition, order_id)
            if outcome is Verdict.DELETED:
                retention.deleted(part.partition, order_id, now)
            for kind in owed_alerts(state):
                part.raise_alert(kind, order_id)


def owed_alerts(state) -> list[str]:
    """The alerts a settled order still owes: a cancellation's, or a bulk order's whose
    order_final went out (recovery finds those between the two acknowledgements)."""
    if state.deleted:
        return on_deletion(state)
    return on_completion(state, rules) if state.emitted else []


def check_alerts(part: PartitionSlice, order_ids: set[str]) -> None:
    """Orders due a look (agents.alert_watch): stalled ones, and those whose alert waits."""
    for order_id in order_ids:
        state = part.get(order_id)
        for kind in ([STALLED] if is_stalled(state) else owed_alerts(state)):
            part.raise_alert(kind, order_id)
