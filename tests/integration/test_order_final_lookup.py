"""Resolving stale claims: were the orders already sent to order_final? One read for many."""

from __future__ import annotations

import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from agents.emission.order_final_lookup import find_sent
from config import Settings


def test_an_order_is_found_from_the_claims_time_and_a_missing_one_is_not(settings: Settings, unique_name: str):
    scratch = settings.model_copy(update={"order_final_topic": f"order_final_{unique_name}"})
    admin = AdminClient(settings.kafka_client_config())
    admin.create_topics([NewTopic(scratch.order_final_topic, 4, settings.replication_factor)])[scratch.order_final_topic].result(30)
    producer = Producer(settings.kafka_client_config())
    producer.produce(scratch.order_final_topic, key=b"sent-early", value=b"{}")
    producer.flush(10)
    time.sleep(0.2)
    claimed_at_ms = int(time.time() * 1000)
    for order_id in ("other-1", "sent-after-claim", "other-2"):
        producer.produce(scratch.order_final_topic, key=order_id.encode(), value=b"{}")
    assert producer.flush(10) == 0

    found = find_sent(scratch, {"sent-after-claim", "other-2", "never-sent", "sent-early"}, since_ms=claimed_at_ms)

    assert set(found) == {"sent-after-claim", "other-2"}  # never-sent: absent
    assert all(0 <= partition < 4 and offset >= 0 for partition, offset in found.values())
    # sent before the claim: not this claim's send; from an earlier time on, it is found
    assert "sent-early" in find_sent(scratch, {"sent-early"}, since_ms=claimed_at_ms - 60_000)
