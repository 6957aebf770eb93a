"""What runs beside the completion agent's loop (agents.completion_loop): its timers, the
hand-over before partitions move, the rebuild of its bookkeeping after recovery, and the
reading of the reference data. Each reaches the worker's parts through `app.completion`
(agents.completion_worker).

A timer that fails (the broker away longer than a request's timeout, say) is logged and
counted, and runs again at its next tick: an exception out of a Faust timer would stop the
worker. Timers never write the table themselves: table writes belong in the agent, so a timer that
finds work sends the agent a tick on `<app>-settle-ticks` (settle, check for alerts) and the
agent acts when the tick arrives, in order with the partition's records. Flushes and the
hand-over go through the worker's commit protocol (streams.runtime.commit_protocol), dropping
expired cancellations through the state cache, by partition.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable

import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP

from agents.alerts import is_stalled, owed_alerts
from agents.retention import MarkerFate
from agents.completion_worker import CompletionWorker
from config import settings
from streams import topics
from streams.app import app
from streams.runtime.commit_protocol import HandOverIncomplete
from tables.order_progress import FLUSH_INTERVAL_S, order_progress, stored_states
from tables.order_state import is_marker, marker, marker_time

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 0.25
# Longest wait, in a rebalance, for this worker's changelog writes (inside the rebalance timeout).
REVOKE_WAIT_S = 10.0
RETENTION_CHECK_S = max(0.5, min(60.0, settings.state_retention_s / 4))
SWEEP_CHUNK = 2000  # stored states read between two looks at the agent
ALERT_CHECK_S = max(0.5, min(30.0, settings.stall_after_s / 10))
REFERENCE_RETRY_S = 5.0


def runs_again(timer: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
    """The timer, whose failure is logged and counted instead of stopping the worker."""
    @functools.wraps(timer)
    async def guarded() -> None:
        try:
            await timer()
        except Exception:  # noqa: BLE001 - its next tick tries again
            app.completion.counters["upkeep_failures"] += 1
            log.exception("%s failed; it runs again at its next tick", timer.__name__)
    guarded.runs_again = True
    return guarded


@app.timer(interval=1.0)
@runs_again
async def reread_stuck_partitions() -> None:
    app.completion.commit_protocol.reread_if_stuck()


@app.timer(interval=1.0)
@runs_again
async def seek_starved_partitions() -> None:
    """Partitions with records waiting that nothing delivers (streams.runtime.starvation)."""
    await app.consumer.seek_starved(time.monotonic())


@app.timer(interval=FLUSH_INTERVAL_S / 2)
@runs_again
async def flush_quiet_state() -> None:
    """Flush when no batch comes to do it (a quiet stream still commits)."""
    app.completion.commit_protocol.flush_if_due()


@app.on_partitions_revoked.connect
@app.on_before_shutdown.connect  # a stopping worker leaves the group after this
async def hand_over_durable_state(sender, *_, **__) -> None:
    """Before partitions move, write what the cache holds and let every changelog write reach
    the broker: a write landing after the next owner has recovered would be missing from its
    state and, later in the changelog than that owner's own writes, would shadow them in any
    later recovery."""
    started = time.monotonic()
    try:
        await app.completion.commit_protocol.hand_over(timeout_s=REVOKE_WAIT_S)
    except HandOverIncomplete as incomplete:
        log.warning("%s; handing partitions over anyway", incomplete)
    else:
        log.info("changelog writes acknowledged before handing partitions over (%.2f s)", time.monotonic() - started)



@app.timer(interval=RETENTION_CHECK_S)
@runs_again
async def drop_expired_state() -> None:
    """Drop the state of orders cancelled, and the markers of orders emitted, longer than
    STATE_RETENTION_S ago (agents.retention)."""
    if app.rebalancing:
        return
    worker = app.completion
    owned = order_progress.owned_partitions()
    worker.retention.keep_only(set(owned))
    now = time.time()
    for partition in owned:
        for order_id in worker.retention.expired(partition, now):
            if worker.states.get(partition, order_id).deleted:  # not inserted again since
                worker.states.drop(partition, order_id)
                worker.counters["cancelled_states_dropped"] += 1
        try:
            await sweep_markers(worker, partition, now)
        except Exception:  # noqa: BLE001 - markers are dropped late, not never: the next check tries again
            worker.counters["marker_sweep_failures"] += 1
            log.exception("sweeping partition %d for expired markers failed; trying again at the next check",
                          partition)


async def sweep_markers(worker: CompletionWorker, partition: int, now: float) -> None:
    """Read the partition's next slice of stored states, a chunk at a time (the agent runs
    between chunks), and drop the emitted markers older than the retention."""
    states, retention = worker.states, worker.retention
    to_read = retention.sweep_size(order_progress.stored_keys(partition), RETENTION_CHECK_S)
    while to_read > 0 and not app.rebalancing and partition in order_progress.owned_partitions():
        chunk = min(SWEEP_CHUNK, to_read)
        stored = order_progress.scan_local(partition, retention.sweep_from(partition), chunk)
        to_read -= chunk
        at_end = len(stored) < chunk
        retention.swept(partition, None if at_end else stored[-1][0])
        for order_id, raw in stored:
            made_at = marker_time(raw)
            if made_at is None:
                continue
            cached = states.peek(order_id)  # newer than the table's, if there
            if cached is not None and not (is_marker(cached) and cached.emitted_at == made_at):
                continue
            fate = retention.marker_fate(made_at, now)
            if fate is MarkerFate.RESTART:
                states.put(partition, order_id, marker(int(now)))
            elif fate is MarkerFate.DROP:
                states.drop(partition, order_id)
                worker.counters["emitted_markers_dropped"] += 1
        worker.commit_protocol.flush_if_due()
        if at_end:
            return
        await asyncio.sleep(0)


@app.timer(interval=ALERT_CHECK_S)
@runs_again
async def send_alert_checks() -> None:
    """Ask the agent (a tick on each partition with orders due a look) to check for alerts:
    table writes belong in the agent. Only partitions whose orders and order_details are
    processed to their log ends: behind them, an order's next change may be waiting unread,
    and it would be called stalled while the stream, not the shop, is slow."""
    if app.rebalancing or not app.tables.actives_ready:
        return
    worker = app.completion
    owned = order_progress.owned_partitions()
    worker.watch.keep_only(set(owned))
    now = time.time()
    due = worker.watch.partitions_with_work(now)
    if not due:
        return
    orders, details = ({p: TP(topic, p) for p in due} for topic in (worker.orders_topic, worker.details_topic))
    ends = await app.consumer.highwaters(*orders.values(), *details.values())
    settling = worker.settling
    for partition in due:
        processed = (settling.processed_offset(partition, worker.committed_offset(orders[partition])),
                     settling.details_processed_offset(partition, worker.committed_offset(details[partition])))
        read_to_end = [ends.get(tp) for tp in (orders[partition], details[partition])]
        if all(at is not None and end is not None and at >= end for at, end in zip(processed, read_to_end)):
            await topics.settle_ticks.send(key=b"check", value=orjson.dumps({"check": now}), partition=partition)



@app.timer(interval=TICK_INTERVAL_S)
@runs_again
async def tick_quiet_partitions() -> None:
    """For partitions with unsettled orders whose orders topic is processed to its log end,
    send a settle tick (handled in the agent, where table writes belong) carrying the
    connector's committed position (streams.runtime.connect_offsets): it settles the orders
    whose newest detail is older."""
    if app.rebalancing or not app.tables.actives_ready:
        return
    worker = app.completion
    worker.settling.keep_only(set(order_progress.owned_partitions()))
    waiting = worker.settling.waiting_partitions()
    if not waiting:
        return
    # Read before the log ends: every change committed before it is in Kafka by then.
    source = worker.cdc_committed.position
    if source is None:
        worker.counters["ticks_without_committed_position"] += 1
        return
    tps = [TP(worker.orders_topic, p) for p in waiting]
    checked_at = time.time()
    ends = await app.consumer.highwaters(*tps)
    for tp in tps:
        # processed, not fetched (agents.settling); before the first record, from the commit
        processed = worker.settling.processed_offset(tp.partition, worker.committed_offset(tp))
        worker.counters["tick_checks"] += 1
        if processed is not None and ends.get(tp) is not None and processed >= ends[tp]:
            worker.counters["ticks_sent"] += 1
            await topics.settle_ticks.send(key=b"tick", value=orjson.dumps({"at": checked_at, "source": list(source)}),
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
    worker = app.completion
    assigned = {tp.partition for tp in app.assignor.assigned_actives()
                if tp.topic == worker.orders_topic}
    waiting, quiet, now = [], [], time.time()
    for order_id, state in stored_states():
        if is_marker(state):
            continue
        partition = _partition_of(order_id)
        if partition not in assigned:
            continue
        if owed_alerts(state, worker.rules):
            worker.watch.again(partition, order_id)
        if state.deleted:  # its retention starts again: dropped no sooner than promised
            worker.retention.deleted(partition, order_id, now)
        elif state.complete and not state.emitted:
            waiting.append((partition, order_id, state.newest_detail))
        elif is_stalled(state):  # quiet since its last change in the source
            quiet.append((state.last_committed_ms / 1000 or now, partition, order_id))
    for since, partition, order_id in sorted(quiet):
        worker.watch.changed(partition, order_id, since, incomplete=True)
    worker.settling.restart(waiting, now)
    log.info("recovered: %d orders waiting to settle", worker.settling.unsettled_count())


async def keep_following(what: str, follow: Callable[[], Awaitable[None]],
                         after_failure: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run `follow` for as long as the worker runs; a failure (Kafka or Redis away, a topic
    missing) is logged and counted, and it runs again REFERENCE_RETRY_S later."""
    while True:
        try:
            await follow()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - read again
            app.completion.counters[f"{what.replace(' ', '_')}_failures"] += 1
            log.exception("following %s failed; again in %.0f s", what, REFERENCE_RETRY_S)
            if after_failure is not None:
                await after_failure()
        await asyncio.sleep(REFERENCE_RETRY_S)


@app.task
async def follow_connector_position() -> None:
    """Keep the connector's committed position current (quiet partitions' orders wait for it)."""
    await keep_following("connector position", lambda: app.completion.cdc_committed.follow(app.conf.id))


@app.task
async def follow_reference_data() -> None:
    """Keep this worker's reference data current (tables.reference_data), read again from what was stored."""
    reader = app.completion.reference
    await keep_following("reference data", lambda: reader.follow(app.conf.id), after_failure=reader.close)
