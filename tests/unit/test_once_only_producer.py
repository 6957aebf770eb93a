"""streams.runtime.producer: a batch for order_final or order_alerts that the broker may have written
already fails instead of being sent a second time; other batches are retried."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotEnoughReplicasAfterAppendError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from aiokafka.structs import TopicPartition

from config import settings
from streams.app import app
from streams.runtime.producer import (
    ONCE_ONLY_SEND_WITHIN_S,
    ONCE_ONLY_TOPICS,
    OnceOnlyProducer,
    OnceOnlyRequest,
    OnceOnlySender,
    may_resend,
    too_late,
)

ORDER_FINAL = settings.order_final_topic
CHANGELOG = f"{settings.stream_app_id}-order_progress-changelog"


@pytest.mark.parametrize(("topic", "error", "resend"), [
    (ORDER_FINAL, KafkaConnectionError("connection closed awaiting the answer"), False),
    (ORDER_FINAL, RequestTimedOutError(), False),
    (ORDER_FINAL, NotEnoughReplicasAfterAppendError(), False),
    (settings.order_alerts_topic, KafkaConnectionError(), False),
    (ORDER_FINAL, NodeNotReadyError("not connected: nothing was sent"), True),
    (ORDER_FINAL, NotLeaderForPartitionError(), True),
    (CHANGELOG, KafkaConnectionError(), True),
    (CHANGELOG, RequestTimedOutError(), True),
])
def test_a_batch_is_resent_only_when_no_copy_can_be_written_twice(topic, error, resend):
    assert may_resend(topic, error) is resend


@pytest.mark.parametrize(("topic", "age_s", "late"), [
    (ORDER_FINAL, 0.01, False),
    (ORDER_FINAL, ONCE_ONLY_SEND_WITHIN_S - 0.5, False),
    (ORDER_FINAL, ONCE_ONLY_SEND_WITHIN_S + 0.5, True),
    (settings.order_alerts_topic, 60.0, True),
    (CHANGELOG, 60.0, False),
])
def test_an_output_batch_is_sent_only_while_young(topic, age_s, late):
    assert too_late(topic, age_s) is late


def test_a_claim_outlives_the_latest_write_of_its_send():
    from agents.emission.exactly_once import CLAIM_TTL_MS

    assert CLAIM_TTL_MS / 1000 > ONCE_ONLY_SEND_WITHIN_S + settings.producer_request_timeout_s


def test_the_exactly_once_outputs_are_the_once_only_topics():
    assert ONCE_ONLY_TOPICS == {settings.order_final_topic, settings.order_alerts_topic}


def one_record_batches(accumulator, *topics: str) -> dict:
    """A batch of one record for partition 0 of each topic, as the accumulator makes them."""
    batches = {}
    for topic in topics:
        tp = TopicPartition(topic, 0)
        builder = accumulator.create_builder()
        builder.append(key=b"k", value=b"v", timestamp=None)
        batches[tp] = accumulator._append_batch(builder, tp)
    return batches


@pytest.mark.timeout(30)
def test_a_request_that_lost_its_connection_fails_the_output_batch_and_requeues_the_changelog():
    async def scenario():
        producer = OnceOnlyProducer(bootstrap_servers="127.0.0.1:1", once_only_topics=frozenset({ORDER_FINAL}),
                                    retry_backoff_ms=1)
        sender = producer._sender
        accumulator = sender._message_accumulator

        async def connection_dropped(node_id, request):
            raise KafkaConnectionError("connection closed before the answer")

        async def metadata_current():
            return None

        # The client is the network: its request loses its connection, and its metadata
        # (which the error asks to refresh) is taken as current.
        sender.client.send = connection_dropped
        sender.client.force_metadata_update = lambda: None
        sender.client._maybe_wait_metadata = metadata_current
        batches = one_record_batches(accumulator, ORDER_FINAL, CHANGELOG)
        requeued = []
        accumulator.reenqueue = requeued.append
        await OnceOnlyRequest(sender, batches).do(node_id=1)
        await producer.client.close()
        return batches, requeued

    batches, requeued = asyncio.run(scenario())
    output, changelog = batches[TopicPartition(ORDER_FINAL, 0)], batches[TopicPartition(CHANGELOG, 0)]
    assert isinstance(output.future.exception(), KafkaConnectionError)
    assert requeued == [changelog] and not changelog.future.done()


@pytest.mark.timeout(30)
def test_an_output_batch_too_old_to_send_fails_unsent_and_the_changelog_batch_goes(monkeypatch: pytest.MonkeyPatch):
    """A batch that waited (for a leader, for the broker's connection) until the claim could go
    stale is never sent: another worker may be sending the order by the time it lands."""
    requested = []

    async def request(handler, node_id):
        requested.extend(handler._batches)

    monkeypatch.setattr(OnceOnlyRequest, "do", request)

    async def scenario():
        producer = OnceOnlyProducer(bootstrap_servers="127.0.0.1:1", once_only_topics=frozenset({ORDER_FINAL}))
        sender = producer._sender
        batches = one_record_batches(sender._message_accumulator, ORDER_FINAL, CHANGELOG)
        for tp, batch in batches.items():
            batch._ctime -= ONCE_ONLY_SEND_WITHIN_S + 1  # it waited that long
            sender._muted_partitions.add(tp)
        sender._in_flight.add(1)
        await sender._send_produce_req(1, batches)
        await producer.client.close()
        return sender, batches

    sender, batches = asyncio.run(scenario())
    output = batches[TopicPartition(ORDER_FINAL, 0)]
    assert requested == [TopicPartition(CHANGELOG, 0)]
    assert isinstance(output.future.exception(), KafkaTimeoutError)
    assert sender._in_flight == set() and sender._muted_partitions == set()


def test_the_stream_app_sends_through_the_once_only_sender():
    async def build():
        producer = app.producer._new_producer()
        await producer.client.close()
        return producer

    producer = asyncio.run(build())
    assert isinstance(producer, OnceOnlyProducer)
    assert isinstance(producer._sender, OnceOnlySender)
    assert producer._sender.once_only_topics == ONCE_ONLY_TOPICS
