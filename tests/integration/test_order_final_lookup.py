"""Resolving a stale claim: was the order already sent to order_final?"""

from __future__ import annotations

import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from agents.order_final_lookup import find_sent
from config import Settings


def test_an_order_is_found_from_the_claims_time_and_a_missing_one_is_not(settings: Settings, unique_name: str):
    scratch = settings.model_copy(update={"order_final_topic": f"order_final_{unique_name}"})
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(scratch.order_final_topic, 4, 1)])[scratch.order_final_topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    producer.produce(scratch.order_final_topic, key=b"sent-early", value=b"{}")
    producer.flush(10)
    time.sleep(0.2)
    claimed_at_ms = int(time.time() * 1000)
    for order_id in ("other-1", "sent-after-claim", "other-2"):
        producer.produce(scratch.order_final_topic, key=order_id.encode(), value=b"{}")
    assert producer.flush(10) == 0

    found = find_sent(scratch, "sent-after-claim", since_ms=claimed_at_ms)
    never = find_sent(scratch, "never-sent", since_ms=claimed_at_ms)
    before = find_sent(scratch, "sent-early", since_ms=claimed_at_ms)

    assert found is not None and 0 <= found[0] < 4 and found[1] >= 0
    assert never is None
    assert before is None  # sent before the claim: not this claim's send
