"""streams.runtime.producer: a batch for order_final or order_alerts that the broker may have written
already fails instead of being sent a second time; other batches are retried."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    NodeNotReadyError,
    NotEnoughReplicasAfterAppendError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)
from aiokafka.structs import TopicPartition

from config import settings
from streams.app import app
from streams.runtime.producer import ONCE_ONLY_TOPICS, OnceOnlyProducer, OnceOnlyRequest, OnceOnlySender, may_resend

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


def test_the_exactly_once_outputs_are_the_once_only_topics():
    assert ONCE_ONLY_TOPICS == {settings.order_final_topic, settings.order_alerts_topic}


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
        batches = {}
        for topic in (ORDER_FINAL, CHANGELOG):
            tp = TopicPartition(topic, 0)
            builder = accumulator.create_builder()
            builder.append(key=b"k", value=b"v", timestamp=None)
            batches[tp] = accumulator._append_batch(builder, tp)
        requeued = []
        accumulator.reenqueue = requeued.append
        await OnceOnlyRequest(sender, batches).do(node_id=1)
        await producer.client.close()
        return batches, requeued

    batches, requeued = asyncio.run(scenario())
    output, changelog = batches[TopicPartition(ORDER_FINAL, 0)], batches[TopicPartition(CHANGELOG, 0)]
    assert isinstance(output.future.exception(), KafkaConnectionError)
    assert requeued == [changelog] and not changelog.future.done()


def test_the_stream_app_sends_through_the_once_only_sender():
    async def build():
        producer = app.producer._new_producer()
        await producer.client.close()
        return producer

    producer = asyncio.run(build())
    assert isinstance(producer, OnceOnlyProducer)
    assert isinstance(producer._sender, OnceOnlySender)
    assert producer._sender.once_only_topics == ONCE_ONLY_TOPICS
