"""`python -m streams dead-letters list|replay` against a running stream."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import orjson
import pytest
from aiokafka.partitioner import DefaultPartitioner
from confluent_kafka import Consumer, Producer, TopicPartition

from cdc.topics import read_to_end
from config.settings import REPO_ROOT
from tests.integration.scratch_stream import go_past, scratch_stream

ORDER_ID = str(uuid.uuid4())


def record(op: str, row: dict, pos: int) -> bytes:
    source = {"file": "mysql-bin.000001", "pos": pos, "row": 0, "ts_ms": int(time.time() * 1000)}
    return orjson.dumps({"op": op, "before": None, "after": row, "source": source})


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=1, web_port=16366) as running:
        yield running


def streams_cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "streams", "dead-letters", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, env={**os.environ, **settings.as_env()})


def finals_of(settings, order_id: str) -> list[dict]:
    return [m.value for m in read_to_end(settings, settings.order_final_topic) if m.value["order_id"] == order_id]


def test_dead_letters_are_listed_with_reasons_and_a_replay_completes_the_order_once(stream):
    settings, _ = stream
    key = orjson.dumps(ORDER_ID)
    every = list(range(settings.topic_partitions))
    partition = DefaultPartitioner()(key, every, every)
    producer = Producer(settings.kafka_client_config())
    # the header: processed normally; its one detail: a dead letter from an older codec, as if
    # it had been rejected before a fix; and a record the stream dead-letters itself
    producer.produce(settings.cdc_topic("orders"), key=key, partition=partition,
                     value=record("c", {"id": ORDER_ID, "customer_id": 1, "payment_method_id": 2,
                                        "num_products": 1}, 100))
    producer.produce(settings.dead_letter_topic, key=key, partition=0,
                     value=record("c", {"order_id": ORDER_ID, "product_id": 7, "quantity": 2}, 200),
                     headers=[("reason", b"rejected by an older codec"),
                              ("topic", settings.cdc_topic("order_details").encode()),
                              ("partition", str(partition).encode()), ("offset", b"5")])
    producer.produce(settings.cdc_topic("order_details"), key=key, partition=partition, value=b"{nope")
    assert producer.flush(30) == 0
    deadline = time.monotonic() + 60
    while "2 dead letters" not in (listed := streams_cli(settings, "list")).stdout:
        assert time.monotonic() < deadline, listed.stdout + listed.stderr
        time.sleep(1)

    older = streams_cli(settings, "list", "--reason", "OLDER CODEC")
    replayed = streams_cli(settings, "replay", "--reason", "older codec")
    deadline = time.monotonic() + 60
    while not finals_of(settings, ORDER_ID):
        assert time.monotonic() < deadline, "the replayed detail never completed its order"
        time.sleep(1)
    again = streams_cli(settings, "replay", "--reason", "older codec")
    go_past(settings)  # the workers processed the second replay: a second order_final would be out

    assert "rejected by an older codec" in listed.stdout and "value is not JSON" in listed.stdout
    assert "1 dead letters" in older.stdout and f"order_details[{partition}]@5" in older.stdout
    assert replayed.returncode == 0 and "replayed 1 records" in replayed.stdout, replayed.stderr
    assert again.returncode == 0
    [final] = finals_of(settings, ORDER_ID)
    assert final["products"] == [{"product_id": 7, "quantity": 2}]


def test_replay_asks_what_to_replay_and_since_is_checked(settings):
    unchosen = streams_cli(settings, "replay")
    misdated = streams_cli(settings, "list", "--since", "yesterday")

    assert unchosen.returncode == 2 and "choose what to replay" in unchosen.stderr
    assert misdated.returncode == 2 and "give a duration" in misdated.stderr
    assert "Traceback" not in unchosen.stderr + misdated.stderr


def test_letters_naming_anything_but_a_cdc_partition_are_refused_listed_and_printed_escaped(stream):
    """The workers' user may write the dead-letter topic: a forged letter must not become a write
    to Connect's configs, a partition that does not exist, or a terminal escape on screen."""
    settings, _ = stream
    stream_login = Producer(settings.kafka_client_config("stream"))  # what a worker's login can do
    detail = record("c", {"order_id": ORDER_ID, "product_id": 7, "quantity": 2}, 300)
    forged = {
        "connect-configs": [("topic", b"_connect_configs"), ("partition", b"0")],
        "no-partition": [("topic", settings.cdc_topic("order_details").encode()), ("partition", b"zero")],
        "partition-99": [("topic", settings.cdc_topic("order_details").encode()), ("partition", b"99")],
    }
    for label, where in forged.items():
        stream_login.produce(settings.dead_letter_topic, key=label.encode(), value=detail, partition=0,
                             headers=[("reason", b"forged \x1b[2J\x1b[31m" + label.encode()), *where, ("offset", b"x")])
    assert stream_login.flush(30) == 0
    configs_before = end_offsets(settings, "_connect_configs")

    listed = streams_cli(settings, "list", "--reason", "forged")
    replayed = streams_cli(settings, "replay", "--reason", "forged")

    assert listed.returncode == 0 and "3 dead letters" in listed.stdout, listed.stderr
    assert "\x1b" not in listed.stdout and "\\x1b[2J" in listed.stdout
    assert f"{settings.cdc_topic('order_details')}[?]@?" in listed.stdout
    assert replayed.returncode == 1 and "replayed 0 records" in replayed.stdout, replayed.stdout + replayed.stderr
    assert replayed.stderr.count("refused dead letter") == 3
    assert "'_connect_configs', no CDC topic of these settings" in replayed.stderr
    assert f"names no partition of {settings.cdc_topic('order_details')}" in replayed.stderr
    assert end_offsets(settings, "_connect_configs") == configs_before


def test_the_replay_role_may_write_the_cdc_topics_and_nothing_else(stream):
    settings, _ = stream
    replay_login = Producer(settings.kafka_client_config("replay"))
    outcomes: dict[str, str | None] = {}

    def delivered(error, message) -> None:
        outcomes[message.topic()] = None if error is None else error.name()

    for topic in (settings.cdc_topic("order_details"), "_connect_configs", settings.order_final_topic,
                  settings.dead_letter_topic):
        replay_login.produce(topic, key=b"probe", value=b"{nope", partition=0, on_delivery=delivered)
    replay_login.flush(30)

    assert outcomes == {settings.cdc_topic("order_details"): None, "_connect_configs": "TOPIC_AUTHORIZATION_FAILED",
                        settings.order_final_topic: "TOPIC_AUTHORIZATION_FAILED",
                        settings.dead_letter_topic: "TOPIC_AUTHORIZATION_FAILED"}


def end_offsets(settings, topic: str) -> list[int]:
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"offsets-{uuid.uuid4()}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return [consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in sorted(partitions)]
    finally:
        consumer.close()
