"""streams.runtime.feed: the completion agent's records, from the fetch loop to the agent in batches."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from faust.types.tuples import ConsumerMessage

from streams.app import app
from streams.runtime.feed import Feed
from streams.runtime.metrics import counters

TOPIC = "mysql.project_db.orders"


def record(offset: int, generation: int = 0) -> ConsumerMessage:
    return ConsumerMessage(TOPIC, 0, offset, 0.0, 0, None, b"k", b"v", None, generation_id=generation)


class QuietStream:
    """The agent's Faust stream in a worker: subscribed, but its records come through the feed."""

    channel = SimpleNamespace(topics=(TOPIC,))

    async def events(self):
        await asyncio.Event().wait()
        yield


@pytest.fixture
def flowing(monkeypatch):
    monkeypatch.setattr(app, "consumer_generation_id", 0)
    app.flow_control.resume()
    yield
    app.flow_control.suspend()


DEADLINE_S = 60  # for what must happen eventually: generous, never a measure of speed


async def first_batch(feed: Feed, max_records: int = 3, within_s: float = 0.05) -> list[int]:
    batches = feed.batches(QuietStream(), max_records, within_s)
    batch = await asyncio.wait_for(batches.__anext__(), DEADLINE_S)
    await batches.aclose()
    return [message.offset for message in batch]


async def until(condition, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


def test_a_full_batch_is_taken_at_once_and_the_rest_waits_for_the_next(flowing):
    async def scenario():
        feed = Feed(app, maxsize=100)
        for offset in range(5):
            feed.put(record(offset))
        # with a day to wait for more, a batch that comes back at all came back without waiting
        taken = await first_batch(feed, max_records=3, within_s=86_400)
        return taken, [m.offset for m in feed._messages], feed.topics

    taken, left, topics = asyncio.run(scenario())

    assert (taken, left, topics) == ([0, 1, 2], [3, 4], frozenset({TOPIC}))


def test_fewer_records_than_a_batch_are_taken_when_the_wait_runs_out(flowing):
    async def scenario():
        feed = Feed(app, maxsize=100)
        asyncio.get_running_loop().call_soon(feed.put, record(7))
        return await first_batch(feed, max_records=1000, within_s=0.05)

    assert asyncio.run(scenario()) == [7]


def test_after_the_first_record_the_feed_waits_for_more_to_fill_the_batch(flowing):
    async def scenario():
        feed = Feed(app, maxsize=100)
        batch = asyncio.ensure_future(first_batch(feed, max_records=2, within_s=DEADLINE_S))
        feed.put(record(7))
        await until(lambda: feed._wanted == 2, "the feed waiting for more")
        feed.put(record(8))
        return await batch

    assert asyncio.run(scenario()) == [7, 8]  # not [7] alone, as soon as it came


def test_a_record_holds_a_reference_and_is_tracked_until_acknowledged(flowing):
    message = record(3)
    Feed(app, maxsize=10).put(message)

    assert (message.refcount, message.tracked, message in app.consumer._unacked_messages) == (1, True, True)


def test_records_put_together_each_hold_a_reference_are_tracked_and_are_taken_as_one_batch(flowing):
    async def scenario():
        feed = Feed(app, maxsize=10)
        batch = asyncio.ensure_future(first_batch(feed, max_records=3, within_s=DEADLINE_S))
        await until(lambda: feed._wanted == 1, "the agent waiting")
        run = [record(offset) for offset in (4, 5, 6)]
        feed.put_many(run)
        return await batch, run, feed.room()

    taken, run, room = asyncio.run(scenario())
    assert taken == [4, 5, 6]
    assert [(m.refcount, m.tracked, m in app.consumer._unacked_messages) for m in run] == [(1, True, True)] * 3
    assert room == 10


def test_records_of_an_earlier_consumer_generation_are_left_out(flowing, monkeypatch):
    async def scenario():
        feed = Feed(app, maxsize=100)
        feed.put(record(1, generation=0))
        monkeypatch.setattr(app, "consumer_generation_id", 1)  # a rebalance happened meanwhile
        feed.put(record(2, generation=1))
        return await first_batch(feed, max_records=2)

    before = counters["records_of_an_earlier_generation"]
    taken = asyncio.run(scenario())

    assert taken == [2]
    assert counters["records_of_an_earlier_generation"] - before == 1


def test_the_rebalance_clears_what_the_agent_has_not_taken(flowing):
    feed = Feed(app, maxsize=100)
    feed.put(record(1))
    feed.put(record(2))
    before = counters["records_dropped_at_rebalance"]
    app.flow_control.suspend()
    app.flow_control.clear()  # what Faust does to every stream buffer at a revoke

    assert feed._messages == []
    assert counters["records_dropped_at_rebalance"] - before == 2


def test_a_delivery_to_a_full_feed_waits_for_room(flowing):
    async def scenario():
        feed = Feed(app, maxsize=2)
        feed.put(record(1))
        feed.put(record(2))
        waiting = asyncio.ensure_future(feed.put_when_room(record(3)))
        await asyncio.sleep(0.05)
        blocked = not waiting.done()
        taken = await first_batch(feed, max_records=2)
        await asyncio.wait_for(waiting, DEADLINE_S)
        return blocked, taken, [m.offset for m in feed._messages]

    assert asyncio.run(scenario()) == (True, [1, 2], [3])


def test_a_resume_of_the_flow_keeps_what_the_consumer_delivered_after_the_seek(flowing):
    feed = Feed(app, maxsize=100)
    feed.put(record(1))  # delivered in order after this generation's seek; the gate is past it
    app.flow_control.resume()  # Faust resumes (and clears its buffers) after the seek too

    assert [message.offset for message in feed._messages] == [1]
