from __future__ import annotations

import hashlib

import stat
from pathlib import Path

import pytest

from config import Settings
from stack import tls
from stack.install import Toolchain, pom_property
from stack.services import Kafka, KafkaConnect, KafkaLayoutError, MariaDB, Redis, StackLayout, all_services, render_properties


@pytest.fixture
def layout(tmp_path: Path) -> StackLayout:
    return StackLayout(tmp_path / "stack")


def make(kind, layout: StackLayout, **env):
    settings = Settings(_env_file=None, **{"STACK_HOME": str(layout.home), **env})  # no secrets file
    return kind(settings, layout, Toolchain(layout.home / "cache"))


def test_kafka_listens_where_the_settings_say(layout: StackLayout):
    kafka = make(Kafka, layout, KAFKA_BOOTSTRAP="127.0.0.1:19092", KAFKA_CONTROLLER_PORT=19093)

    props = kafka.properties()

    assert kafka.port == 19092
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == layout.data("kafka")
    assert props["group.initial.rebalance.delay.ms"] == 0
    assert "broker.session.timeout.ms" not in props  # one broker: nothing to fence


SASL = {"KAFKA_BROKER_USER": "broker", "KAFKA_BROKER_PASSWORD": "b-pw", "KAFKA_USER": "stream",
        "KAFKA_PASSWORD": "s-pw", "KAFKA_CONNECT_USER": "connect", "KAFKA_CONNECT_PASSWORD": "c-pw"}


def test_with_credentials_every_kafka_listener_asks_for_them(layout: StackLayout):
    kafka = make(Kafka, layout, **SASL)

    props = kafka.properties()

    assert props["listeners"] == "CLIENT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["listener.security.protocol.map"] == "CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT"
    assert (props["inter.broker.listener.name"], props["sasl.mechanism.inter.broker.protocol"]) == ("CLIENT", "SCRAM-SHA-256")
    assert 'user_broker="b-pw"' in props["listener.name.controller.plain.sasl.jaas.config"]
    assert 'username="broker" password="b-pw"' in props["listener.name.client.scram-sha-256.sasl.jaas.config"]
    assert kafka.scram_users() == [f"--add-scram=SCRAM-SHA-256=[name={user},password={password}]"
                                   for user, password in sorted({("broker", "b-pw"), ("stream", "s-pw"), ("connect", "c-pw")})]


def test_with_the_stacks_ca_the_client_listener_serves_tls_with_the_stacks_certificate(layout: StackLayout):
    tls.ensure(layout.home, ["127.0.0.1"])
    kafka = make(Kafka, layout, **SASL, KAFKA_SSL_CA=str(layout.home / "conf" / "tls" / "ca.pem"))

    props = kafka.properties()

    assert props["listener.security.protocol.map"] == "CLIENT:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert (props["ssl.keystore.type"], props["ssl.keystore.location"]) == ("PEM", tls.broker_file(layout.home))
    assert (props["ssl.truststore.type"], str(props["ssl.truststore.location"])) == (
        "PEM", str(layout.home / "conf" / "tls" / "ca.pem"))


def test_kafka_data_formatted_for_plaintext_is_refused_with_credentials(layout: StackLayout):
    layout.data("kafka").mkdir(parents=True)
    (layout.data("kafka") / "meta.properties").write_text("cluster.id=x\n")
    layout.conf("kafka-brokers").parent.mkdir(parents=True, exist_ok=True)

    with pytest.raises(KafkaLayoutError, match="made for plaintext clients, the settings ask for sasl"):
        make(Kafka, layout, **SASL).prepare()


def test_connect_and_its_clients_authenticate_as_connect(layout: StackLayout):
    props = make(KafkaConnect, layout, **SASL).properties()

    for prefix in ("", "producer.", "consumer.", "admin."):
        assert props[f"{prefix}security.protocol"] == "SASL_PLAINTEXT"
        assert 'username="connect" password="c-pw"' in props[f"{prefix}sasl.jaas.config"]


def test_three_brokers_are_three_voters_with_ports_of_their_own_and_replicate_by_three(layout: StackLayout):
    settings = Settings(_env_file=None, KAFKA_BROKERS=3, STACK_HOME=str(layout.home))
    nodes = [service for service in all_services(settings.model_copy(update={"stack_home": layout.home}))
             if isinstance(service, Kafka)]
    third = nodes[2].properties()

    assert [(node.name, node.port) for node in nodes] == [("kafka", 9092), ("kafka-2", 9192), ("kafka-3", 9292)]
    assert settings.kafka_bootstrap == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292"
    assert third["node.id"] == 3
    assert third["controller.quorum.voters"] == "1@127.0.0.1:9093,2@127.0.0.1:9193,3@127.0.0.1:9293"
    assert third["listeners"] == "PLAINTEXT://127.0.0.1:9292,CONTROLLER://127.0.0.1:9293"
    assert third["log.dirs"] == layout.data("kafka-3")
    assert (third["default.replication.factor"], third["min.insync.replicas"]) == (3, 2)
    assert (third["offsets.topic.replication.factor"], third["transaction.state.log.min.isr"]) == (3, 2)
    assert (third["broker.session.timeout.ms"], third["broker.heartbeat.interval.ms"]) == (4000, 1000)


@pytest.mark.parametrize(("brokers", "replicas", "in_sync"), [(1, 1, 1), (2, 2, 1), (3, 3, 2), (5, 3, 2)])
def test_topics_get_up_to_three_replicas_and_two_in_sync_with_three(brokers, replicas, in_sync):
    settings = Settings(_env_file=None, KAFKA_BROKERS=brokers)

    assert (settings.replication_factor, settings.min_insync_replicas) == (replicas, in_sync)
    assert len(settings.kafka_bootstrap.split(",")) == brokers


def test_an_explicit_bootstrap_is_kept_with_several_brokers():
    settings = Settings(_env_file=None, KAFKA_BROKERS=3, KAFKA_BOOTSTRAP="kafka-a:9092")

    assert settings.kafka_bootstrap == "kafka-a:9092"


def test_kafka_data_made_for_one_broker_is_not_started_in_a_quorum_of_three(layout: StackLayout):
    (layout.data("kafka")).mkdir(parents=True)
    (layout.data("kafka") / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")  # made before, by one
    layout.conf("kafka-brokers").parent.mkdir(parents=True)

    with pytest.raises(KafkaLayoutError, match="made for 1 broker.*KAFKA_BROKERS=3.*STACK_HOME"):
        make(Kafka, layout, KAFKA_BROKERS=3)._check_quorum_size()


def test_every_node_is_formatted_with_the_cluster_id_the_first_has(layout: StackLayout):
    (layout.data("kafka")).mkdir(parents=True)
    (layout.data("kafka") / "meta.properties").write_text("cluster.id=Xy-1abc\nnode.id=1\n")
    layout.conf("kafka-cluster-id").parent.mkdir(parents=True)
    second = make(Kafka, layout, KAFKA_BROKERS=3)

    assert second._cluster_id() == "Xy-1abc"
    assert layout.conf("kafka-cluster-id").read_text() == "Xy-1abc"


def test_connect_loads_the_debezium_plugins_of_the_pinned_version(layout: StackLayout):
    connect = make(KafkaConnect, layout, KAFKA_CONNECT_URL="http://127.0.0.1:18083")

    props = connect.properties()

    assert props["listeners"] == "http://127.0.0.1:18083"
    assert str(props["plugin.path"]).endswith(f"debezium-{pom_property('debezium.version')}/plugins")
    assert connect.wave > make(Kafka, layout).wave


def test_connect_assigns_the_connector_again_at_once_after_its_session_expired(layout: StackLayout):
    props = make(KafkaConnect, layout).properties()

    assert props["scheduled.rebalance.max.delay.ms"] == 0  # not 5 minutes of CDC standing still


def test_connect_reads_file_references_only_from_the_connector_secrets_file(layout: StackLayout):
    connect = make(KafkaConnect, layout)
    props = connect.properties()

    assert props["config.providers"] == "file"
    assert props["config.providers.file.param.allowed.paths"] == connect.settings.connector_secrets_path


def test_connects_own_topics_are_replicated_as_the_settings_say(layout: StackLayout):
    props = make(KafkaConnect, layout, KAFKA_BROKERS=3).properties()

    assert {props[f"{topic}.storage.replication.factor"] for topic in ("offset", "config", "status")} == {3}
    assert props["bootstrap.servers"] == "127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292"


def test_mariadb_writes_a_row_based_binlog_for_debezium(layout: StackLayout):
    cnf = make(MariaDB, layout, MYSQL_PORT=13306).cnf()

    assert "port=13306" in cnf
    assert "binlog_format=ROW" in cnf
    assert "binlog_row_image=FULL" in cnf
    assert "log-bin=" in cnf and "server-id=" in cnf


def test_redis_requires_the_password_given_in_its_url_from_its_acl_file_not_its_command_line(layout: StackLayout):
    plain = make(Redis, layout, STACK_HOME=str(layout.home)).argv()  # a stack with no secrets file
    redis = make(Redis, layout, REDIS_URL="redis://:hunter2@127.0.0.1:6390/2")
    redis.prepare()
    guarded = redis.argv()

    assert "--aclfile" not in plain
    assert "hunter2" not in " ".join(guarded) and "--requirepass" not in guarded
    acl = Path(guarded[guarded.index("--aclfile") + 1])
    assert stat.S_IMODE(acl.stat().st_mode) == 0o600
    assert acl.read_text() == f"user default on #{hashlib.sha256(b'hunter2').hexdigest()} ~* &* +@all\n"
    assert guarded[guarded.index("--port") + 1] == "6390"


def test_properties_render_one_key_per_line():
    assert render_properties({"a.b": 1, "c": "x y"}) == "a.b=1\nc=x y\n"


def test_kafka_stays_on_3_9_x():
    assert pom_property("kafka.version").startswith("3.9.")


def test_redis_with_the_stacks_users_reads_them_from_an_owner_only_acl_file(layout: StackLayout):
    redis = make(Redis, layout, REDIS_URL="redis://orderpipe-guard:g-pw@127.0.0.1:6379/2",
                 REDIS_ADMIN_URL="redis://orderpipe-admin:a-pw@127.0.0.1:6379/2")

    redis.prepare()
    argv = redis.argv()

    acl = Path(argv[argv.index("--aclfile") + 1])
    assert acl == layout.conf("redis-users.acl") and "--requirepass" not in argv
    assert stat.S_IMODE(acl.stat().st_mode) == 0o600
    assert acl.read_text().splitlines()[0] == "user default off"
    assert "g-pw" not in acl.read_text() and "orderpipe-guard on #" in acl.read_text()
