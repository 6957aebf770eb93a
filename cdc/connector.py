"""The connector's configuration: a JSON template in config/connectors/, filled from settings.

Placeholders are named after the settings' environment variables (`${MYSQL_HOST}`), so the
file reads as exactly what is sent to Kafka Connect.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from string import Template

from config import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "config" / "connectors"
CDC_TABLES = ("orders", "order_details", "customers", "payment_method")


def placeholders(settings: Settings) -> dict[str, str]:
    return {
        "MYSQL_HOST": settings.mysql_host,
        "MYSQL_PORT": str(settings.mysql_port),
        "MYSQL_USER": settings.mysql_user,
        "MYSQL_PASSWORD": settings.mysql_password.get_secret_value(),
        "MYSQL_DATABASE": settings.mysql_database,
        "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
    }


def connector_config(settings: Settings, flavor: str | None = None, **overrides: str) -> dict[str, str]:
    """The connector config for `flavor` ("mariadb" or "mysql"; default from settings)."""
    template = TEMPLATES / f"{flavor or settings.cdc_connector}.json"
    config = json.loads(Template(template.read_text()).substitute(placeholders(settings)))
    return {**config, **overrides}


def server_id(connector_name: str) -> str:
    """A replication server id of the connector's own; two connectors sharing one would
    keep disconnecting each other from the binlog."""
    return str(10_000 + zlib.crc32(connector_name.encode()) % 1_000_000)


def cdc_topic(settings: Settings, table: str) -> str:
    """`mysql.project_db.<table>`: Debezium's `<topic.prefix>.<database>.<table>`."""
    return f"mysql.{settings.mysql_database}.{table}"
