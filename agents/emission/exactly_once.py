"""Sending completed orders to `order_final`, and alerts to `order_alerts`, exactly once:
claim, send, confirm, record. Below for order_final; an alert is the same with the item
an `Alert` (its guard key `order_trigger_lock:order_alerts:<kind>:<order_id>`), its
record the kind in the state's `alerts`, and its stale claims looked up in order_alerts by
key and `kind` header. Each is an `Output` (agents.emission.outputs); `Emission` runs the protocol for
both.

State: `order_progress[order_id]` (RocksDB + changelog) holds `emitted`, written after the
send is acknowledged. Guard: `order_trigger_lock:{order_id}` in Redis (scoped by output
topic, agents.emission.guard) goes claimed -> sent. Processing is at-least-once: after a crash or a rebalance, events since
the last committed offset are processed again, possibly by another worker, possibly while
the old one is still finishing.

1. Emit only after winning the claim (SET-if-absent), mark the key sent after the broker's
   ack, then record `emitted` in the table. The acks are awaited off the hot path, per
   batch: a confirmation marks the batch's keys (one Redis round trip) and posts one
   `emitted` notice listing them, each with the version of the state sent, to the
   partition's tick topic, and the agent records them in the table there (the partition's
   owner writes its table partition; a state behind the version sent is recorded later,
   from its claim: agents.partition_slice). Until then the orders are
   in flight and not emitted again. A notice the broker does not acknowledge takes them out of
   flight: the next look at them finds their keys sent. Any worker that later finds a key *sent* records
   `emitted` without sending: a re-delivery, a replay or a rebalance cannot produce a
   second message.
2. A worker that finds a *live* claim waits (the order stays unsettled and is retried).
   A claim is live for `claim_ttl` = the producer's request timeout + 5 s: a live claimant
   has its ack, or a definitive failure, by then (the producer sends an output batch only
   within 4 s of its creation, streams.runtime.producer).
3. A claim older than that is stale: its owner died (or failed) between claim and
   marking, and its send may or may not have reached the broker. The finder reads
   order_final from the claim's time on (once for all of a batch's stale claims, from the
   oldest): if the order is there, it marks the key sent; only if it is absent does it take
   the claim over (compare-and-set) and send.
   So a crash between lock and send delays the order by at most claim_ttl; it never loses it,
   and never sends it twice. A send the broker may have written without answering (the
   connection dropped) fails rather than being resent by the producer (streams.runtime.producer),
   and is resolved the same way.
4. A claimant that holds its own send's failure does not wait for the claim's lifetime: its
   producer will not send that batch again, so the claim is resolved (looked up, then taken
   over) `RESOLVE_OWN_FAILURE_AFTER_MS` after the failure. That leaves a broker which read
   the request before the connection dropped as long to append it as claim_ttl leaves after
   the latest failure a live claimant can see, and more. A leader that died with the batch
   leaves it, if anywhere, in its successor's log below the leader epoch's start offset,
   which the lookup's end offset covers (Kafka answers it only once the high watermark has
   reached that offset). So a partition leader lost under load delays its in-flight orders
   by seconds, not by claim_ttl. The claim carries no Redis TTL: an expiring key would forget
   that an order was sent.
Residual risks, stated: Redis losing its last second of writes (AOF everysec) *and* the
table losing the same emission; clocks of workers on different machines further apart
than the margin in claim_ttl.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Hashable
from functools import partial
from typing import NamedTuple, Protocol

import orjson
from faust.types import TopicT
from redis.exceptions import RedisError

from agents.emission.guard import Claim, FailedSend, Outcome, RedisGuard, judge_own
from agents.emission.order_final_lookup import find_sent
from config import settings
from streams import topics
from streams.runtime.producer import ONCE_ONLY_SEND_WITHIN_S

log = logging.getLogger(__name__)

# A live claimant has its ack, or a definitive failure, by then: the producer sends an
# order_final batch only within ONCE_ONLY_SEND_WITHIN_S of its creation, and a request is
# answered (or given up) within the request timeout; a second's margin.
CLAIM_TTL_MS = int((settings.producer_request_timeout_s + ONCE_ONLY_SEND_WITHIN_S + 1) * 1000)
# claim_ttl leaves at least a second after the latest failure a live claimant can see; this
# leaves the same span a claim's send may take past its creation, and a second.
RESOLVE_OWN_FAILURE_AFTER_MS = int((ONCE_ONLY_SEND_WITHIN_S + 1) * 1000)

FOUND = b"found in the output"  # a stale claim's send that was made: record, do not send
Item = Hashable  # what one output sends once: an order id, an Alert; str(item) names it in its guard key


class Outgoing(NamedTuple):
    """An item's record, and what the notice of its acknowledgement says of it."""

    key: bytes
    value: bytes
    headers: list | None
    source_ts_ms: int  # the source commit it follows (0: none), for the latency histogram
    noticed_as: object  # JSON: the item as the agent's notice names it


Sent = tuple[Item, bytes, asyncio.Future, Outgoing]  # item, our claim, the broker's ack to come, its record


def now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Outcomes(NamedTuple):
    """What a slice's items came to at their claims, for the output to act on in one go."""

    recorded: list  # sent before: record them
    waiting: list  # cannot go now: they wait and are retried
    in_flight: list  # sent now: in flight until their notice is recorded


class Answers(NamedTuple):
    """The broker's answers to one partition's sends."""

    confirmed: list[tuple[Item, int]]  # acknowledged: (item, the source commit it follows, 0 if none)
    failed: list[Item]  # not acknowledged (or their notice lost): the claims resolve them
    at_ms: float


class Slice(Protocol):
    """What emission needs of one partition's share of a batch (agents.partition_slice): its
    partition. Each output reads and records the rest (agents.emission.outputs)."""

    partition: int


class Output:
    """One output: its topic and guard, what it sends for an item, and what a slice does with
    its items' outcomes."""

    notice = ""  # the key of the agent's notice listing the items recorded

    def __init__(self, topic: TopicT, guard: RedisGuard) -> None:
        self.topic, self.guard = topic, guard

    def items(self, part: Slice) -> list[Item]: ...
    def message(self, part: Slice, item: Item) -> Outgoing: ...
    def identify(self, key: bytes, headers: list | None) -> Item: ...  # a message's item
    def settle(self, part: Slice, outcomes: Outcomes) -> None: ...
    def answered(self, partition: int, answers: Answers) -> None: ...


async def write_notice(key: bytes, value: bytes, partition: int) -> None:
    """Post a notice to the partition's tick topic and wait for the broker's ack."""
    await (await topics.settle_ticks.send(key=key, value=value, partition=partition))


class Emission:
    """This worker's sends to each output: the Redis guards and the confirmations to come."""

    def __init__(self, outputs: list[Output], counters: Counter[str],
                 notify: Callable[[bytes, bytes, int], Awaitable[None]] = write_notice) -> None:
        self.outputs, self.counters = outputs, counters
        self.notify = notify  # posts the notice that has the agent record a batch's sends
        self.confirming: set[asyncio.Task] = set()  # the event loop holds tasks only weakly
        self.failed_sends: dict[tuple[str, Item], FailedSend] = {}  # by output topic and item

    async def emit(self, parts: list[Slice]) -> None:
        for output in self.outputs:
            await self._emit(output, parts)

    async def _emit(self, output: Output, parts: list[Slice]) -> None:
        """Claim the batch's items for this output, every partition's, in one Redis round
        trip, then send. A send started now leaves the item in flight until its confirmation;
        anything that cannot proceed waits."""
        wanted = [item for part in parts for item in output.items(part)]
        if not wanted:
            return
        await topics.outputs_ready()
        now_ms = int(time.time() * 1000)
        try:
            claims = await output.guard.claim_many(wanted, now_ms)
        except (RedisError, OSError, TimeoutError) as error:
            self.counters["emission_retries"] += len(wanted)
            log.warning("%d items for %s not sent yet (%s: %s); will retry", len(wanted),
                        output.topic.get_topic_name(), type(error).__name__, error)
            for part in parts:
                output.settle(part, Outcomes([], output.items(part), []))
            return
        if self.failed_sends:
            claims = [(self._after_own_failure(output, item, claim, now_ms), ours)
                      for item, (claim, ours) in zip(wanted, claims)]
        stale = {item: claim for item, (claim, _) in zip(wanted, claims) if claim.outcome is Outcome.STALE}
        resolved = await self._resolve_stale(output, stale, now_ms) if stale else {}
        in_order = iter(claims)  # the parts' items, one after another, as claimed
        for part in parts:
            outcomes = Outcomes([], [], [])
            sent = [await self._send(output, part, item, *next(in_order), resolved, outcomes)
                    for item in output.items(part)]
            output.settle(part, outcomes)
            sent = [entry for entry in sent if entry is not None]
            if sent:
                task = asyncio.ensure_future(self._confirm(output, part.partition, sent))
                self.confirming.add(task)
                task.add_done_callback(self.confirming.discard)

    def _after_own_failure(self, output: Output, item: Item, claim: Claim, now_ms: int) -> Claim:
        """The claim, stale already if it is ours and its send failed long enough ago."""
        key = (output.topic.get_topic_name(), item)
        failure = self.failed_sends.get(key)
        if failure is None:
            return claim
        if claim.found_value != failure.claim:  # resolved since: sent, taken over, or gone
            del self.failed_sends[key]
            return claim
        return judge_own(claim, failure, now_ms, RESOLVE_OWN_FAILURE_AFTER_MS)

    def _remember_failure(self, output: Output, item: Item, our_claim: bytes) -> None:
        now_ms = int(time.time() * 1000)
        self.failed_sends = {key: failure for key, failure in self.failed_sends.items()
                             if now_ms - failure.failed_at_ms <= CLAIM_TTL_MS}  # stale by now in any case
        self.failed_sends[(output.topic.get_topic_name(), item)] = FailedSend(our_claim, now_ms)

    async def _send(self, output: Output, part: Slice, item: Item, claim: Claim, our_claim: bytes | None,
                    resolved: dict[Item, bytes | None], outcomes: Outcomes) -> Sent | None:
        """Act on one item's claim: send it if the claim is ours (its confirmation comes
        later), record it if it was sent already, else leave it waiting; `outcomes` says which."""
        try:
            if claim.outcome is Outcome.STALE:
                our_claim = resolved.get(item)  # absent: its lookup failed, try again later
                if our_claim is FOUND:
                    outcomes.recorded.append(item)
                    return None
                if our_claim is None:  # or another worker took it over meanwhile
                    outcomes.waiting.append(item)
                    return None
            elif claim.outcome is Outcome.SENT:
                self.counters["duplicates_prevented"] += 1
                outcomes.recorded.append(item)
                return None
            elif claim.outcome is Outcome.HELD:
                self.counters["claims_held_elsewhere"] += 1
                outcomes.waiting.append(item)
                return None
            outgoing = output.message(part, item)
            pending = await topics.produce(output.topic, key=outgoing.key, value=outgoing.value,
                                           headers=outgoing.headers,
                                           partition=topics.same_partition(output.topic, part.partition))
        except Exception as error:  # noqa: BLE001 - a claim left behind goes stale, then resolves
            self.counters["emission_retries"] += 1
            log.warning("%s %s not sent (%s: %s); will retry", output.topic.get_topic_name(), item,
                        type(error).__name__, error)
            outcomes.waiting.append(item)
            return None
        outcomes.in_flight.append(item)
        return item, our_claim, pending, outgoing

    async def _resolve_stale(self, output: Output, stale: dict[Item, Claim], now_ms: int) -> dict[Item, bytes | None]:
        """Claims whose owner died between claim and marking: were their sends made? One read
        of the output topic for the batch, from the oldest claim's time; one Redis call to mark
        the sends found and one to take the others over. Per item: FOUND, our new claim,
        or None (taken by someone else). Empty if the lookup failed (they wait and retry)."""
        since_ms = min(claim.claimed_at_ms for claim in stale.values()) - CLAIM_TTL_MS
        lookup = partial(find_sent, settings, set(stale), since_ms, topic=output.topic.get_topic_name(),
                         identify=output.identify)
        try:
            found = await asyncio.get_running_loop().run_in_executor(None, lookup)
            await output.guard.mark_sent_many([(item, stale[item].found_value, *where) for item, where in found.items()])
            taken = await output.guard.take_over_many([(item, claim.found_value) for item, claim in stale.items()
                                                       if item not in found], now_ms)
        except Exception as error:  # noqa: BLE001 - Kafka or Redis: the claims stay stale and are retried
            self.counters["emission_retries"] += len(stale)
            log.warning("%d stale claims not resolved yet (%s: %s); will retry", len(stale),
                        type(error).__name__, error)
            return {}
        self.counters["duplicates_prevented"] += len(found)
        log.warning("%d stale claims on %s resolved: %d had been sent already (recorded), %d taken over to send",
                    len(stale), output.topic.get_topic_name(), len(found),
                    sum(claim is not None for claim in taken.values()))
        return {**taken, **{item: FOUND for item in found}}

    async def _confirm(self, output: Output, partition: int, sent: list[Sent]) -> None:
        """Await the broker's acks, mark the keys sent (one Redis round trip), and tell the
        agent to record them (one notice for the batch)."""
        acks = await asyncio.gather(*(pending for _, _, pending, _ in sent), return_exceptions=True)
        answers = Answers([], [], time.time() * 1000)
        acked = []
        for (item, our_claim, _, outgoing), ack in zip(sent, acks):
            if isinstance(ack, BaseException):  # our claim is resolved, as a stale one is, a little later
                answers.failed.append(item)
                self.counters["emission_retries"] += 1
                self._remember_failure(output, item, our_claim)
                log.warning("%s %s: send failed (%s: %s); the claim will be resolved after %d s",
                            output.topic.get_topic_name(), item, type(ack).__name__, ack,
                            RESOLVE_OWN_FAILURE_AFTER_MS // 1000)
            else:
                answers.confirmed.append((item, outgoing.source_ts_ms))
                acked.append((item, our_claim, ack.partition, ack.offset, outgoing.noticed_as))
        output.answered(partition, answers)
        if not acked:
            return
        try:
            await output.guard.mark_sent_many([sent[:4] for sent in acked])
        except (RedisError, OSError, TimeoutError) as error:  # the claims go stale; the lookup finds the messages
            log.warning("%d sends marked in Redis failed (%s)", len(acked), error)
        notice = {output.notice: [noticed_as for *_, noticed_as in acked]}
        try:
            await self.notify(output.notice.encode(), orjson.dumps(notice), partition)
        except Exception as error:  # noqa: BLE001 - the sends stand, and their claims say so
            self.counters["notices_lost"] += len(acked)
            log.warning("%s notice for %d items of partition %d not written (%s: %s); they are recorded from their "
                        "claims at the next look", output.notice, len(acked), partition, type(error).__name__, error)
            # in flight no more: the next look finds the claims sent
            output.answered(partition, Answers([], [item for item, *_ in acked], time.time() * 1000))
