"""The Redis guard: `order_trigger_lock:{order_id}` in db 2 records who is emitting an order.

The key is scoped by output topic: `order_final` keeps the contract's key above; any other
output (a rebuild, `python -m streams rebuild`) has `order_trigger_lock:{topic}:{order_id}`,
so a rebuild and the live stream never block or suppress each other's orders.

The key goes through two states, never back:
    claimed  {"state": "claimed", "worker": ..., "at_ms": ...}  set with SET NX semantics
    sent     {"state": "sent", "partition": p, "offset": o}      after the broker's ack
It carries no Redis TTL: an expiring key would forget that an order was sent. Instead a
claim is *stale* once it is older than `claim_ttl_ms`, the longest a live worker can take
from claiming to an acknowledged (or definitively failed) send; see agents/emission/exactly_once.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

import orjson
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError

from streams.runtime.order_pipe_app import StartRefused

DEFAULT_OUTPUT = "order_final"


def guard_key(order_id: str, output_topic: str = DEFAULT_OUTPUT) -> str:
    if output_topic == DEFAULT_OUTPUT:
        return f"order_trigger_lock:{order_id}"
    return f"order_trigger_lock:{output_topic}:{order_id}"

# A batch's claims and marks are one script call each (EVALSHA over all its keys): a
# pipeline of one command per key costs redis-py a packed command and a parsed reply per
# key. Each key is handled exactly as alone.
# Claim: `SET key claim NX GET` (Redis >= 7): set if absent, else return what is there.
_CLAIM_ALL = """
local found = {}
for i, key in ipairs(KEYS) do
  found[i] = redis.call('SET', key, ARGV[1], 'NX', 'GET')
end
return found
"""
# Mark: replace the value only if it is still exactly what we saw (compare-and-set);
# ARGV holds (expected, new) per key.
_REPLACE_ALL = """
local replaced = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2 * i - 1] then
    redis.call('SET', key, ARGV[2 * i])
    replaced[i] = 1
  else
    replaced[i] = 0
  end
end
return replaced
"""


class Outcome(Enum):
    CLAIMED = "claimed"  # ours now: send
    SENT = "sent"  # somebody sent it already: a duplicate prevented
    HELD = "held"  # somebody else's live claim: try again later
    STALE = "stale"  # a claim whose owner died between claim and marking: resolve first


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    found_value: bytes | None = None  # the raw value found, when it was not ours
    claimed_at_ms: int | None = None


def judge(found_value: bytes, now_ms: int, claim_ttl_ms: int) -> Claim:
    """Pure: what a value found in the key means for a worker that wants to emit."""
    record = orjson.loads(found_value)
    if record.get("state") == "sent":
        return Claim(Outcome.SENT, found_value)
    at_ms = int(record.get("at_ms", 0))
    stale = now_ms - at_ms > claim_ttl_ms
    return Claim(Outcome.STALE if stale else Outcome.HELD, found_value, at_ms)


class FailedSend(NamedTuple):
    """A send of ours the broker did not acknowledge: our claim on its key, and when it failed."""

    claim: bytes
    failed_at_ms: int


def judge_own(claim: Claim, failure: FailedSend | None, now_ms: int, resolve_after_ms: int) -> Claim:
    """Pure: a live claim that is our own failed send counts as stale `resolve_after_ms` after
    the failure rather than at the end of the claim's lifetime (see agents/emission/exactly_once.py)."""
    if (failure is None or claim.outcome is not Outcome.HELD or claim.found_value != failure.claim
            or now_ms - failure.failed_at_ms < resolve_after_ms):
        return claim
    return Claim(Outcome.STALE, claim.found_value, claim.claimed_at_ms)


def claim_value(worker: str, now_ms: int) -> bytes:
    return orjson.dumps({"state": "claimed", "worker": worker, "at_ms": now_ms})


def sent_value(partition: int, offset: int) -> bytes:
    return orjson.dumps({"state": "sent", "partition": partition, "offset": offset})


class RedisGuard:
    def __init__(self, redis_url: str, worker: str, claim_ttl_ms: int, output_topic: str = DEFAULT_OUTPUT) -> None:
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.worker, self.claim_ttl_ms, self.output_topic = worker, claim_ttl_ms, output_topic
        # Run by sha; a Redis that lost its script cache (restarted) answers NOSCRIPT, and
        # redis-py then loads the script and runs it again.
        self._claim_all = self.client.register_script(_CLAIM_ALL)
        self._replace_all = self.client.register_script(_REPLACE_ALL)

    async def check_access(self, setting: str = "REDIS_URL") -> None:
        """Raise StartRefused, naming `setting`, when Redis refuses this guard's credentials."""
        try:
            await self.client.ping()
        except (AuthenticationError, NoPermissionError) as error:
            raise StartRefused(f"Redis refused the guard's credentials ({error}): set {setting} to the guard "
                               "user's URL (the local stack's is in its secrets file, docs/operations.md)") from None

    def key(self, item: object) -> str:
        """An item's key: order_final's items are order ids; others name themselves by str()
        (agents.alerts.Alert)."""
        return guard_key(str(item), self.output_topic)

    async def claim_many(self, order_ids: list[str], now_ms: int) -> list[tuple[Claim, bytes]]:
        """Claim many orders in one round trip, in order."""
        our_claim = claim_value(self.worker, now_ms)
        found = await self._claim_all(keys=[self.key(order_id) for order_id in order_ids], args=[our_claim])
        return [(Claim(Outcome.CLAIMED) if value is None else judge(value, now_ms, self.claim_ttl_ms), our_claim)
                for value in found]

    async def take_over(self, order_id: str, stale: bytes, now_ms: int) -> bytes | None:
        """Replace a stale claim with ours; None if someone else got there first."""
        return (await self.take_over_many([(order_id, stale)], now_ms))[order_id]

    async def take_over_many(self, stale: list[tuple[str, bytes]], now_ms: int) -> dict[str, bytes | None]:
        """take_over for many (order id, stale claim) in one round trip."""
        our_claim = claim_value(self.worker, now_ms)
        replaced = await self._replace_many([(self.key(order_id), found, our_claim) for order_id, found in stale])
        return {order_id: our_claim if done else None for (order_id, _), done in zip(stale, replaced)}

    async def mark_sent_many(self, sends: list[tuple[str, bytes, int, int]]) -> None:
        """Mark (order id, claim, partition, offset) sends in one round trip: our acknowledged
        sends, or a stale claim's send found in order_final. A key no longer holding that
        claim is left alone."""
        await self._replace_many([(self.key(order_id), claimed, sent_value(partition, offset))
                                  for order_id, claimed, partition, offset in sends])

    async def _replace_many(self, swaps: list[tuple[str, bytes, bytes]]) -> list[int]:
        """Compare-and-set (key, expected, new) in one round trip; 1 where replaced. A swap
        run twice does nothing the second time (the key no longer holds what was expected)."""
        if not swaps:
            return []
        return await self._replace_all(keys=[key for key, _, _ in swaps],
                                       args=[value for _, expected, new in swaps for value in (expected, new)])
