"""No secret of the stack in any process's arguments, and each process the stack starts holds
only its own credentials: the stack's services, its connector watcher, a worker and the
tests' Spark driver here (the continuous lake's own are checked in test_continuous_lake)."""

from __future__ import annotations

import base64
import secrets as secrets_module
import subprocess
import uuid
from urllib.parse import quote
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
    decoy = secrets_module.token_urlsafe(24)  # the scan's positive control: it must find this one
    secrets = {**stack_secrets(settings), "DECOY": decoy}
    with subprocess.Popen(["sh", "-c", 'sleep 60; : "$0"', base64.b64encode(decoy.encode()).decode()]) as planted:
        try:
            scanned = list(psutil.process_iter())
            shown = {process.pid: found for process in scanned if (found := in_arguments(process, secrets))}
            spark_jvms = [process for process in scanned if "pyspark-shell" in " ".join(in_cmdline(process))]
        finally:
            planted.kill()

    assert len(secrets) >= 11 and spark_jvms and worker.pid()  # credentials, the tests' Spark JVM, a worker
    assert shown == {planted.pid: {"DECOY"}}, shown


def in_cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return []


def test_each_process_the_stack_starts_holds_only_its_own_credentials(settings: Settings, worker: Worker):
    decoy = secrets_module.token_urlsafe(24) + "/+="  # the scan's positive control: it must find this one
    secrets = {**stack_secrets(settings), "DECOY": decoy}
    services = {status.name: status.pid for status in control.status(all_services(settings)) if status.pid}
    healer = processes.running_pid(StackLayout(settings.stack_home).pidfile(watcher.HEALER))
    planted_env = {"PATH": "/usr/bin:/bin", "UNRELATED_NAME": f"https://user:{quote(decoy, safe='')}@example.invalid"}
    with subprocess.Popen(["sleep", "60"], env=planted_env) as planted:
        try:
            assert foreign(planted.pid, None, secrets) == {"DECOY"}, "the scan finds a percent-encoded secret"
        finally:
            planted.kill()
    held = {"worker": foreign(worker.pid(), "worker", secrets),
            "connector watcher": foreign(healer, "connector-watcher", secrets),
            **{name: foreign(pid, None, secrets) - {SERVICE_CREDENTIALS.get(name)} for name, pid in services.items()}}

    assert {"kafka", "kafka-connect", "mariadb", "redis", "minio"} <= set(services) and healer
    assert {name: found for name, found in held.items() if found} == {}
