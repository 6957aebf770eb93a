from __future__ import annotations

import pytest

from cdc import rest
from cdc.connector import CDC_TABLES, cdc_topics, connector_config, connector_secrets
from config import Settings
from source.database import schema_statements, SCHEMA


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None, STACK_HOME="/nonexistent-stack", MYSQL_HOST="db.internal", MYSQL_PORT=3307,
                    MYSQL_CDC_USER="debezium", MYSQL_CDC_PASSWORD="pw", MYSQL_DATABASE="shop",
                    KAFKA_BOOTSTRAP="k1:9092")


def test_the_config_is_filled_from_the_settings(settings: Settings):
    config = connector_config(settings)

    assert "pw" not in config.values() and connector_secrets(settings)["database.password"] == "pw"

    assert config["connector.class"] == "io.debezium.connector.mariadb.MariaDbConnector"
    assert (config["database.hostname"], config["database.port"], config["database.user"],
            config["database.password"]) == ("db.internal", "3307", "debezium",
                                             "${file:/nonexistent-stack/conf/connector-secrets.properties:database.password}")
    assert config["table.include.list"].split(",") == [f"shop.{table}" for table in CDC_TABLES]
    assert config["schema.history.internal.kafka.bootstrap.servers"] == "k1:9092"
    assert not any("${" in value for key, value in config.items() if key != "database.password")


@pytest.mark.parametrize("flavor", ["mariadb", "mysql"])
def test_the_cdc_topics_are_replicated_as_the_settings_say(flavor: str):
    config = connector_config(Settings(_env_file=None, KAFKA_BROKERS=3), flavor)

    assert (config["topic.creation.default.replication.factor"],
            config["topic.creation.default.min.insync.replicas"]) == ("3", "2")


def test_the_stack_makes_each_cdc_topic_as_the_connector_would():
    settings = Settings(_env_file=None, KAFKA_BROKERS=3, TOPIC_PARTITIONS=6, MYSQL_DATABASE="shop")

    made = {topic.topic: (topic.num_partitions, topic.replication_factor, topic.config) for topic in cdc_topics(settings)}

    assert made == {f"mysql.shop.{table}": (6, 3, {"min.insync.replicas": "2"}) for table in CDC_TABLES}


def test_both_flavors_write_the_same_topics_and_envelope(settings: Settings):
    mariadb, mysql = connector_config(settings, "mariadb"), connector_config(settings, "mysql")

    assert mysql["connector.class"] == "io.debezium.connector.mysql.MySqlConnector"
    assert {k: v for k, v in mariadb.items() if k != "connector.class"} == \
        {k: v for k, v in mysql.items() if k != "connector.class"}
    assert mariadb["topic.prefix"] == "mysql"
    assert mariadb["tombstones.on.delete"] == "true"
    assert mariadb["decimal.handling.mode"] == "string"
    assert mariadb["snapshot.mode"] == "initial"
    assert settings.cdc_topic("orders") == "mysql.shop.orders"


def test_overrides_win(settings: Settings):
    assert connector_config(settings, **{"database.server.id": "9"})["database.server.id"] == "9"


def test_a_failed_task_is_reported_with_its_trace():
    report = {"connector": {"state": "RUNNING", "worker_id": "w1"},
              "tasks": [{"id": 0, "state": "FAILED", "worker_id": "w1", "trace": "SQLException: denied"}]}

    assert "task 0 FAILED on w1:\nSQLException: denied" == rest.failure(report)
    assert not rest.is_running(report)


def test_running_needs_the_connector_and_at_least_one_task_running():
    running = {"connector": {"state": "RUNNING"}, "tasks": [{"id": 0, "state": "RUNNING"}]}
    no_task = {"connector": {"state": "RUNNING"}, "tasks": []}

    assert rest.is_running(running) and rest.failure(running) is None
    assert not rest.is_running(no_task)
    assert not rest.is_running(None)


def test_the_schema_file_creates_the_four_contract_tables_and_debeziums_signal_table():
    statements = schema_statements(SCHEMA.read_text())

    assert len(statements) == 5
    assert "debezium_signal" in statements[4]
    assert all(s.startswith("CREATE TABLE IF NOT EXISTS") for s in statements)
    assert "id                 CHAR(36)     NOT NULL PRIMARY KEY" in statements[2]
    assert "PRIMARY KEY (order_id, product_id)" in statements[3]


def test_orders_and_details_are_keyed_by_order_id_in_topic_partitions(settings: Settings):
    config = connector_config(Settings(_env_file=None, TOPIC_PARTITIONS=6))

    assert config["topic.creation.default.partitions"] == "6"
    assert config["transforms.orderKey.type"] == "org.apache.kafka.connect.transforms.ExtractField$Key"
    assert (config["transforms.orderKey.field"], config["transforms.detailKey.field"]) == ("id", "order_id")
    assert config["predicates.isOrders.pattern"] == r"mysql\..+\.orders"


def test_an_unfilled_placeholder_is_an_error(tmp_path, monkeypatch: pytest.MonkeyPatch, settings: Settings):
    (tmp_path / "odd.json").write_text('{"database.hostname": "${NO_SUCH_SETTING}"}')
    monkeypatch.setattr("cdc.connector.TEMPLATES", tmp_path)

    with pytest.raises(KeyError, match="database.hostname"):
        connector_config(settings, "odd")


def test_the_healer_waits_longer_each_time_a_connector_fails_again_up_to_ten_minutes():
    from cdc.__main__ import retry_after_s

    assert [retry_after_s(n, 5) for n in (1, 2, 3, 4)] == [5, 10, 20, 40]
    assert retry_after_s(30, 5) == 600


def test_the_connectors_schema_history_clients_authenticate_as_connect():
    secured = Settings(_env_file=None, STACK_HOME="/nonexistent-stack", KAFKA_CONNECT_USER="connect",
                       KAFKA_CONNECT_PASSWORD="c-pw", MYSQL_PASSWORD="db-pw")

    config = connector_config(secured)

    for client in ("producer", "consumer"):
        assert config[f"schema.history.internal.{client}.security.protocol"] == "SASL_PLAINTEXT"
        assert (config[f"schema.history.internal.{client}.sasl.jaas.config"]
                == "${file:/nonexistent-stack/conf/connector-secrets.properties:kafka.sasl.jaas.config}")
    assert 'username="connect" password="c-pw"' in connector_secrets(secured)["kafka.sasl.jaas.config"]
    assert "c-pw" not in str(config)
    assert not any(key.startswith("schema.history.internal.producer.") for key in connector_config(
        Settings(_env_file=None, STACK_HOME="/nonexistent-stack")))


def test_the_watcher_holding_only_connects_rest_login_sends_the_config_the_stack_registers(tmp_path):
    stack = {f"{variable}": value for variable, value in {
        "KAFKA_USER": "orderpipe-stream", "KAFKA_PASSWORD": "stream-pw", "KAFKA_CONNECT_USER": "orderpipe-connect",
        "KAFKA_CONNECT_PASSWORD": "connect-pw", "KAFKA_TOOLS_USER": "orderpipe-tools", "KAFKA_TOOLS_PASSWORD": "tools-pw",
        "KAFKA_CONNECT_REST_PASSWORD": "rest-pw", "MYSQL_CDC_USER": "orderpipe-cdc",
        "MYSQL_CDC_PASSWORD": "cdc-pw"}.items()}
    everything = Settings(_env_file=None, STACK_HOME=str(tmp_path), **stack)
    watcher = Settings(_env_file=None, **everything.as_env("connector-watcher"))

    assert watcher.kafka_tools_password is None and watcher.kafka_connect_password is None
    assert connector_config(watcher) == connector_config(everything)
    assert "sasl.jaas.config" in " ".join(connector_config(watcher))  # the config logs in, by reference


def test_a_setting_holding_quotes_or_braces_stays_one_value_of_the_config(settings: Settings):
    hostile = settings.model_copy(update={"mysql_host": 'db", "database.user": "root', "cdc_connector_name": "a}{b"})
    config = connector_config(hostile)

    assert config["database.hostname"] == 'db", "database.user": "root'
    assert config["database.user"] == "debezium"
    assert set(config) == set(connector_config(settings))
