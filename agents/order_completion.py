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
"""

from __future__ import annotations

import logging
import time

import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP, Message

from agents.guard import RedisGuard
from agents.completion import CAUGHT_UP, Verdict, apply_detail, apply_order, verdict
from agents.alert_watch import AlertWatch
from agents.alerts import STALLED, AlertRules, is_stalled, on_completion, on_deletion
from agents.emission import CLAIM_TTL_MS, AlertOutput, Emission, FinalOutput
from agents.partition_slice import PartitionSlice
from agents.retention import Retention
from agents.settling import Settling
from config import settings
from streams import topics
from streams.app import app
from streams.metrics import WORKER, batch_seconds, counters as stats
from streams.codec import Change, CodecError, OrderChange, Position, Tombstone, Truncate, decode_detail, decode_order
from tables.order_progress import FLUSH_INTERVAL_S, order_progress, order_states, stored_states
from tables.order_state import EMITTED
from tables.reference_data import reference_reader

log = logging.getLogger(__name__)

# A quiet partition's tick settles orders unsettled at least this long before its check:
# the broker appends one produce request's partitions one after another.
SETTLE_MARGIN_S = 0.05
TICK_INTERVAL_S = 0.25
# Events are taken in batches: decisions, Redis claims and table writes once per batch.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.02
# Longest wait, in a rebalance, for this worker's changelog writes (inside the rebalance timeout).
REVOKE_WAIT_S = 10.0

states = order_states
settling = Settling()
retention = Retention(settings.state_retention_s)
RETENTION_CHECK_S = max(0.5, min(60.0, settings.state_retention_s / 4))
rules = AlertRules(settings.alert_bulk_quantity, settings.alert_bulk_products, settings.stall_after_s)
watch = AlertWatch(settings.stall_after_s)
ALERT_CHECK_S = max(0.5, min(30.0, settings.stall_after_s / 10))
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
    # The records come through the app's feed (streams.feed), straight from the consumer.
    # Each holds one reference, released by the state cache once the changelog holds what
    # the record changed: an offset committed before that would let the partition's next
    # owner skip a change it never recovered (tables.order_progress says how Faust's own
    # flush falls short).
    async for batch in app.feed.batches(stream, BATCH_MAX, within_s=BATCH_WITHIN_S):
        await reference_reader.ready()  # a starting worker's first orders go out enriched
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


@app.timer(interval=1.0)
async def reread_stuck_partitions() -> None:
    app.consumer.reread_if_stuck()


@app.timer(interval=FLUSH_INTERVAL_S / 2)
async def flush_quiet_state() -> None:
    """Flush the state cache when no batch comes to do it (a quiet stream still commits)."""
    if states.flush_due:
        states.flush()


@app.on_partitions_revoked.connect
@app.on_before_shutdown.connect  # a stopping worker leaves the group after this
async def hand_over_durable_state(sender, *_, **__) -> None:
    """Before partitions move, write what the cache holds and let every changelog write reach
    the broker: a write landing after the next owner has recovered would be missing from its
    state and, later in the changelog than that owner's own writes, would shadow them in any
    later recovery."""
    started = time.monotonic()
    pending = await states.hand_over(timeout_s=REVOKE_WAIT_S)
    if pending:
        log.warning("%d state flushes still unacknowledged after %.0f s; handing partitions over anyway",
                    pending, REVOKE_WAIT_S)
    else:
        log.info("changelog writes acknowledged before handing partitions over (%.2f s)", time.monotonic() - started)


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
        watch.changed(part.partition, order_id, now, incomplete=outcome is Verdict.INCOMPLETE)
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


@app.timer(interval=ALERT_CHECK_S)
async def send_alert_checks() -> None:
    """Ask the agent (a tick on each partition with orders due a look) to check for alerts:
    table writes belong in the agent."""
    if app.rebalancing or not app.tables.actives_ready:
        return
    owned = order_progress.owned_partitions()
    watch.keep_only(set(owned))
    now = time.time()
    for partition in watch.partitions_with_work(now):
        await topics.settle_ticks.send(key=b"check", value=orjson.dumps({"check": now}), partition=partition)


@app.timer(interval=RETENTION_CHECK_S)
async def drop_expired_cancellations() -> None:
    """Drop the state of orders cancelled longer than STATE_RETENTION_S ago (agents.retention)."""
    if app.rebalancing:
        return
    owned = order_progress.owned_partitions()
    retention.keep_only(set(owned))
    now = time.time()
    for partition in owned:
        for order_id in retention.expired(partition, now):
            if states.get(partition, order_id).deleted:  # not inserted again since
                states.drop(partition, order_id)
                stats["cancelled_states_dropped"] += 1


@app.timer(interval=TICK_INTERVAL_S)
async def tick_quiet_partitions() -> None:
    """For partitions with unsettled orders whose orders topic is processed to its log end,
    send a settle tick (handled in the agent, where table writes belong)."""
    if app.rebalancing or not app.tables.actives_ready:
        return
    waiting = settling.waiting_partitions()
    if not waiting:
        return
    tps = [TP(ORDERS_TOPIC, p) for p in waiting]
    checked_at = time.time()
    ends = await app.consumer.highwaters(*tps)
    for tp in tps:
        # processed, not fetched (agents.settling); before the first record, from the commit
        processed = settling.processed_offset(tp.partition, app.consumer.committed_offset(tp))
        stats["tick_checks"] += 1
        if processed is not None and ends.get(tp) is not None and processed >= ends[tp]:
            stats["ticks_sent"] += 1
            await topics.settle_ticks.send(key=b"tick", value=orjson.dumps({"at": checked_at}),
                                           partition=tp.partition)


def _partition_of(order_id: str) -> int:
    """The partition Kafka's default partitioner gives the order's key (as Connect and Faust do)."""
    partitions = list(range(settings.topic_partitions))
    return DefaultPartitioner()(orjson.dumps(order_id), partitions, partitions)


@order_progress.on_recover
async def rebuild_unsettled() -> None:
    """After recovery, orders complete but not emitted wait in `unsettled` again, cancelled
    ones for the end of their retention, incomplete ones to be found stalled, and orders
    owing an alert for the next check."""
    assigned = {tp.partition for tp in app.assignor.assigned_actives()
                if tp.topic == ORDERS_TOPIC}
    waiting, quiet, now = [], [], time.time()
    for order_id, state in stored_states():
        if state is EMITTED:
            continue
        partition = _partition_of(order_id)
        if partition not in assigned:
            continue
        if owed_alerts(state):
            watch.again(partition, order_id)
        if state.deleted:  # its retention starts again: dropped no sooner than promised
            retention.deleted(partition, order_id, now)
        elif state.complete and not state.emitted:
            waiting.append((partition, order_id, state.newest_detail))
        elif is_stalled(state):  # quiet since its last change in the source
            quiet.append((state.last_committed_ms / 1000 or now, partition, order_id))
    for since, partition, order_id in sorted(quiet):
        watch.changed(partition, order_id, since, incomplete=True)
    settling.restart(waiting, now)
    log.info("recovered: %d orders waiting to settle", settling.unsettled_count())
