"""Redis, Kafka Connect and the Kafka broker go away while orders flow.

Redis is the test's own (with a password, as production would run it); Kafka Connect and
the broker are the local stack's, restarted in place.
"""

from __future__ import annotations

import os
import secrets
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from cdc import rest
from cdc.connector import connector_config
from cdc.topics import read_topics
from source import database
from stack import process
from stack.services import StackLayout
from stack.watcher import HEALER
from tests.integration.faults.injection import (free_port, once_a_third_in, record, replayed_cdc_records, restart,
                                                run_under_fault, scratch_redis, service)
from tests.integration.scratch_stream import scratch_stream
from tests.integration.waiting import wait_for

OUTAGE_S = 10


@pytest.fixture
def guarded_stream(settings, unique_name, tmp_path: Path):
    """Two workers whose guard is a Redis of this test's own, behind a password."""
    with scratch_redis(settings, tmp_path, free_port(), password=secrets.token_hex(16)) as redis_server:
        with scratch_stream(settings, unique_name, workers=2, web_port=16090,
                            redis_url=redis_server.settings.redis_url) as (scratch, workers):
            yield scratch, workers, redis_server


def worker_logs(workers) -> str:
    return "".join(StackLayout(w.settings.stack_home).logfile(w.name).read_text(errors="replace") for w in workers)


def test_redis_restarted_mid_run_loses_and_duplicates_nothing(guarded_stream, scale, fault_table):
    scratch, workers, redis_server = guarded_stream

    outcome, restarts = run_under_fault(scratch, workers, scale, once_a_third_in(scale, lambda: restart(redis_server)))

    record(fault_table, "Redis restarted", scale, restarts, outcome)
    assert restarts == 1
    assert outcome.found_dead == 0, "a worker died with Redis and had to be restarted"
    assert outcome.exact, outcome.summary()


def test_redis_unreachable_for_ten_seconds_delays_orders_but_loses_and_duplicates_nothing(
        guarded_stream, scale, fault_table):
    scratch, workers, redis_server = guarded_stream
    pid = int(redis_server.layout.pidfile(redis_server.name).read_text().split()[0])

    def freeze() -> None:  # SIGSTOP: connections stay open and hang, like a network partition
        os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(OUTAGE_S)
        finally:
            os.kill(pid, signal.SIGCONT)

    outcome, outages = run_under_fault(scratch, workers, scale, once_a_third_in(scale, freeze))

    record(fault_table, f"Redis unreachable {OUTAGE_S} s", scale, outages, outcome)
    assert outages == 1
    assert outcome.found_dead == 0, "a worker died while Redis was unreachable"
    assert outcome.exact, outcome.summary()
    assert "will retry" in worker_logs(workers), "the outage left no warning in the workers' logs"
    assert outcome.longest_pause_s >= OUTAGE_S / 2, "orders kept flowing: was Redis really unreachable?"


def test_kafka_connect_crashing_mid_run_replays_events_without_duplicates(settings, unique_name, scale, fault_table):
    healer = process.running_pid(StackLayout(settings.stack_home).pidfile(HEALER))
    assert healer is not None, "the stack's connector healer is not running: `python -m stack up` starts it"
    with main_connector(settings) as (connect, main), scratch_stream(settings, unique_name, workers=2,
                                                                     web_port=16100) as (scratch, workers):
        marker = PaymentMethodMarker(settings)

        def crash() -> None:
            restart(service(settings, "kafka-connect"), kill=True, while_down=marker.insert)
        outcome, restarts = run_under_fault(scratch, workers, scale, once_a_third_in(scale, crash))
        replayed = replayed_cdc_records(scratch)
        main_running = wait_for(lambda: rest.is_running(rest.status(connect, main)), timeout_s=90)
        marker.delete()
        marker_changes = marker.changes_seen()

    record(fault_table, f"Kafka Connect SIGKILL + restart ({replayed} CDC records replayed)", scale, restarts,
           outcome)
    assert restarts == 1
    assert replayed > 0, "Kafka Connect replayed no record after its SIGKILL: the run tested no replay"
    assert outcome.exact, outcome.summary()
    assert main_running, f"{main}: {rest.status(rest.client(settings), main)}"
    # written while Connect was down, and after it was back: both reach the main connector's
    # topic. The insert comes as "c", or as "r" when a snapshot of a connector registered
    # just before the kill ran again after the restart (it reads the row then); Connect is
    # at least once, so a record may come twice, never not at all.
    assert marker_changes and marker_changes[0] in ("c", "r") and marker_changes[-1] == "d", marker_changes
    assert set(marker_changes) <= {"c", "r", "d"}, marker_changes


@contextmanager
def main_connector(settings):
    """The stack's own connector (CDC_CONNECTOR_NAME on MYSQL_DATABASE), as `make demo` leaves
    it running; registered here, and deleted after with its offsets, if it is not (a later
    `make demo` registering it again must not resume from here, with every test's binlog
    to read first)."""
    connect = rest.client(settings)
    name = settings.cdc_connector_name
    registered_here = rest.status(connect, name) is None
    if registered_here:
        database.apply_schema(database.connect(settings))
        rest.put_config(connect, name, connector_config(settings))
    rest.wait_running(connect, name)
    try:
        yield connect, name
    finally:
        if registered_here:
            rest.delete_with_offsets(connect, name)


class PaymentMethodMarker:
    """A payment method row of the main database that exists only during the test."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.id = 2_000_000_000 + secrets.randbelow(100_000_000)

    def insert(self) -> None:
        self._execute("INSERT INTO payment_method (id, name, provider) VALUES (%s, 'fault-test marker', 'none')")

    def delete(self) -> None:
        self._execute("DELETE FROM payment_method WHERE id = %s")

    def _execute(self, statement: str) -> None:
        connection = database.connect(self.settings)
        try:
            connection.cursor().execute(statement, (self.id,))
        finally:
            connection.close()

    def changes_seen(self) -> list[str]:
        """The ops of this row's change records in the main payment_method topic, up to its delete."""
        def ops(messages) -> list[str]:
            return [m.value["op"] for m in messages
                    if m.value is not None and (m.value["after"] or m.value["before"])["id"] == self.id]
        try:
            return ops(read_topics(self.settings, [self.settings.cdc_topic("payment_method")],
                                   until=lambda read: "d" in ops(read), timeout_s=120))
        except TimeoutError as error:
            return [str(error)]


def test_the_kafka_broker_restarted_mid_run_and_workers_recover_on_their_own(settings, unique_name, scale, fault_table):
    with scratch_stream(settings, unique_name, workers=2, web_port=16110) as (scratch, workers):
        broker = service(settings, "kafka")
        outcome, restarts = run_under_fault(scratch, workers, scale, once_a_third_in(scale, lambda: restart(broker)))

    record(fault_table, "Kafka broker restarted", scale, restarts, outcome)
    assert restarts == 1
    assert outcome.found_dead == 0, "a worker died with the broker and had to be restarted"
    assert outcome.exact, outcome.summary()
