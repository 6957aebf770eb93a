"""No secret of the stack in any process's arguments, and each process the stack starts holds
only its own credentials: the stack's services, its connector watcher, a worker and the
tests' Spark driver here (the continuous lake's own are checked in test_continuous_lake)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psutil
import pytest

from config import Settings
from stack import control, watcher
from stack.services import StackLayout, all_services
from stack.workers import Worker
from stack import process as processes
from tests.integration.scratch_stream import scratch_stream
from tests.integration.secrets_seen import foreign, in_arguments, stack_secrets

# What each service of the stack may hold in its environment (the others read theirs from files).
SERVICE_CREDENTIALS = {"minio": "MINIO_ROOT_PASSWORD"}


@pytest.fixture(scope="module")
def worker(settings: Settings) -> Iterator[Worker]:
    with scratch_stream(settings, f"t{uuid.uuid4().hex[:12]}", workers=1, web_port=16090) as (_, [running]):
        yield running


def test_no_process_on_the_machine_shows_a_secret_in_its_arguments(settings: Settings, spark, worker: Worker):
    secrets = stack_secrets(settings)
    shown = {(process.pid, " ".join(process.cmdline())[:160]): found for process in psutil.process_iter()
             if (found := in_arguments(process, secrets))}

    assert len(secrets) >= 10 and spark.sparkContext.master and worker.pid()  # credentials, a Spark JVM, a worker
    assert shown == {}, shown


def test_each_process_the_stack_starts_holds_only_its_own_credentials(settings: Settings, worker: Worker):
    secrets = stack_secrets(settings)
    services = {status.name: status.pid for status in control.status(all_services(settings)) if status.pid}
    healer = processes.running_pid(StackLayout(settings.stack_home).pidfile(watcher.HEALER))
    held = {"worker": foreign(worker.pid(), "worker", secrets),
            "connector watcher": foreign(healer, "connector-watcher", secrets),
            **{name: foreign(pid, None, secrets) - {SERVICE_CREDENTIALS.get(name)} for name, pid in services.items()}}

    assert {"kafka", "kafka-connect", "mariadb", "redis", "minio"} <= set(services) and healer
    assert {name: found for name, found in held.items() if found} == {}
