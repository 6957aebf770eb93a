"""The Redis guard against the real Redis (db 2)."""

from __future__ import annotations

import asyncio
import uuid

import redis.asyncio as aioredis

from agents.emission.guard import Outcome, RedisGuard, guard_key
from config import Settings


def operator(settings: Settings) -> aioredis.Redis:
    """Redis as an operator, for what the guard's own user may not do (delete, flush scripts)."""
    return aioredis.Redis.from_url(settings.redis_operator_url)


def test_claims_are_exclusive_stale_ones_can_be_taken_over_and_sent_is_final(settings: Settings):
    fresh, other = str(uuid.uuid4()), str(uuid.uuid4())

    async def scenario():
        a = RedisGuard(settings.redis_url, "worker-a", claim_ttl_ms=1000)
        b = RedisGuard(settings.redis_url, "worker-b", claim_ttl_ms=1000)
        [(first, mine)] = await a.claim_many([fresh], now_ms=10_000)
        [(live, _)] = await b.claim_many([fresh], now_ms=10_500)  # within the TTL
        [(stale, _)] = await b.claim_many([fresh], now_ms=12_000)  # past it
        taken = await b.take_over(fresh, stale.found_value, now_ms=12_000)
        late = await a.take_over(fresh, stale.found_value, now_ms=12_001)  # lost the race
        await b.mark_sent_many([(fresh, taken, 3, 99)])
        await a.mark_sent_many([(fresh, mine, 1, 1)])  # a's old claim: no effect
        [(after, _)] = await a.claim_many([fresh], now_ms=99_000)
        both = await a.claim_many([other, fresh], now_ms=99_000)
        await operator(settings).delete(guard_key(fresh), guard_key(other))
        return first, live, stale, taken, late, after, both

    first, live, stale, taken, late, after, both = asyncio.run(scenario())

    assert first.outcome is Outcome.CLAIMED
    assert live.outcome is Outcome.HELD and live.claimed_at_ms == 10_000
    assert stale.outcome is Outcome.STALE
    assert taken is not None and late is None
    assert after.outcome is Outcome.SENT and b'"offset":99' in after.found_value
    assert [claim.outcome for claim, _ in both] == [Outcome.CLAIMED, Outcome.SENT]


def test_claims_and_marks_survive_a_redis_that_forgot_its_scripts(settings: Settings):
    order_id = str(uuid.uuid4())

    async def scenario():
        guard = RedisGuard(settings.redis_url, "worker-a", claim_ttl_ms=1000)
        [(_, mine)] = await guard.claim_many([order_id], now_ms=10_000)
        await operator(settings).script_flush()  # as after a Redis restart: the guard loads them again
        await guard.mark_sent_many([(order_id, mine, 2, 7)])
        await operator(settings).script_flush()
        [(after, _)] = await guard.claim_many([order_id], now_ms=11_000)
        await operator(settings).delete(guard_key(order_id))
        return after

    after = asyncio.run(scenario())
    assert after.outcome is Outcome.SENT and b'"offset":7' in after.found_value


def test_the_guard_is_scoped_by_output_topic_and_order_final_keeps_the_contract_key(settings: Settings):
    order_id = str(uuid.uuid4())

    async def scenario():
        live = RedisGuard(settings.redis_url, "live", claim_ttl_ms=1000)
        rebuild = RedisGuard(settings.redis_url, "rebuild", claim_ttl_ms=1000, output_topic="order_final_rebuilt")
        [(ours, claim)] = await live.claim_many([order_id], now_ms=10_000)
        await live.mark_sent_many([(order_id, claim, 0, 5)])
        [(theirs, _)] = await rebuild.claim_many([order_id], now_ms=10_001)
        keys = [await operator(settings).exists(key) for key in (f"order_trigger_lock:{order_id}",
                                                                 f"order_trigger_lock:order_final_rebuilt:{order_id}")]
        await operator(settings).delete(live.key(order_id), rebuild.key(order_id))
        return ours, theirs, keys

    ours, theirs, keys = asyncio.run(scenario())

    assert ours.outcome is Outcome.CLAIMED
    assert theirs.outcome is Outcome.CLAIMED  # the live stream's "sent" does not stop a rebuild
    assert keys == [1, 1]
