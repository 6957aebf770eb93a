"""The Redis guard: `order_trigger_lock:{order_id}` in db 2 records who is emitting an order.

The key goes through two states, never back:
    claimed  {"state": "claimed", "worker": ..., "at_ms": ...}  set with SET NX semantics
    sent     {"state": "sent", "partition": p, "offset": o}      after the broker's ack
It carries no Redis TTL: an expiring key would forget that an order was sent. Instead a
claim is *stale* once it is older than `claim_ttl_ms`, the longest a live worker can take
from claiming to an acknowledged (or definitively failed) send; see agents/order_completion.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import orjson
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

KEY = "order_trigger_lock:{order_id}"

# Claims are `SET key claim NX GET` (Redis >= 7): set if absent, else return what is there;
# one command, atomic, no script.
# Replace the value only if it is still exactly what we saw (compare-and-set).
_REPLACE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
"""


class Outcome(Enum):
    CLAIMED = "claimed"  # ours now: send
    SENT = "sent"  # somebody sent it already: a duplicate prevented
    HELD = "held"  # somebody else's live claim: try again later
    STALE = "stale"  # a claim whose owner died between claim and marking: resolve first


@dataclass(frozen=True)
class Claim:
    outcome: Outcome
    held: bytes | None = None  # the raw value found, when it was not ours
    claimed_at_ms: int | None = None


def judge(held: bytes, now_ms: int, claim_ttl_ms: int) -> Claim:
    """Pure: what a value found in the key means for a worker that wants to emit."""
    record = orjson.loads(held)
    if record.get("state") == "sent":
        return Claim(Outcome.SENT, held)
    at_ms = int(record.get("at_ms", 0))
    stale = now_ms - at_ms > claim_ttl_ms
    return Claim(Outcome.STALE if stale else Outcome.HELD, held, at_ms)


def claim_value(worker: str, now_ms: int) -> bytes:
    return orjson.dumps({"state": "claimed", "worker": worker, "at_ms": now_ms})


def sent_value(partition: int, offset: int) -> bytes:
    return orjson.dumps({"state": "sent", "partition": partition, "offset": offset})


class RedisGuard:
    def __init__(self, redis_url: str, worker: str, claim_ttl_ms: int) -> None:
        self.client = aioredis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self.worker, self.claim_ttl_ms = worker, claim_ttl_ms
        self._replace_if = self.client.register_script(_REPLACE_IF)  # its sha; loaded on first NOSCRIPT

    async def claim_many(self, order_ids: list[str], now_ms: int) -> list[tuple[Claim, bytes]]:
        """Claim many orders in one pipelined round trip, in order."""
        mine = claim_value(self.worker, now_ms)
        async with self.client.pipeline(transaction=False) as pipe:
            for order_id in order_ids:  # SET NX GET; `pipe.set` inspects its arguments per call
                pipe.execute_command("SET", KEY.format(order_id=order_id), mine, "NX", "GET", get=True)
            found = await pipe.execute()
        return [(Claim(Outcome.CLAIMED) if held is None else judge(held, now_ms, self.claim_ttl_ms), mine)
                for held in found]

    async def take_over(self, order_id: str, stale: bytes, now_ms: int) -> bytes | None:
        """Replace a stale claim with ours; None if someone else got there first."""
        mine = claim_value(self.worker, now_ms)
        [replaced] = await self._replace_many([(KEY.format(order_id=order_id), stale, mine)])
        return mine if replaced else None

    async def mark_sent_many(self, sends: list[tuple[str, bytes, int, int]]) -> None:
        """Mark (order id, our claim, partition, offset) sends in one pipelined round trip;
        a key no longer holding our claim is left alone."""
        await self._replace_many([(KEY.format(order_id=order_id), claimed, sent_value(partition, offset))
                                  for order_id, claimed, partition, offset in sends])

    async def record_sent(self, order_id: str, stale: bytes, partition: int, offset: int) -> None:
        """A stale claim's send turned out to have happened: record it as sent."""
        await self._replace_many([(KEY.format(order_id=order_id), stale, sent_value(partition, offset))])

    async def _replace_many(self, swaps: list[tuple[str, bytes, bytes]]) -> list[int]:
        """Compare-and-set (key, expected, new) in one round trip by the script's sha. A Redis
        that lost its script cache (restarted) answers NOSCRIPT: load the script and run the
        whole pipeline again (a swap already made no longer matches, so it is not made twice)."""
        for attempt in (1, 2):
            try:
                async with self.client.pipeline(transaction=False) as pipe:
                    for key, expected, new in swaps:
                        pipe.evalsha(self._replace_if.sha, 1, key, expected, new)
                    return await pipe.execute()
            except NoScriptError:
                if attempt == 2:
                    raise
                await self.client.script_load(_REPLACE_IF)
        raise AssertionError("unreachable")
