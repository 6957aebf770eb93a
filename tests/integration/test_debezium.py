from __future__ import annotations

import pytest

from cdc import rest
from cdc.connector import connector_config, connector_secrets
from config import Settings
from source import database
from cdc.topics import read_topics, snapshot_done


@pytest.fixture
def probe_table(settings: Settings, unique_name: str):
    connection = database.connect(settings)
    cursor = connection.cursor()
    cursor.execute(f"CREATE TABLE {unique_name} (id INT PRIMARY KEY, note VARCHAR(50))")
    yield unique_name, cursor
    cursor.execute(f"DROP TABLE IF EXISTS {unique_name}")
    connection.close()


def probe_config(settings: Settings, table: str) -> dict[str, str]:
    """The config `cdc register` writes (its template, the secrets by reference), narrowed to
    the probe table, with a replication id and a schema history of its own."""
    return connector_config(settings, **{
        "database.server.id": str(10_000 + int(table[1:7], 16) % 50_000),
        "custom.metric.tags": f"connector={table}",
        "table.include.list": f"{settings.mysql_database}.{table}",
        "schema.history.internal.kafka.topic": f"schema-history.{table}",
    })


def test_a_registered_connector_streams_snapshot_and_insert_events(settings: Settings, probe_table):
    table, cursor = probe_table
    name = f"stack-test-{table}"
    connect = rest.client(settings)
    # given a row that exists before the connector (a snapshot row)
    cursor.execute(f"INSERT INTO {table} VALUES (1, 'before')")
    try:
        # when the connector is registered through the REST API and a row is inserted
        response = connect.put(f"/connectors/{name}/config", json=probe_config(settings, table))
        assert response.status_code in (200, 201), response.text
        rest.wait_running(connect, name)
        # the config read back names the secrets' file: Connect resolved them, nobody else sees them
        shown = connect.get(f"/connectors/{name}/config").text
        assert not [key for key, secret in connector_secrets(settings).items() if secret in shown], shown
        topic = f"mysql.{settings.mysql_database}.{table}"
        # RUNNING is not "snapshot done": a row written before the snapshot reads it is an `r`.
        read_topics(settings, [topic], until=snapshot_done)
        cursor.execute(f"INSERT INTO {table} VALUES (2, 'after')")

        # then its topic holds the snapshot row as op r and the insert as op c
        events = read_topics(settings, [topic], until=lambda seen: any(
            e.value and e.value["op"] == "c" for e in seen))
    finally:
        rest.delete(connect, name)

    by_op = {e.value["op"]: e for e in events if e.value}
    assert by_op["r"].value["after"] == {"id": 1, "note": "before"}
    assert by_op["c"].value["after"] == {"id": 2, "note": "after"}
    assert by_op["c"].value["source"]["table"] == table
    assert by_op["c"].key == {"id": 2}
