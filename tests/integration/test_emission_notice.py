"""A confirmation whose notice the broker does not take: the orders leave flight, and the
next look finds their claims sent (the real Redis guard)."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace

import redis.asyncio as aioredis

from agents.emission.exactly_once import Outgoing
from agents.emission.guard import Outcome, RedisGuard, guard_key
from agents.settling import Settling
from agents.completion_worker import CompletionWorker
from config import Settings
from streams.app import app


def confirm_one(settings: Settings, notify) -> tuple[Settling, list, Outcome, str]:
    order_id, scope = str(uuid.uuid4()), f"notice_test_{uuid.uuid4().hex[:8]}"
    notices = []

    async def scenario():
        guard = RedisGuard(settings.redis_url, "worker-a", 60_000, scope)
        worker = CompletionWorker(app, guards=(guard, RedisGuard(settings.redis_url, "worker-a", 60_000, scope)),
                                  notify=lambda *notice: notify(notices, *notice))
        settling, emission = worker.settling, worker.emission
        output = emission.outputs[0]
        [(_, ours)] = await guard.claim_many([order_id], now_ms=10_000)
        settling.sent(3, order_id)
        acked = asyncio.get_running_loop().create_future()
        acked.set_result(SimpleNamespace(partition=3, offset=41))
        await emission._confirm(output, 3, [(order_id, ours, acked, Outgoing(b"", b"", None, 0, order_id))])
        [(claim, _)] = await guard.claim_many([order_id], now_ms=11_000)
        await aioredis.Redis.from_url(settings.redis_operator_url).delete(guard_key(order_id, scope))
        return settling, claim.outcome

    settling, outcome = asyncio.run(scenario())
    return settling, notices, outcome, order_id


async def broker_takes_it(notices, key, value, partition):
    notices.append((key, value, partition))


async def broker_refuses(notices, key, value, partition):
    raise TimeoutError("no leader for the tick partition")


def test_a_written_notice_leaves_the_order_in_flight_until_the_agent_records_it(settings: Settings):
    settling, notices, outcome, order_id = confirm_one(settings, broker_takes_it)

    assert [(key, partition) for key, _, partition in notices] == [(b"emitted", 3)]
    assert order_id.encode() in notices[0][1]
    assert order_id in settling.in_flight
    assert outcome is Outcome.SENT


def test_a_notice_not_written_takes_the_order_out_of_flight_to_be_recorded_from_its_claim(settings: Settings):
    settling, notices, outcome, order_id = confirm_one(settings, broker_refuses)

    assert notices == []
    assert order_id not in settling.in_flight  # else it would wait for a notice that never comes
    assert order_id in settling.watch(3).unsettled  # a tick settles it: its claim is found sent
    assert outcome is Outcome.SENT
