"""The connector's configuration: a JSON template in config/connectors/, filled from settings.

Placeholders are named after the settings' environment variables (`${MYSQL_HOST}`), so the
file reads as exactly what is sent to Kafka Connect. Secrets are never in it: the connector
holds `${file:<CONNECTOR_SECRETS_FILE>:<key>}` references that Connect's worker resolves from
its own owner-only file (`connector_secrets` writes it), so GET /connectors/*/config shows
where a password is, not the password.

Co-partitioning: `ExtractField$Key` makes the key of both `orders` and `order_details`
records the bare order id (JSON string), so Kafka's default partitioner puts every change
of one order into the same partition number of both topics, and Faust's own partitioner
(the table changelogs, web-view routing) agrees. These topics must not be compacted: a
detail's tombstone now carries its order's key.
"""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path
from string import Template

from confluent_kafka.admin import NewTopic

from config import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "connectors"
CDC_TABLES = ("orders", "order_details", "customers", "payment_method")
CDC_TOPIC_PREFIX = "mysql."  # every CDC topic's name begins with the template's topic.prefix
SCHEMA_HISTORY_PREFIX = "schema-history."  # the template's schema history topic, and its consumer's group
# Kafka Connect's worker group and internal topics (its offsets topic is a setting: the workers read it)
CONNECT_GROUP, CONNECT_CONFIGS_TOPIC, CONNECT_STATUS_TOPIC = "connect-cluster", "_connect_configs", "_connect_status"


def placeholders(settings: Settings) -> dict[str, str]:
    return {
        "MYSQL_HOST": settings.mysql_host,
        "MYSQL_PORT": str(settings.mysql_port),
        "MYSQL_CDC_USER": settings.mysql_cdc_user or settings.mysql_user,
        "CONNECTOR_SECRETS_FILE": settings.connector_secrets_path,
        "MYSQL_DATABASE": settings.mysql_database,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TOPIC_PARTITIONS": str(settings.topic_partitions),
        "REPLICATION_FACTOR": str(settings.replication_factor),
        "MIN_INSYNC_REPLICAS": str(settings.min_insync_replicas),
        # Debezium names its JMX beans after topic.prefix; connectors sharing the prefix on
        # one Connect worker wait minutes for each other's beans unless tagged apart.
        "CDC_CONNECTOR_NAME": settings.cdc_connector_name,
    }


def heartbeat_topic() -> str:
    """Where Debezium writes a heartbeat every heartbeat.interval.ms (`__debezium-heartbeat.<topic.prefix>`):
    a topic of its own, so the workers never read one."""
    return f"__debezium-heartbeat.{CDC_TOPIC_PREFIX.rstrip('.')}"


def secret_reference(settings: Settings, key: str) -> str:
    """What a connector config holds for the secret `key` of the connector secrets file."""
    return f"${{file:{settings.connector_secrets_path}:{key}}}"


def connector_config(settings: Settings, flavor: str | None = None, **overrides: str) -> dict[str, str]:
    """The connector config for `flavor` ("mariadb" or "mysql"; default from settings)."""
    template = TEMPLATES / f"{flavor or settings.cdc_connector}.json"
    # Filled value by value, after parsing: a setting holding a quote stays one value.
    # safe_substitute: class names such as ExtractField$Key contain a `$`.
    values = placeholders(settings)
    config = {key: Template(value).safe_substitute(values) for key, value in json.loads(template.read_text()).items()}
    unfilled = sorted(key for key, value in config.items() if UNFILLED.search(value))
    if unfilled:
        raise KeyError(f"{template.name}: no setting for the placeholders of {', '.join(unfilled)}")
    return {**config, **schema_history_security(settings), **overrides}


def cdc_topics(settings: Settings) -> list[NewTopic]:
    """The CDC topics as the connector would make them at its first record (the template's
    `topic.creation.default.*`): made by the stack before any worker reads them, because the
    workers' login may read CDC topics but not create them."""
    config = connector_config(settings)
    created = "topic.creation.default."
    return [NewTopic(settings.cdc_topic(table), int(config[f"{created}partitions"]),
                     int(config[f"{created}replication.factor"]),
                     config={"min.insync.replicas": config[f"{created}min.insync.replicas"]})
            for table in CDC_TABLES]


UNFILLED = re.compile(r"\$\{[A-Z_]+\}")  # a template's own placeholder; `${file:...}` is Connect's


def schema_history_security(settings: Settings) -> dict[str, str]:
    """Debezium's schema history topic has a producer and a consumer of its own, outside
    Connect's: they authenticate as Connect does (the login a reference to the secrets file),
    the consumer in a group Connect's user may use (Debezium's default is named after the
    connector)."""
    login = secret_reference(settings, "kafka.sasl.jaas.config")
    return {**{key: value for side in ("producer", "consumer")
               for key, value in settings.kafka_java_config("connect", f"schema.history.internal.{side}.",
                                                            jaas=login).items()},
            "schema.history.internal.consumer.group.id": f"{SCHEMA_HISTORY_PREFIX}{settings.cdc_connector_name}"}


def connector_secrets(settings: Settings) -> dict[str, str]:
    """The connector secrets file's keys and values (Connect's side of `secret_reference`)."""
    login = settings.kafka_java_config("connect")
    return {"database.password": settings.mysql_login("cdc")[1],
            **({"kafka.sasl.jaas.config": login["sasl.jaas.config"]} if login else {})}


def server_id(connector_name: str) -> str:
    """A replication server id of the connector's own; two connectors sharing one would
    keep disconnecting each other from the binlog."""
    return str(10_000 + zlib.crc32(connector_name.encode()) % 1_000_000)


