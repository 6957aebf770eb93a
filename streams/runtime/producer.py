"""Faust's Kafka producer with room in its send buffer, and no blind retry of a send the
exactly-once outputs guard.

Table writes are synchronous, so Faust queues their changelog records in a buffer and, once
more than `max_messages` (100) wait, blocks the fetch loop on every incoming record until
the buffer drains, logging "producer buffer full" each time. The commit protocol
(streams.runtime.commit_protocol) writes a flush's worth of keys at once, hundreds in a burst, so that
threshold stalled the stream several times a second. The buffer's records are already in
memory; the bound only has to stop a runaway, so it is raised.

aiokafka resends a batch whose produce request got no answer (the connection dropped, the
request timed out) or an answer saying it was written but not yet replicated. The broker may
have appended it already: a broker stopped under load appends the requests it has read and
closes the connections before answering, and the resend writes the batch a second time. For
order_final and order_alerts (`ONCE_ONLY_TOPICS`) such a batch fails instead; the guard
(agents.emission.exactly_once) then looks the orders up in the output before it sends again, which is what
it already does for a claim whose send may or may not have arrived. An idempotent producer
would keep the resend but, in aiokafka, also retries without a deadline, so a worker cut off
from the broker longer than the claim's lifetime could still write an order another worker
has since taken over and sent. Errors that say the batch was not written (no connection yet,
not the partition's leader) are retried as before, and other topics keep aiokafka's retries:
a repeated changelog record or tick changes nothing.

A once-only batch is also sent, or sent again, only within ONCE_ONLY_SEND_WITHIN_S of its
creation; later it fails unsent. aiokafka would send it as late as its request timeout after
creation (and hold it longer while the leader's connection is down), and a request may take
another request timeout to be answered: a write landing after the claim's lifetime
(agents.emission.exactly_once), when another worker may have found the order absent and sent it itself.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorrelationIdError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotEnoughReplicasAfterAppendError,
    RequestTimedOutError,
)
from aiokafka.producer.sender import Sender, SendProduceReqHandler
from faust.transport.drivers.aiokafka import Producer
from faust.transport.producer import ProducerBuffer

from config import settings

BUFFER_MAX_MESSAGES = 20_000
ONCE_ONLY_TOPICS = frozenset({settings.order_final_topic, settings.order_alerts_topic})
# The claim's lifetime is the request timeout plus this and a second's margin (agents.emission.exactly_once).
ONCE_ONLY_SEND_WITHIN_S = 4.0
# A produce request that failed with one of these may have been appended by the broker.
MAYBE_WRITTEN = (KafkaConnectionError, RequestTimedOutError, NotEnoughReplicasAfterAppendError, CorrelationIdError)


def may_resend(topic: str, error: Exception, once_only: frozenset[str] = ONCE_ONLY_TOPICS) -> bool:
    """Whether a failed batch for `topic` may be sent again without risking a second copy."""
    if topic not in once_only:
        return True
    return isinstance(error, NodeNotReadyError) or not isinstance(error, MAYBE_WRITTEN)


class OnceOnlyRequest(SendProduceReqHandler):
    def _can_retry(self, error: Exception, batch: Any) -> bool:
        return may_resend(batch.tp.topic, error, self._sender.once_only_topics) and super()._can_retry(error, batch)


def too_late(topic: str, age_s: float, once_only: frozenset[str] = ONCE_ONLY_TOPICS,
             within_s: float = ONCE_ONLY_SEND_WITHIN_S) -> bool:
    """Whether a batch for `topic`, created `age_s` ago, must fail instead of being sent now."""
    return topic in once_only and age_s > within_s


class OnceOnlySender(Sender):
    """aiokafka's sender whose produce requests are `OnceOnlyRequest`s (the body of
    `Sender._send_produce_req`, with the handler's class changed), and whose once-only batches
    fail unsent once too old."""

    def __init__(self, *args: Any, once_only_topics: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.once_only_topics = once_only_topics

    async def _send_produce_req(self, node_id: int, batches: dict) -> None:
        now = time.monotonic()
        late = {tp for tp, batch in batches.items() if too_late(tp.topic, now - batch._ctime, self.once_only_topics)}
        for tp in late:
            batches[tp].failure(exception=KafkaTimeoutError(
                f"{tp.topic} batch not sent within {ONCE_ONLY_SEND_WITHIN_S:.0f} s of its creation"))
        sending = {tp: batch for tp, batch in batches.items() if tp not in late}
        if sending:
            await OnceOnlyRequest(self, sending).do(node_id)
        self._in_flight.remove(node_id)
        for tp in batches:
            self._muted_partitions.remove(tp)


class OnceOnlyProducer(AIOKafkaProducer):
    def __init__(self, *, once_only_topics: frozenset[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if kwargs.get("enable_idempotence") or kwargs.get("transactional_id"):
            raise ValueError("the once-only sender is for a producer without idempotence")
        sender = self._sender
        self._sender = OnceOnlySender(
            sender.client, acks=sender._acks, txn_manager=None,
            message_accumulator=sender._message_accumulator,
            retry_backoff_ms=sender._retry_backoff * 1000,
            request_timeout_ms=sender._request_timeout_ms, once_only_topics=once_only_topics)


class RoomyProducerBuffer(ProducerBuffer):
    """Faust's buffer, bounded at BUFFER_MAX_MESSAGES, whose size is its queue's: Faust's
    `size` reads the `producer_threaded` setting on every call, and the conductor asks for
    it on every incoming record. This app never uses the threaded producer."""

    max_messages = BUFFER_MAX_MESSAGES

    @property
    def size(self) -> int:
        return self.pending.qsize()


class BatchingProducer(Producer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.app.conf.producer_threaded:
            raise ValueError("the stream's producer does not support producer_threaded")
        self.buffer = RoomyProducerBuffer(loop=self.loop, beacon=self.beacon)
        self.buffer.app = self.app

    @property
    def _producer_type(self) -> Any:
        return partial(OnceOnlyProducer, once_only_topics=ONCE_ONLY_TOPICS)


def raw_producer(app: Any) -> AIOKafkaProducer:
    """The aiokafka producer under the app's Faust producer (created with it): for sends that
    skip Faust's per-record bookkeeping, batches built by hand, and its client's metadata."""
    return app.producer._ensure_producer()
