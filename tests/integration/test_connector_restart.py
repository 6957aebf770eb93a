"""A connector restarted after the binlog has been quiet loses no change (cdc.offsets).

After a schema change in a database it does not capture (a scratch database dropped, as
every test and benchmark does), Debezium counts each of the server's heartbeats on a quiet
binlog into the `event` of its stored offset; resumed with that offset, it skipped as many
events of the first new transactions. Each test stops a connector in that state, writes rows
while it is stopped, resumes it one of the project's two ways, and finds every row on its
topic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx

from cdc import rest
from cdc.connector import connector_config, server_id
from cdc.offsets import clear_stored_skips
from cdc.topics import read_topics
from config import Settings
from source import database
from tests.integration.waiting import wait_for

ROWS = 40  # one transaction each
SKIPS_COUNTED = 12  # heartbeats counted before the connector is stopped (one each 1.6 s)


@contextmanager
def quiet_connector(settings: Settings, unique_name: str) -> Iterator[tuple[Settings, httpx.Client]]:
    """A scratch database's connector, running, that has streamed one row, then seen another
    database created and dropped, then a quiet binlog until its stored offset counts events
    to skip."""
    with database.scratch_database(settings, unique_name) as scratch:
        database.apply_schema(database.connect(scratch))
        connect, name = rest.client(scratch), scratch.cdc_connector_name
        rest.put_config(connect, name, connector_config(scratch, **{"database.server.id": server_id(name)}))
        try:
            rest.wait_running(connect, name)
            insert_payment_methods(scratch, [0])
            assert len(payment_method_ids(scratch, until=1)) == 1
            with database.scratch_database(settings, f"{unique_name}_other"):
                pass
            counted = wait_for(lambda: (rest.committed_offset(connect, name) or {}).get("event", 0) >= SKIPS_COUNTED,
                               120)
            assert counted, f"no event count stored while quiet: {rest.committed_offset(connect, name)}"
            yield scratch, connect
        finally:
            rest.delete(connect, name)


def insert_payment_methods(settings: Settings, ids: list[int]) -> None:
    connection = database.connect(settings)
    for method_id in ids:
        connection.cursor().execute("INSERT INTO payment_method (id, name, provider) VALUES (%s, 'restart', 'test')",
                                    (method_id,))
    connection.close()


def payment_method_ids(settings: Settings, until: int) -> set[int]:
    messages = read_topics(settings, [settings.cdc_topic("payment_method")],
                           until=lambda found: len({m.value["after"]["id"] for m in found if m.value}) >= until,
                           timeout_s=60)
    return {m.value["after"]["id"] for m in messages if m.value}


def stopped_while_writing(settings: Settings, connect: httpx.Client, resume: Callable[[], object]) -> None:
    rest.stop(connect, settings.cdc_connector_name)
    insert_payment_methods(settings, list(range(1, ROWS + 1)))
    resume()
    rest.wait_running(connect, settings.cdc_connector_name)


def test_a_connector_resumed_through_the_rest_api_loses_no_change(settings: Settings, unique_name: str):
    with quiet_connector(settings, unique_name) as (scratch, connect):
        stopped_while_writing(scratch, connect,
                              lambda: rest.resume_without_skips(connect, scratch.cdc_connector_name))
        assert payment_method_ids(scratch, until=ROWS + 1) == set(range(ROWS + 1))


def test_a_connector_resumed_from_its_stored_offset_corrected_in_the_topic_loses_no_change(
        settings: Settings, unique_name: str):
    # what Kafka Connect reads when it starts (stack.services.KafkaConnect.prepare), here read
    # when the stopped connector's task starts again
    with quiet_connector(settings, unique_name) as (scratch, connect):
        name = scratch.cdc_connector_name

        def resume() -> None:
            assert name in clear_stored_skips(scratch)
            connect.put(f"/connectors/{name}/resume").raise_for_status()

        stopped_while_writing(scratch, connect, resume)
        assert payment_method_ids(scratch, until=ROWS + 1) == set(range(ROWS + 1))


def test_a_connector_registered_again_after_a_delete_loses_no_change(settings: Settings, unique_name: str):
    # a delete keeps the connector's offsets: registered again (the watcher does), it resumes from them
    with quiet_connector(settings, unique_name) as (scratch, connect):
        name = scratch.cdc_connector_name
        rest.delete(connect, name)
        assert wait_for(lambda: rest.status(connect, name) is None, 30)
        insert_payment_methods(scratch, list(range(1, ROWS + 1)))
        assert rest.put_config(connect, name, connector_config(scratch, **{"database.server.id": server_id(name)}))
        rest.wait_running(connect, name)
        assert payment_method_ids(scratch, until=ROWS + 1) == set(range(ROWS + 1))
