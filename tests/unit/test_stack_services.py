from __future__ import annotations

from pathlib import Path

import pytest

from config import Settings
from stack.install import Toolchain, pom_property
from stack.services import Kafka, KafkaConnect, MariaDB, Redis, StackLayout, render_properties


@pytest.fixture
def layout(tmp_path: Path) -> StackLayout:
    return StackLayout(tmp_path / "stack")


def make(kind, layout: StackLayout, **env):
    settings = Settings(_env_file=None, **env)
    return kind(settings, layout, Toolchain(layout.home / "cache"))


def test_kafka_listens_where_the_settings_say(layout: StackLayout):
    kafka = make(Kafka, layout, KAFKA_BOOTSTRAP="127.0.0.1:19092", KAFKA_CONTROLLER_PORT=19093)

    props = kafka.properties()

    assert kafka.port == 19092
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:19093"
    assert props["log.dirs"] == layout.data("kafka")
    assert props["group.initial.rebalance.delay.ms"] == 0


def test_connect_loads_the_debezium_plugins_of_the_pinned_version(layout: StackLayout):
    connect = make(KafkaConnect, layout, KAFKA_CONNECT_URL="http://127.0.0.1:18083")

    props = connect.properties()

    assert props["listeners"] == "http://127.0.0.1:18083"
    assert str(props["plugin.path"]).endswith(f"debezium-{pom_property('debezium.version')}/plugins")
    assert connect.wave > make(Kafka, layout).wave


def test_connect_assigns_the_connector_again_at_once_after_its_session_expired(layout: StackLayout):
    props = make(KafkaConnect, layout).properties()

    assert props["scheduled.rebalance.max.delay.ms"] == 0  # not 5 minutes of CDC standing still


def test_mariadb_writes_a_row_based_binlog_for_debezium(layout: StackLayout):
    cnf = make(MariaDB, layout, MYSQL_PORT=13306).cnf()

    assert "port=13306" in cnf
    assert "binlog_format=ROW" in cnf
    assert "binlog_row_image=FULL" in cnf
    assert "log-bin=" in cnf and "server-id=" in cnf


def test_redis_requires_the_password_given_in_its_url(layout: StackLayout):
    plain = make(Redis, layout).argv()
    guarded = make(Redis, layout, REDIS_URL="redis://:hunter2@127.0.0.1:6390/2").argv()

    assert "--requirepass" not in plain
    assert guarded[guarded.index("--requirepass") + 1] == "hunter2"
    assert guarded[guarded.index("--port") + 1] == "6390"


def test_properties_render_one_key_per_line():
    assert render_properties({"a.b": 1, "c": "x y"}) == "a.b=1\nc=x y\n"


def test_kafka_stays_on_3_9_x():
    assert pom_property("kafka.version").startswith("3.9.")
