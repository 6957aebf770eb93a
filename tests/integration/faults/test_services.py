"""Redis, Kafka Connect and the Kafka broker go away while orders flow.

Redis is the test's own (with a password, as production would run it); Kafka Connect and
the broker are the local stack's, restarted in place.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

from stack.services import StackLayout
from tests.integration.faults.injection import (FaultRow, replayed_cdc_records, restart, run_under_fault,
                                                scratch_redis, service, sleep_while)
from tests.integration.scratch_stream import scratch_stream

OUTAGE_S = 10


@pytest.fixture
def guarded_stream(settings, unique_name, tmp_path: Path):
    """Two workers whose guard is a Redis of this test's own, behind a password."""
    with scratch_redis(settings, tmp_path, free_port(), password=secrets.token_hex(16)) as redis_server:
        with scratch_stream(settings, unique_name, workers=2, web_port=16090,
                            redis_url=redis_server.settings.redis_url) as (scratch, workers):
            yield scratch, workers, redis_server


def free_port() -> int:
    """A port no one listens on now (a fixed one could be held by a run killed before its cleanup)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def once_a_third_in(scale, action):
    """An injector: `action()` once, a third of the way through the writing."""
    def inject(writing: threading.Event) -> int:
        if not sleep_while(writing, scale.orders / scale.rate / 3):
            return 0
        action()
        return 1
    return inject


def record(fault_table, name: str, scale, injected: int, outcome) -> None:
    result = outcome.audit
    fault_table.append(FaultRow(name, injected, scale.orders, sum(result.duplicates.values()),
                                len(result.missing), outcome.longest_pause_s))


def worker_logs(workers) -> str:
    return "".join(StackLayout(w.settings.stack_home).logfile(w.name).read_text(errors="replace") for w in workers)


def test_redis_restarted_mid_run_loses_and_duplicates_nothing(guarded_stream, scale, fault_table):
    scratch, workers, redis_server = guarded_stream

    outcome, restarts = run_under_fault(scratch, workers, scale, once_a_third_in(scale, lambda: restart(redis_server)))

    record(fault_table, "Redis restarted", scale, restarts, outcome)
    assert restarts == 1
    assert outcome.found_dead == 0, "a worker died with Redis and had to be restarted"
    assert outcome.audit.exact, outcome.audit.summary()


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
    assert outcome.audit.exact, outcome.audit.summary()
    assert "will retry" in worker_logs(workers), "the outage left no warning in the workers' logs"
    assert outcome.longest_pause_s >= OUTAGE_S / 2, "orders kept flowing: was Redis really unreachable?"


def test_kafka_connect_crashing_mid_run_replays_events_without_duplicates(settings, unique_name, scale, fault_table):
    with scratch_stream(settings, unique_name, workers=2, web_port=16100) as (scratch, workers):
        connect = service(settings, "kafka-connect")
        outcome, restarts = run_under_fault(scratch, workers, scale,
                                            once_a_third_in(scale, lambda: restart(connect, kill=True)))
        replayed = replayed_cdc_records(scratch)

    record(fault_table, f"Kafka Connect SIGKILL + restart ({replayed} CDC records replayed)", scale, restarts,
           outcome)
    assert restarts == 1
    assert outcome.audit.exact, outcome.audit.summary()


def test_the_kafka_broker_restarted_mid_run_and_workers_recover_on_their_own(settings, unique_name, scale, fault_table):
    with scratch_stream(settings, unique_name, workers=2, web_port=16110) as (scratch, workers):
        broker = service(settings, "kafka")
        outcome, restarts = run_under_fault(scratch, workers, scale, once_a_third_in(scale, lambda: restart(broker)))

    record(fault_table, "Kafka broker restarted", scale, restarts, outcome)
    assert restarts == 1
    assert outcome.found_dead == 0, "a worker died with the broker and had to be restarted"
    assert outcome.audit.exact, outcome.audit.summary()
