from __future__ import annotations

import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, OffsetSpec, ResourcePatternType, ResourceType)
from pydantic import SecretStr

from cdc.connector import CDC_TABLES, CDC_TOPIC_PREFIX
from cdc.topics import read_to_end
from config import Settings
from stack import doctor, secrets, services
from stack.install import Toolchain
from config.settings import KAFKA_CLIENT_ROLES
from stack.services import (StackLayout, make_cdc_topics, set_kafka_access, set_scram_passwords,
                            super_user_admin)
from tests.integration.waiting import wait_for


def test_three_partition_topic_round_trips_through_a_consumer_group(settings: Settings, unique_name: str):
    # given a new 3-partition topic
    admin = AdminClient(settings.kafka_client_config())
    topic = f"stack-test-{unique_name}"
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(timeout=30)
    assert len(admin.list_topics(topic, timeout=10).topics[topic].partitions) == 3

    # when 30 keyed messages are produced
    producer = Producer({**settings.kafka_client_config(), "acks": "all"})
    sent = {f"key-{i}": f"value-{i}" for i in range(30)}
    for key, value in sent.items():
        producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0

    # then a consumer in a group reads every one of them, from every partition
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"group-{unique_name}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received, partitions = {}, set()
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            received[message.key().decode()] = message.value().decode()
            partitions.add(message.partition())
        consumer.commit(asynchronous=False)
        committed = consumer.committed([*consumer.assignment()], timeout=10)
    finally:
        consumer.close()
    assert received == sent
    assert partitions == {0, 1, 2}
    assert sum(tp.offset for tp in committed) == len(sent)


def test_a_topic_read_the_moment_it_is_created_is_read_empty(settings: Settings, unique_name: str):
    # a fresh topic's partitions answer NOT_LEADER_FOR_PARTITION for a moment (about 1 in 4 here)
    admin = AdminClient(settings.kafka_client_config())
    topics = [f"stack-test-{unique_name}-{i}" for i in range(12)]
    try:
        for topic in topics:
            admin.create_topics([NewTopic(topic, 6, settings.replication_factor)])[topic].result(timeout=30)
            assert read_to_end(settings, topic) == []
    finally:
        for done in admin.delete_topics(topics).values():
            done.exception(timeout=30)


def test_a_topic_is_read_from_the_first_record_stamped_at_a_time(settings: Settings, unique_name: str):
    admin = AdminClient(settings.kafka_client_config())
    topic = f"stack-test-{unique_name}"
    admin.create_topics([NewTopic(topic, 2, settings.replication_factor)])[topic].result(timeout=30)
    try:
        producer = Producer({**settings.kafka_client_config(), "acks": "all"})
        now_ms = int(time.time() * 1000)
        for n, stamp in enumerate([now_ms - 60_000, now_ms - 30_000, now_ms]):
            producer.produce(topic, key=b"k%d" % n, value=b'{"n": %d}' % n, partition=n % 2, timestamp=stamp)
        assert producer.flush(30) == 0

        assert sorted(m.value["n"] for m in read_to_end(settings, topic, since_ms=now_ms - 45_000)) == [1, 2]
        assert read_to_end(settings, topic, since_ms=now_ms + 60_000) == []
        assert len(read_to_end(settings, topic)) == 3
    finally:
        admin.delete_topics([topic])[topic].exception(timeout=30)


def test_storage_is_formatted_with_a_cluster_id_that_begins_with_a_dash(settings: Settings, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch):
    # one id in 64 begins with "-" (base64url of a random uuid): the format tool must not take it for an option
    monkeypatch.setattr(services.uuid, "uuid4", lambda: uuid.UUID(bytes=b"\xf8" + bytes(15)))
    layout = StackLayout(tmp_path / "stack")
    kafka = services.Kafka(settings.model_copy(update={"stack_home": layout.home, "kafka_ssl_ca": None}), layout,
                           Toolchain(settings.stack_cache))

    kafka.prepare()

    meta = (layout.data("kafka") / "meta.properties").read_text()
    assert "cluster.id=-AAAAAAAAAAAAAAAAAAAAA" in meta, meta


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _refusal(config: dict) -> list[str]:
    """What librdkafka logged of a client that asked the broker for its topics and got none."""
    kept = _Lines()
    logger = logging.getLogger(f"refused-{uuid.uuid4().hex}")
    logger.addHandler(kept)
    logger.propagate = False
    client = AdminClient({**config, "socket.timeout.ms": 3000, "logger": logger})
    with pytest.raises(KafkaException):
        client.list_topics(timeout=4)
    client.poll(0.5)  # serves the log lines queued
    return kept.lines


def test_a_client_without_credentials_or_with_a_wrong_password_is_refused_by_the_broker(settings: Settings):
    assert settings.kafka_login("tools"), "the stack's Kafka asks for SASL (stack/secrets.py)"
    wrong = {**settings.kafka_client_config(), "sasl.password": "not-the-password"}

    # a broker that is down refuses the connection; this one takes it and then refuses the client
    assert any("closed by peer" in said for said in _refusal({"bootstrap.servers": settings.kafka_bootstrap}))
    assert any("Authentication failed" in said and "invalid credentials" in said for said in _refusal(wrong))
    assert AdminClient(settings.kafka_client_config()).list_topics(timeout=10).topics


def test_the_doctor_hears_kafka_answer_a_login_and_refuse_a_client_without_one_at_once(settings: Settings):
    started = time.monotonic()
    assert not doctor.kafka_answers(settings.kafka_bootstrap)
    assert time.monotonic() - started < 3  # a refusal, not a timeout
    assert doctor.kafka_answers(settings.kafka_bootstrap, **settings.kafka_aiokafka_auth("tools"))


def _delivery_error(config: dict, topic: str) -> str | None:
    """The error name Kafka gave one record sent to `topic` as `config`'s user, or None."""
    errors = []
    producer = Producer({**config, "message.timeout.ms": 10000, "log_level": 0})
    producer.produce(topic, key=b"refusal-test", value=b"{}", on_delivery=lambda error, _: errors.append(error))
    producer.flush(15)
    return errors[0].name() if errors and errors[0] else None


def _read_error(config: dict, topic: str, group: str) -> str | None:
    """The error name Kafka gave a read of `topic` as `config`'s user in `group`, or None."""
    consumer = Consumer({**config, "group.id": group, "auto.offset.reset": "earliest", "log_level": 0})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                return message.error().name() if message.error() else None
            if consumer.assignment():
                return None
        return "TIMED_OUT"
    finally:
        consumer.close()


@pytest.fixture
def refusal_topics(settings: Settings, unique_name: str):
    """A scratch database's CDC topic and a scratch stream's output, named as the tests name them."""
    cdc_topic, output = f"{CDC_TOPIC_PREFIX}{unique_name}.orders", f"{settings.order_final_topic}_{unique_name}"
    admin = AdminClient(settings.kafka_client_config())
    for topic in (cdc_topic, output):
        admin.create_topics([NewTopic(topic, 1, settings.replication_factor)])[topic].result(timeout=30)
    deadline = time.monotonic() + 30
    while not all(partition.leader >= 0 for topic in admin.list_topics(timeout=10).topics.values()
                  if topic.topic in (cdc_topic, output) for partition in topic.partitions.values()) \
            and time.monotonic() < deadline:  # a fresh topic has no leader for a moment
        time.sleep(0.2)
    yield cdc_topic, output
    for done in admin.delete_topics([cdc_topic, output]).values():
        done.result(timeout=30)


def test_each_role_does_what_it_is_granted_and_is_refused_the_rest(settings: Settings, unique_name: str,
                                                                  refusal_topics: tuple[str, str]):
    stream, lake, connect = (settings.kafka_client_config(role) for role in ("stream", "lake", "connect"))
    assert len({config["sasl.username"] for config in (stream, lake, connect)}) == 3
    cdc_topic, output = refusal_topics
    # the workers read the CDC topics and write their outputs, never a CDC topic
    assert _read_error(stream, cdc_topic, f"{settings.stream_app_id}-{unique_name}") is None
    assert _delivery_error(stream, output) is None
    assert _delivery_error(stream, cdc_topic) == "TOPIC_AUTHORIZATION_FAILED"
    # nor delete a topic, nor join a group that is not theirs
    workers_admin = AdminClient({**stream, "log_level": 0})
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        workers_admin.delete_topics([output])[output].result(timeout=30)
    assert _read_error(stream, cdc_topic, f"other-{unique_name}") == "GROUP_AUTHORIZATION_FAILED"
    # the lake reads the CDC topics in Spark's groups; it writes nothing, nor reads the outputs
    assert _read_error(lake, cdc_topic, f"spark-kafka-source-{unique_name}") is None
    assert _delivery_error(lake, output) == "TOPIC_AUTHORIZATION_FAILED"
    assert _delivery_error(lake, cdc_topic) == "TOPIC_AUTHORIZATION_FAILED"
    assert _read_error(lake, output, f"spark-kafka-source-{unique_name}") == "TOPIC_AUTHORIZATION_FAILED"
    # Kafka Connect writes the CDC topics, and reads no output
    assert _read_error(connect, output, f"schema-history.{unique_name}") == "TOPIC_AUTHORIZATION_FAILED"
    # broker-metrics' monitor: the end offsets and the group's commits, nothing read, nothing written
    monitor = settings.kafka_client_config("monitor")
    assert monitor["sasl.username"] not in secrets.kafka_super_users(settings)
    monitor_admin = AdminClient({**monitor, "log_level": 0})
    head = TopicPartition(cdc_topic, 0)
    assert monitor_admin.list_offsets({head: OffsetSpec.latest()}, request_timeout=15)[head].result().offset == 0
    group = ConsumerGroupTopicPartitions(f"{settings.stream_app_id}-{unique_name}", [head])
    assert monitor_admin.list_consumer_group_offsets([group], request_timeout=15)[group.group_id].result()
    assert _delivery_error(monitor, cdc_topic) == "TOPIC_AUTHORIZATION_FAILED"
    assert _read_error(monitor, cdc_topic, f"{settings.stream_app_id}-{unique_name}") in (
        "GROUP_AUTHORIZATION_FAILED", "TOPIC_AUTHORIZATION_FAILED")


def test_the_stack_makes_the_cdc_topics_the_workers_may_not(settings: Settings, unique_name: str):
    scratch = settings.model_copy(update={"mysql_database": unique_name})
    names = sorted(scratch.cdc_topic(table) for table in CDC_TABLES)
    workers_admin = AdminClient({**settings.kafka_client_config("stream"), "log_level": 0})
    fresh = NewTopic(names[0], scratch.topic_partitions, scratch.replication_factor)
    with pytest.raises(KafkaException, match="TOPIC_AUTHORIZATION_FAILED"):
        workers_admin.create_topics([fresh])[names[0]].result(timeout=30)
    admin = super_user_admin(settings)
    assert names[0] not in admin.list_topics(timeout=10).topics
    try:
        assert sorted(make_cdc_topics(admin, scratch)) == names
        found = admin.list_topics(timeout=10).topics
        assert {name: len(found[name].partitions) for name in names} == dict.fromkeys(names, scratch.topic_partitions)
        assert make_cdc_topics(admin, scratch) == []  # made already: nothing to do
    finally:
        for done in admin.delete_topics(names).values():
            done.result(timeout=30)


def test_a_scram_user_the_settings_do_not_name_is_removed_at_the_next_start(settings: Settings, unique_name: str):
    stale, password = f"orderpipe-stale-{unique_name}", "a-password-of-a-renamed-role"
    set_scram_passwords(super_user_admin(settings), settings.kafka_sasl_mechanism, [(stale, password)])
    login = {**settings.kafka_aiokafka_auth("tools"), "sasl_plain_username": stale, "sasl_plain_password": password}
    assert doctor.kafka_answers(settings.kafka_bootstrap, **login)  # let in while it exists

    set_kafka_access(settings)  # what `stack up` runs

    assert stale not in super_user_admin(settings).describe_user_scram_credentials().result(timeout=30)
    assert not doctor.kafka_answers(settings.kafka_bootstrap, **login)
    assert all(doctor.kafka_answers(settings.kafka_bootstrap, **settings.kafka_aiokafka_auth(role))
               for role in (*KAFKA_CLIENT_ROLES, "tools"))


def test_a_rule_the_stack_does_not_make_is_removed_at_its_next_start(settings: Settings, unique_name: str,
                                                                    refusal_topics: tuple[str, str]):
    stream = settings.kafka_client_config("stream")
    cdc_topic, _ = refusal_topics
    admin = AdminClient(settings.kafka_client_config())
    rule = (ResourceType.TOPIC, cdc_topic, ResourcePatternType.LITERAL, f"User:{stream['sasl.username']}", "*",
            AclOperation.WRITE, AclPermissionType.ALLOW)
    widened = AclBinding(*rule)
    admin.create_acls([widened])[widened].result(timeout=30)
    try:
        assert _delivery_error(stream, cdc_topic) is None  # the workers could forge CDC records

        # what `stack up` does at each start, and docker-compose's kafka-access service
        subprocess.run([sys.executable, "-m", "stack", "kafka-access"], check=True, timeout=120)

        assert _delivery_error(stream, cdc_topic) == "TOPIC_AUTHORIZATION_FAILED"
        granted = admin.describe_acls(services.EVERY_ACL).result()
        assert set(granted) == set(services.kafka_acl_bindings(settings))
    finally:
        leftover = AclBindingFilter(*rule)
        admin.delete_acls([leftover])[leftover].result(timeout=30)


def test_a_password_changed_in_the_settings_is_the_clusters_after_the_next_start_and_the_old_one_refused(
        settings: Settings):
    # given the lake's and the tools' passwords changed (the tools' one is the stack's own login)
    changed = settings.model_copy(update={"kafka_lake_password": SecretStr(f"lake-{uuid.uuid4().hex}"),
                                          "kafka_tools_password": SecretStr(f"tools-{uuid.uuid4().hex}")})
    try:
        # when the stack sets the passwords, as at its start
        services.set_kafka_passwords(changed)

        # then the new passwords are answered and the old ones refused
        for role in ("lake", "tools"):
            assert wait_for(lambda: doctor.kafka_answers(settings.kafka_bootstrap, **changed.kafka_aiokafka_auth(role)),
                            10), role
            assert not doctor.kafka_answers(settings.kafka_bootstrap, **settings.kafka_aiokafka_auth(role)), role
    finally:
        services.set_kafka_passwords(settings)  # the brokers' login sets the tools' back

    assert wait_for(lambda: doctor.kafka_answers(settings.kafka_bootstrap, **settings.kafka_aiokafka_auth("tools")), 10)
