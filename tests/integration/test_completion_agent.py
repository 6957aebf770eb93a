"""The completion agent through Faust's test_context(): real Redis, patched Kafka sends."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from unittest.mock import AsyncMock, patch

import orjson
import pytest

from agents.emission import guard as guards
from agents.emission.exactly_once import CLAIM_TTL_MS
from agents.completion_loop import complete_orders
from agents.completion_worker import CompletionWorker
from config import Settings
from streams import topics
from streams.app import app
from tables.order_progress import current_state, order_progress
from tables.order_state import OrderState, is_marker

pytestmark = pytest.mark.usefixtures("tables_in_memory")


def envelope(op: str, row: dict, pos: int) -> bytes:
    source = {"file": "binlog.000001", "pos": pos, "row": 0, "ts_ms": 1_700_000_000_000, "table": "t"}
    return orjson.dumps({"op": op, "before": row if op == "d" else None, "after": None if op == "d" else row,
                         "source": source})


def acknowledged(*_, **__):
    ack = asyncio.get_running_loop().create_future()
    ack.set_result(SimpleNamespace(partition=0, offset=7))
    return ack


async def deliver(agent, topic, key: bytes | None, value: bytes | None, partition: int = 0) -> None:
    agent._get_strtopic = lambda _channel: topic  # one wrapper, three topics: name this message's
    # offsets run per topic partition, as Kafka's do (the wrapper counts across all topics)
    offsets = agent.__dict__.setdefault("offsets_by_tp", {})
    agent.sent_offset = offsets.get((topic, partition), 0)
    offsets[(topic, partition)] = agent.sent_offset + 1
    await agent.put(key=key, value=value, partition=partition)


async def until(condition, what: str, timeout_s: float = 5) -> None:
    """put() returns when the agent has taken an event into its batch, not when the batch is
    processed: wait (bounded) for the effect instead."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def processed(worker: CompletionWorker, count: int):
    target = worker.counters["events_in"] + count
    return until(lambda: worker.counters["events_in"] >= target, f"{count} events processed")


@pytest.fixture
def worker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CompletionWorker:
    """A worker of this test's own, as the app's: a Redis client per test (each test runs its
    own event loop) and nothing left over from another test's orders."""
    built = CompletionWorker(app, guards=(
        guards.RedisGuard(settings.redis_url, "test-worker", CLAIM_TTL_MS),
        guards.RedisGuard(settings.redis_url, "test-worker", CLAIM_TTL_MS, settings.order_alerts_topic)))
    monkeypatch.setitem(app.__dict__, "completion", built)
    return built


@pytest.fixture
def sends(worker: CompletionWorker, monkeypatch: pytest.MonkeyPatch):
    app.outputs.ready.set()  # set by the worker's start-up task, which test_context does not run
    # test_context joins no group: own partition 0, as a worker assigned it would
    monkeypatch.setattr(order_progress, "owned_partitions", lambda: frozenset({0}))
    with patch.object(topics, "produce", new=AsyncMock(side_effect=acknowledged)) as final, \
            patch.object(topics.dead_letters, "send", new=AsyncMock(side_effect=acknowledged)) as dead, \
            patch.object(topics.settle_ticks, "send", new=AsyncMock(side_effect=acknowledged)) as ticks:
        yield final, dead, ticks


def names(notice: dict, kind: str) -> list[str]:
    """The items a notice lists (an emitted order is listed with the version of its state sent)."""
    return [entry if isinstance(entry, str) else entry[0] for entry in notice.get(kind, ())]


async def confirmation(ticks: AsyncMock, order_id: str) -> dict:
    """The `emitted` notice the agent posts to itself once the broker acknowledged the send."""
    return await notice_of(ticks, "emitted", order_id)


def test_a_complete_order_is_sent_once_and_bad_input_is_dead_lettered(sends, worker):
    final, dead, ticks = sends
    order_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    orders, details = topics.orders.get_topic_name(), topics.order_details.get_topic_name()
    key = orjson.dumps(order_id)
    ignored_before = worker.counters["redeliveries_ignored"]

    async def scenario():
        async with complete_orders.test_context() as agent:
            first_four = processed(worker, 4)
            # details first, then the order, then garbage, then a duplicate detail
            await deliver(agent, details, key, envelope("c", {"order_id": order_id, "product_id": 1, "quantity": 2}, 20))
            await deliver(agent, orders, key, envelope("c", {"id": order_id, "customer_id": 5, "payment_method_id": 3,
                                                           "num_products": 2, "timestamp": 0}, 10))
            await deliver(agent, details, key, envelope("c", {"order_id": order_id, "product_id": 9, "quantity": 1}, 30))
            await deliver(agent, details, b"junk", b"{not json")
            await first_four
            await deliver(agent, details, key, envelope("c", {"order_id": order_id, "product_id": 9, "quantity": 1}, 30))
            await until(lambda: worker.counters["redeliveries_ignored"] > ignored_before, "the duplicate")
            unsettled_before = final.await_count
            # an orders change committed later passes the frontier: the order settles
            await deliver(agent, orders, orjson.dumps(other), envelope("c", {"id": other, "customer_id": 1,
                                                                            "payment_method_id": 1, "num_products": 3,
                                                                            "timestamp": 0}, 40))
            # the ack arrives; the agent records the emission from its own notice
            notice = await confirmation(ticks, order_id)
            in_flight_before = order_id in worker.settling.in_flight
            await deliver(agent, topics.settle_ticks.get_topic_name(), notice["key"], notice["value"],
                          notice["partition"])
            await until(lambda: order_id not in worker.settling.in_flight, "the notice recorded")
            worker.commit_protocol.flush()  # as the flush timer would
            recorded = current_state(worker.states, order_id)
            return unsettled_before, in_flight_before, recorded

    unsettled_before, in_flight_before, recorded = asyncio.run(scenario())

    assert unsettled_before == 0  # complete at position 30, but the orders topic was only read to 10
    assert in_flight_before and order_id not in worker.settling.in_flight
    assert recorded.emitted
    assert final.await_count == 1
    sent = final.await_args.kwargs
    assert sent["key"] == order_id.encode()
    value = orjson.loads(sent["value"])
    assert (value["order_id"], value["num_products"], value["customer_id"]) == (order_id, 2, 5)
    assert value["products"] == [{"product_id": 1, "quantity": 2}, {"product_id": 9, "quantity": 1}]
    assert dead.await_count == 1
    headers = dict(dead.await_args.kwargs["headers"])
    assert headers["reason"].startswith(b"value is not JSON")
    assert dead.await_args.kwargs["value"] == b"{not json"


def test_an_order_already_sent_by_another_worker_is_not_sent_again(sends, worker):
    final, _, _ = sends
    order_id = str(uuid.uuid4())
    orders, details = topics.orders.get_topic_name(), topics.order_details.get_topic_name()
    key = orjson.dumps(order_id)

    async def scenario():
        # given another worker sent it already (a rebalance replays its events here)
        final_guard = worker.emission.outputs[0].guard
        await final_guard.client.set(final_guard.key(order_id), guards.sent_value(2, 40))
        async with complete_orders.test_context() as agent:
            await deliver(agent, orders, key, envelope("c", {"id": order_id, "customer_id": 5, "payment_method_id": 3,
                                                           "num_products": 1, "timestamp": 0}, 10))
            await deliver(agent, details, key, envelope("c", {"order_id": order_id, "product_id": 1, "quantity": 1}, 5))
            await until(lambda: worker.counters["duplicates_prevented"] > prevented_before, "the guard")

    prevented_before = worker.counters["duplicates_prevented"]
    asyncio.run(scenario())

    assert final.await_count == 0
    assert worker.counters["duplicates_prevented"] == prevented_before + 1



async def notice_of(ticks: AsyncMock, kind: str, item: str) -> dict:
    """The agent's own notice that `item` went out (`emitted` or `alerted`)."""
    for _ in range(100):
        for call in ticks.await_args_list:
            if item in names(orjson.loads(call.kwargs["value"]), kind):
                return call.kwargs
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {kind} notice for {item}: {ticks.await_args_list}")


def sent_to(produce: AsyncMock, topic) -> list[dict]:
    return [orjson.loads(call.kwargs["value"]) for call in produce.await_args_list if call.args[0] is topic]


def test_a_bulk_order_raises_its_alert_once_and_keeps_its_state_until_the_alert_is_recorded(sends, worker):
    final, _, ticks = sends
    order_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    orders, details = topics.orders.get_topic_name(), topics.order_details.get_topic_name()
    key = orjson.dumps(order_id)

    async def scenario():
        async with complete_orders.test_context() as agent:
            await deliver(agent, orders, key, envelope("c", {"id": order_id, "customer_id": 5, "payment_method_id": 3,
                                                           "num_products": 1, "timestamp": 0}, 10))
            await deliver(agent, details, key, envelope("c", {"order_id": order_id, "product_id": 1, "quantity": 50}, 20))
            await deliver(agent, orders, orjson.dumps(other), envelope("c", {"id": other, "customer_id": 1,
                                                                            "payment_method_id": 1, "num_products": 3,
                                                                            "timestamp": 0}, 40))
            emitted = await notice_of(ticks, "emitted", order_id)
            await deliver(agent, topics.settle_ticks.get_topic_name(), emitted["key"], emitted["value"], 0)
            alerted = await notice_of(ticks, "alerted", f"bulk:{order_id}")
            worker.commit_protocol.flush()
            before_alert_recorded = current_state(worker.states, order_id)
            await deliver(agent, topics.settle_ticks.get_topic_name(), alerted["key"], alerted["value"], 0)
            await until(lambda: is_marker(worker.states.peek(order_id) or OrderState()), "the alert recorded")
            return before_alert_recorded

    whole = asyncio.run(scenario())

    assert [v["order_id"] for v in sent_to(final, topics.order_final)] == [order_id]
    alerts = sent_to(final, topics.order_alerts)
    assert [(a["kind"], a["order_id"], a["total_quantity"]) for a in alerts] == [("bulk", order_id, 50)]
    assert whole.emitted and whole.products  # emitted, still whole while its alert is owed


def test_an_order_cancelled_after_a_detail_arrived_raises_its_alert(sends):
    final, _, _ = sends
    order_id = str(uuid.uuid4())
    orders, details = topics.orders.get_topic_name(), topics.order_details.get_topic_name()
    key = orjson.dumps(order_id)
    row = {"id": order_id, "customer_id": 5, "payment_method_id": 3, "num_products": 2, "timestamp": 0}
    detail = {"order_id": order_id, "product_id": 1, "quantity": 1}

    async def scenario():
        async with complete_orders.test_context() as agent:
            await deliver(agent, orders, key, envelope("c", row, 10))
            await deliver(agent, details, key, envelope("c", detail, 20))
            await deliver(agent, details, key, envelope("d", detail, 30))
            await deliver(agent, orders, key, envelope("d", row, 31))
            await until(lambda: sent_to(final, topics.order_alerts), "the alert sent")

    asyncio.run(scenario())

    assert [(a["kind"], a["details_seen"]) for a in sent_to(final, topics.order_alerts)] == [
        ("cancelled_after_details", 1)]
    assert sent_to(final, topics.order_final) == []


def test_an_emitted_notice_read_before_the_orders_own_records_leaves_its_bulk_alert_owed(sends, worker, settings):
    """The worker that sent a bulk order stopped before its state reached the changelog: the next
    owner reads the `emitted` notice before the order's records, read again. Recorded then, the
    order would shrink to a marker with its bulk alert never raised."""
    final, _, ticks = sends
    order_id, other = str(uuid.uuid4()), str(uuid.uuid4())
    orders, details = topics.orders.get_topic_name(), topics.order_details.get_topic_name()
    key = orjson.dumps(order_id)
    header = envelope("c", {"id": order_id, "customer_id": 5, "payment_method_id": 3, "num_products": 1,
                            "timestamp": 0}, 10)
    bulk = envelope("c", {"order_id": order_id, "product_id": 1, "quantity": 50}, 20)
    later = envelope("c", {"id": other, "customer_id": 1, "payment_method_id": 1, "num_products": 3,
                           "timestamp": 0}, 40)

    async def sent_by_a_worker_that_stops() -> dict:
        async with complete_orders.test_context() as agent:
            for topic, record_key, value in ((orders, key, header), (details, key, bulk),
                                             (orders, orjson.dumps(other), later)):
                await deliver(agent, topic, record_key, value)
            return await notice_of(ticks, "emitted", order_id)  # its state never flushed

    async def read_again_by_the_next_owner(emitted: dict) -> None:
        async with complete_orders.test_context() as agent:
            await deliver(agent, topics.settle_ticks.get_topic_name(), emitted["key"], emitted["value"], 0)
            for topic, record_key, value in ((orders, key, header), (details, key, bulk),
                                             (orders, orjson.dumps(other), later)):
                await deliver(agent, topic, record_key, value)
            await until(lambda: sent_to(final, topics.order_alerts), "the bulk alert sent")

    emitted = asyncio.run(sent_by_a_worker_that_stops())
    next_owner = CompletionWorker(app, guards=(
        guards.RedisGuard(settings.redis_url, "next-owner", CLAIM_TTL_MS),
        guards.RedisGuard(settings.redis_url, "next-owner", CLAIM_TTL_MS, settings.order_alerts_topic)))
    app.__dict__["completion"] = next_owner  # the fixture puts the first one back after
    asyncio.run(read_again_by_the_next_owner(emitted))

    assert [v["order_id"] for v in sent_to(final, topics.order_final)] == [order_id]  # sent once, by the first
    assert [(a["kind"], a["order_id"], a["total_quantity"]) for a in sent_to(final, topics.order_alerts)] == [
        ("bulk", order_id, 50)]
    assert next_owner.counters["emitted_notices_ahead_of_state"] >= 1
