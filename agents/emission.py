"""Sending completed orders to `order_final` exactly once: claim, send, confirm, record.

State: `order_progress[order_id]` (RocksDB + changelog) holds `emitted`, written after the
send is acknowledged. Guard: `order_trigger_lock:{order_id}` in Redis (scoped by output
topic, agents.guard) goes claimed -> sent. Processing is at-least-once: after a crash or a rebalance, events since
the last committed offset are processed again, possibly by another worker, possibly while
the old one is still finishing.

1. Emit only after winning the claim (SET-if-absent), mark the key sent after the broker's
   ack, then record `emitted` in the table. The acks are awaited off the hot path, per
   batch: a confirmation marks the batch's keys (one Redis round trip) and posts one
   `emitted` notice listing them to the partition's tick topic, and the agent records them
   in the table there (the partition's owner writes its table partition). Until then the orders are
   in flight and not emitted again. Any worker that later finds a key *sent* records
   `emitted` without sending: a re-delivery, a replay or a rebalance cannot produce a
   second message.
2. A worker that finds a *live* claim waits (the order stays unsettled and is retried).
   A claim is live for `claim_ttl` = the producer's request timeout + 5 s: a live claimant
   has its ack, or a definitive failure, by then.
3. A claim older than that is stale: its owner died (or failed) between claim and
   marking, and its send may or may not have reached the broker. The finder reads
   order_final from the claim's time on (once for all of a batch's stale claims, from the
   oldest): if the order is there, it marks the key sent; only if it is absent does it take
   the claim over (compare-and-set) and send.
   So a crash between lock and send delays the order by at most claim_ttl; it never loses it,
   and never sends it twice. The claim carries no Redis TTL: an expiring key would forget
   that an order was sent.
Residual risks, stated: Redis losing its last second of writes (AOF everysec) *and* the
table losing the same emission; clocks of workers on different machines further apart
than the margin in claim_ttl.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from redis.exceptions import RedisError

from agents.guard import Claim, Outcome, RedisGuard
from agents.completion import completed_order
from agents.order_final_lookup import find_sent
from agents.partition_slice import PartitionSlice
from agents.settling import Settling
from config import settings
from streams import topics
from streams.metrics import counters as stats, order_final_latency
from tables.reference_data import enrichment

log = logging.getLogger(__name__)

CLAIM_TTL_MS = int((settings.producer_request_timeout_s + 5) * 1000)

FOUND = b"found in order_final"  # a stale claim's send that was made: record, do not send
Sent = tuple[str, bytes, asyncio.Future, int]  # order id, our claim, the broker's ack to come, source ts (ms)


class Emission:
    """This worker's sends: the Redis guard and the confirmations still to come."""

    def __init__(self, guard: RedisGuard, settling: Settling) -> None:
        self.guard, self.settling = guard, settling
        self.confirming: set[asyncio.Task] = set()  # the event loop holds tasks only weakly

    async def emit(self, parts: list[PartitionSlice]) -> None:
        """Claim the batch's settled orders, every partition's, in one Redis round trip, then
        send. A send started now leaves the order in flight until its confirmation; anything
        that cannot proceed stays unsettled."""
        wanted = [order_id for part in parts for order_id in part.to_emit]
        if not wanted:
            return
        await topics.outputs_ready.wait()
        now_ms = int(time.time() * 1000)
        try:
            claims = await self.guard.claim_many(wanted, now_ms)
        except (RedisError, OSError, TimeoutError) as error:
            stats["emission_retries"] += len(wanted)
            log.warning("%d complete orders not sent yet (%s: %s); will retry", len(wanted),
                        type(error).__name__, error)
            for part in parts:
                for order_id in part.to_emit:
                    part.keep_unsettled(order_id)
            return
        stale = {order_id: claim for order_id, (claim, _) in zip(wanted, claims) if claim.outcome is Outcome.STALE}
        resolved = await self._resolve_stale(stale, now_ms) if stale else {}
        in_order = iter(claims)  # the parts' to_emit, one after another, as claimed
        for part in parts:
            sent = [await self._send(part, order_id, *next(in_order), resolved) for order_id in part.to_emit]
            sent = [entry for entry in sent if entry is not None]
            if sent:
                task = asyncio.ensure_future(self._confirm(part.partition, sent))
                self.confirming.add(task)
                task.add_done_callback(self.confirming.discard)

    async def _send(self, part: PartitionSlice, order_id: str, claim: Claim, our_claim: bytes | None,
                    resolved: dict[str, bytes | None]) -> Sent | None:
        """Act on one order's claim: send it if the claim is ours (its confirmation comes
        later), record it if it was sent already, else leave it waiting."""
        try:
            if claim.outcome is Outcome.STALE:
                if order_id not in resolved:  # its lookup failed: try again later
                    part.keep_unsettled(order_id)
                    return None
                our_claim = resolved[order_id]
                if our_claim is FOUND:
                    part.record_emitted(order_id)
                    return None
                if our_claim is None:  # another worker took it over meanwhile
                    part.keep_unsettled(order_id)
                    return None
            elif claim.outcome is Outcome.SENT:
                stats["duplicates_prevented"] += 1
                part.record_emitted(order_id)
                return None
            elif claim.outcome is Outcome.HELD:
                stats["claims_held_elsewhere"] += 1
                part.keep_unsettled(order_id)
                return None
            state = part.get(order_id)
            customer, payment_method = enrichment(state.customer_id, state.payment_method_id)
            if customer is None:
                stats["unenriched_customer"] += 1
            if payment_method is None:
                stats["unenriched_payment_method"] += 1
            value = completed_order(order_id, state, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    customer, payment_method)
            pending = await topics.produce(topics.order_final, key=order_id.encode(), value=orjson.dumps(value))
        except Exception as error:  # noqa: BLE001 - a claim left behind goes stale, then resolves
            stats["emission_retries"] += 1
            log.warning("order %s complete but not sent (%s: %s); will retry", order_id,
                        type(error).__name__, error)
            part.keep_unsettled(order_id)
            return None
        self.settling.sent(part.partition, order_id)
        return order_id, our_claim, pending, value["source_ts_ms"]

    async def _resolve_stale(self, stale: dict[str, Claim], now_ms: int) -> dict[str, bytes | None]:
        """Claims whose owner died between claim and marking: were their sends made? One read
        of order_final for the batch, from the oldest claim's time; one Redis call to mark
        the sends found and one to take the others over. Per order: FOUND, our new claim,
        or None (taken by someone else). Empty if the lookup failed (they wait and retry)."""
        since_ms = min(claim.claimed_at_ms for claim in stale.values()) - CLAIM_TTL_MS
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, find_sent, settings, set(stale), since_ms)
            await self.guard.mark_sent_many([(order_id, stale[order_id].found_value, *where)
                                             for order_id, where in found.items()])
            taken = await self.guard.take_over_many([(order_id, claim.found_value) for order_id, claim in stale.items()
                                                     if order_id not in found], now_ms)
        except Exception as error:  # noqa: BLE001 - Kafka or Redis: the claims stay stale and are retried
            stats["emission_retries"] += len(stale)
            log.warning("%d stale claims not resolved yet (%s: %s); will retry", len(stale),
                        type(error).__name__, error)
            return {}
        stats["duplicates_prevented"] += len(found)
        log.warning("%d stale claims resolved: %d had sent their order already (recorded), %d taken over to send",
                    len(stale), len(found), sum(claim is not None for claim in taken.values()))
        return {**taken, **{order_id: FOUND for order_id in found}}

    async def _confirm(self, partition: int, sent: list[Sent]) -> None:
        """Await the broker's acks, mark the keys sent (one Redis round trip), and tell the
        agent to record them (one notice for the batch)."""
        acks = await asyncio.gather(*(pending for _, _, pending, _ in sent), return_exceptions=True)
        acked_at_ms = time.time() * 1000
        acked = []
        for (order_id, our_claim, _, source_ts_ms), ack in zip(sent, acks):
            if isinstance(ack, BaseException):  # the claim goes stale, then resolves
                self.settling.send_failed(partition, order_id, time.time())
                stats["emission_retries"] += 1
                log.warning("order %s: send failed (%s: %s); the claim will be resolved after %d s",
                            order_id, type(ack).__name__, ack, CLAIM_TTL_MS // 1000)
            else:
                stats["completed"] += 1  # one message in order_final, acknowledged
                if source_ts_ms:
                    order_final_latency.observe(max(0.0, acked_at_ms - source_ts_ms) / 1000)
                acked.append((order_id, our_claim, ack.partition, ack.offset))
        if not acked:
            return
        try:
            await self.guard.mark_sent_many(acked)
        except (RedisError, OSError, TimeoutError) as error:  # the claims go stale; the lookup finds the messages
            log.warning("%d orders sent but not marked in Redis (%s)", len(acked), error)
        notice = {"emitted": [order_id for order_id, *_ in acked]}
        await topics.settle_ticks.send(key=b"emitted", value=orjson.dumps(notice), partition=partition)
