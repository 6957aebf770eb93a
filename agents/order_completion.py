"""The completion agent: CDC changes in, exactly one `order_final` per completed order out.

The loop decodes, loads the order's state, applies the change (agents.completion, pure),
and emits when the rule says EMIT. Everything about *when* is in agents.completion; this
module is about doing it exactly once.

Why exactly one
---------------
State: `order_progress[order_id]` (RocksDB + changelog) holds `emitted`, written after the
send is acknowledged. Guard: `order_trigger_lock:{order_id}` in Redis goes claimed -> sent
(agents.guard). Processing is at-least-once: after a crash or a rebalance, events since
the last committed offset are processed again, possibly by another worker, possibly while
the old one is still finishing.

1. Emit only after winning the claim (SET-if-absent), mark the key sent after the broker's
   ack, then record `emitted` in the table. The acks are awaited off the hot path, per
   batch: a confirmation marks the batch's keys (one Redis round trip) and posts one
   `emitted` notice listing them to the partition's tick topic, and the agent records them
   in the table there (table writes need the event's partition). Until then the orders are
   in flight and not emitted again. Any worker that later finds a key *sent* records
   `emitted` without sending: a re-delivery, a replay or a rebalance cannot produce a
   second message.
2. A worker that finds a *live* claim waits (the order stays unsettled and is retried).
   A claim is live for `claim_ttl` = the producer's request timeout + 5 s: a live claimant
   has its ack, or a definitive failure, by then.
3. A claim older than that is stale: its owner died (or failed) between claim and
   marking, and its send may or may not have reached the broker. The finder reads
   order_final from the claim's time on: if the order is there, it marks the key sent;
   only if it is absent does it take the claim over (compare-and-set) and send.
   So a crash between lock and send delays the order by at most claim_ttl; it never loses it,
   and never sends it twice. The claim carries no Redis TTL: an expiring key would forget
   that an order was sent.
Residual risks, stated: Redis losing its last second of writes (AOF everysec) *and* the
table losing the same emission; clocks of workers on different machines further apart
than the margin in claim_ttl.

Batches: events are taken up to BATCH_MAX at a time or every BATCH_WITHIN_S; each
partition's slice is applied in order and decided; then the settled orders of every slice
are claimed in one pipelined Redis round trip (a round trip costs milliseconds, a batch
spans up to TOPIC_PARTITIONS partitions), and table writes wait for the cache's next
flush. An order is judged by its state at the end of the slice: one that completes
and is cancelled within the same 20 ms is not emitted (the generator's traffic never
leaves "complete", so for it this changes nothing).

Settling across topics (see agents.completion): a complete order waits until the orders
topic has been read past its newest detail. Per partition the worker tracks that frontier
(agents.settling, one instance here); when a partition goes quiet, a timer checks that the
orders partition has been processed to its log end and sends itself a tick on
`orderpipe-settle-ticks`, whose processing settles orders that became complete before the
check.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.streams import _current_event
from faust.types import TP
from redis.exceptions import RedisError

from agents import guard as guards
from agents.completion import CAUGHT_UP, Verdict, apply_detail, apply_order, completed_order, verdict
from agents.order_final_lookup import find_sent
from agents.settling import Settling
from config import settings
from streams import topics
from streams.app import app
from streams.metrics import WORKER, counters as stats
from streams.codec import Change, CodecError, OrderChange, Position, Tombstone, Truncate, decode_detail, decode_order
from tables.order_progress import FLUSH_INTERVAL_S, order_progress, order_states, stored_states
from tables.order_state import OrderProgress

log = logging.getLogger(__name__)

CLAIM_TTL_MS = int((settings.producer_request_timeout_s + 5) * 1000)
# A quiet partition's tick settles orders unsettled at least this long before its check:
# the broker appends one produce request's partitions one after another.
SETTLE_MARGIN_S = 0.05
TICK_INTERVAL_S = 0.25
# Events are taken in batches: decisions, Redis claims and table writes once per batch.
BATCH_MAX = 1000
BATCH_WITHIN_S = 0.02
# Longest wait, in a rebalance, for this worker's changelog writes (inside the rebalance timeout).
REVOKE_WAIT_S = 10.0

guard = guards.RedisGuard(settings.redis_url, WORKER, CLAIM_TTL_MS)
states = order_states
settling = Settling()


ORDERS_TOPIC = topics.orders.get_topic_name()
TICKS_TOPIC = topics.settle_ticks.get_topic_name()


def decode(message) -> Change:
    if message.topic == ORDERS_TOPIC:
        return decode_order(message.key, message.value)
    return decode_detail(message.key, message.value)


@app.agent(topics.order_changes)
async def complete_orders(stream):
    async for batch in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        # Faust commits an event's offset once every reference to it is acked, and take_events
        # acks the whole batch as the next one is taken, or when the agent is cancelled
        # mid-batch. The agent holds one more reference, released by the state cache once
        # the changelog holds what the event changed: an offset committed before that would
        # let the partition's next owner skip a change it never recovered
        # (tables.order_progress says how Faust's own flush falls short).
        for event in batch:
            event.message.incref()
        by_partition: dict[int, list] = {}
        for event in batch:
            by_partition.setdefault(event.message.partition, []).append(event)
        slices = [Batch(partition, events) for partition, events in by_partition.items()]
        for work in slices:
            with work.current():
                await process(work)
        await emit(slices)
        for work in slices:
            states.hold(work.partition, work.events)
        if states.flush_due:
            states.flush()


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


background: set[asyncio.Task] = set()  # tasks the event loop would otherwise hold only weakly


def in_background(work) -> None:
    task = asyncio.ensure_future(work)
    background.add(task)
    task.add_done_callback(background.discard)


class Batch:
    """One partition's slice of a batch: its events, the orders they touched (read and
    written through the state cache), and those settled to be sent."""

    def __init__(self, partition: int, events: list) -> None:
        self.partition, self.events = partition, events
        self.touched: set[str] = set()
        self.to_emit: list[str] = []

    @contextmanager
    def current(self) -> Iterator[None]:
        """Table reads and writes go to the partition of the "current event": this slice's."""
        token = _current_event.set(weakref.ref(self.events[-1]))
        try:
            yield
        finally:
            _current_event.reset(token)

    def get(self, order_id: str) -> OrderProgress:
        self.touched.add(order_id)
        return states.get(self.partition, order_id)

    def put(self, order_id: str, state: OrderProgress) -> None:
        self.touched.add(order_id)
        states.put(self.partition, order_id, state)


async def process(work: Batch) -> None:
    """Apply one partition's events in order, then decide which orders are to be sent (the
    state cache writes the changed orders at its next flush)."""
    partition = work.partition
    settled_before: float | None = None  # a tick's check time: settle what waited since before it
    for event in work.events:
        message = event.message
        if message.topic == TICKS_TOPIC:
            notice = orjson.loads(message.value)
            if "emitted" in notice:
                for order_id in notice["emitted"]:
                    record_emitted(work, order_id)
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
            await dead_letter(message, str(error))
            continue
        apply(work, change, moves_frontier=in_order)
    ready = settling.ready(partition, settled_before)
    decide(work, work.touched - ready, settling.frontier(partition))
    decide(work, ready, CAUGHT_UP)
    stats["unsettled_now"] = settling.unsettled_count()


def apply(work: Batch, change, moves_frontier: bool = True) -> None:
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
            settling.orders_change_applied(work.partition, change.position)
    else:
        stats["detail_changes"] += 1
    state = work.get(change.order_id)
    if state.emitted:  # settled for good: nothing it changes can matter any more
        stats["changes_after_emission"] += 1
        return
    updated = apply_order(state, change) if isinstance(change, OrderChange) else apply_detail(state, change)
    if updated is state:
        stats["redeliveries_ignored"] += 1
    work.put(change.order_id, updated)


def decide(work: Batch, order_ids: set[str], frontier: Position | None) -> None:
    """Mark the settled orders to be sent; remember the complete ones that are not yet (all
    of them while an order_details record of the partition is missing: agents.settling)."""
    held = settling.details_gap(work.partition)
    for order_id in order_ids:
        if order_id in settling.in_flight:
            continue
        outcome = verdict(work.get(order_id), frontier)
        if outcome is Verdict.EMIT and held:
            stats["emissions_held_for_a_gap"] += 1
            keep_unsettled(work, order_id)
        elif outcome is Verdict.EMIT:
            work.to_emit.append(order_id)
        elif outcome is Verdict.UNSETTLED:
            keep_unsettled(work, order_id)
        else:
            settling.settled(work.partition, order_id)


async def emit(slices: list[Batch]) -> None:
    """Claim the batch's settled orders, every partition's, in one Redis round trip, then
    send (see the module docstring). A send started now leaves the order in `in_flight`
    until its confirmation; anything that cannot proceed stays unsettled."""
    wanted = [order_id for work in slices for order_id in work.to_emit]
    if not wanted:
        return
    await topics.outputs_ready.wait()
    now_ms = int(time.time() * 1000)
    try:
        claims = iter(await guard.claim_many(wanted, now_ms))
    except (RedisError, OSError, TimeoutError) as error:
        stats["emission_retries"] += len(wanted)
        log.warning("%d complete orders not sent yet (%s: %s); will retry", len(wanted),
                    type(error).__name__, error)
        for work in slices:
            for order_id in work.to_emit:
                keep_unsettled(work, order_id)
        return
    for work in slices:
        with work.current():
            sent = [await send(work, order_id, *next(claims), now_ms) for order_id in work.to_emit]
        sent = [entry for entry in sent if entry is not None]
        if sent:
            in_background(confirm(work.partition, sent))


async def send(work: Batch, order_id: str, claim: guards.Claim, mine: bytes | None,
               now_ms: int) -> tuple[str, bytes, asyncio.Future] | None:
    """Act on one order's claim: send it if the claim is ours (its confirmation comes later),
    record it if it was sent already, else leave it waiting."""
    state = work.get(order_id)
    try:
        if claim.outcome is guards.Outcome.SENT:
            stats["duplicates_prevented"] += 1
            work.put(order_id, replace(state, emitted=True))
            settling.settled(work.partition, order_id)
            return None
        if claim.outcome is guards.Outcome.HELD:
            stats["claims_held_elsewhere"] += 1
            keep_unsettled(work, order_id)
            return None
        if claim.outcome is guards.Outcome.STALE:
            mine = await resolve_stale(order_id, claim, now_ms)
            if mine is None:  # found in order_final, or taken by someone else meanwhile
                if await guard_says_sent(order_id):
                    work.put(order_id, replace(state, emitted=True))
                    settling.settled(work.partition, order_id)
                else:
                    keep_unsettled(work, order_id)
                return None
        value = completed_order(order_id, state, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        pending = await topics.produce(topics.order_final, key=order_id.encode(), value=orjson.dumps(value))
    except Exception as error:  # noqa: BLE001 - a claim left behind goes stale, then resolves
        stats["emission_retries"] += 1
        log.warning("order %s complete but not sent (%s: %s); will retry", order_id,
                    type(error).__name__, error)
        keep_unsettled(work, order_id)
        return None
    settling.sent(work.partition, order_id)
    return order_id, mine, pending


def keep_unsettled(work: Batch, order_id: str) -> None:
    """Remember a complete order that waits (agents.settling)."""
    settling.wait(work.partition, order_id, work.get(order_id).newest_detail, time.time())


async def resolve_stale(order_id: str, claim: guards.Claim, now_ms: int) -> bytes | None:
    """A claim whose owner died between claim and marking: was its send made? Our claim if not."""
    found = await asyncio.get_running_loop().run_in_executor(
        None, find_sent, settings, order_id, claim.claimed_at_ms - CLAIM_TTL_MS)
    if found is not None:
        await guard.record_sent(order_id, claim.held, *found)
        stats["duplicates_prevented"] += 1
        log.warning("order %s: a stale claim had sent it already (%s); recorded", order_id, found)
        return None
    mine = await guard.take_over(order_id, claim.held, now_ms)
    if mine is not None:
        log.warning("order %s: took over a stale claim; sending", order_id)
    return mine


async def guard_says_sent(order_id: str) -> bool:
    held = await guard.client.get(guards.KEY.format(order_id=order_id))
    return held is not None and guards.judge(held, 0, CLAIM_TTL_MS).outcome is guards.Outcome.SENT


async def confirm(partition: int, sent: list[tuple[str, bytes, asyncio.Future]]) -> None:
    """Await the broker's acks, mark the keys sent (one Redis round trip), and tell the agent
    to record them (one notice for the batch)."""
    acks = await asyncio.gather(*(pending for _, _, pending in sent), return_exceptions=True)
    acked = []
    for (order_id, mine, _), ack in zip(sent, acks):
        if isinstance(ack, BaseException):  # the claim goes stale, then resolves
            settling.send_failed(partition, order_id, time.time())
            stats["emission_retries"] += 1
            log.warning("order %s: send failed (%s: %s); the claim will be resolved after %d s",
                        order_id, type(ack).__name__, ack, CLAIM_TTL_MS // 1000)
        else:
            stats["completed"] += 1  # one message in order_final, acknowledged
            acked.append((order_id, mine, ack.partition, ack.offset))
    if not acked:
        return
    try:
        await guard.mark_sent_many(acked)
    except (RedisError, OSError, TimeoutError) as error:  # the claims go stale; the lookup finds the messages
        log.warning("%d orders sent but not marked in Redis (%s)", len(acked), error)
    notice = {"emitted": [order_id for order_id, *_ in acked]}
    await topics.settle_ticks.send(key=b"emitted", value=orjson.dumps(notice), partition=partition)


def record_emitted(work: Batch, order_id: str) -> None:
    state = work.get(order_id)
    if not state.emitted:
        work.put(order_id, replace(state, emitted=True))
    settling.emitted(work.partition, order_id)


async def dead_letter(message, reason: str) -> None:
    await topics.outputs_ready.wait()
    stats["dead_lettered"] += 1
    log.warning("dead-lettering %s[%d]@%d: %s", message.topic, message.partition, message.offset, reason)
    headers = [("reason", reason.encode()), ("topic", message.topic.encode()),
               ("partition", str(message.partition).encode()), ("offset", str(message.offset).encode())]
    await (await topics.dead_letters.send(key=message.key, value=message.value, headers=headers))


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
    """After recovery, orders complete but not emitted wait in `unsettled` again."""
    assigned = {tp.partition for tp in app.assignor.assigned_actives()
                if tp.topic == ORDERS_TOPIC}
    waiting = []
    for order_id, state in stored_states():
        if state.complete and not state.emitted:
            partition = _partition_of(order_id)
            if partition in assigned:
                waiting.append((partition, order_id, state.newest_detail))
    settling.restart(waiting, time.time())
    log.info("recovered: %d orders waiting to settle", settling.unsettled_count())
