"""Every role's password rotated (`python -m stack rotate-secrets`) while orders flow through a
scratch stream and the continuous lake: order_final exact, the lake's audit clean, and every
old password refused afterwards.

Marked `rotation`: it changes the stack's passwords, which every other test of the session
holds, so it runs only when asked for (`-m rotation`), and last (tests/integration/conftest.py).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from urllib.parse import unquote, urlsplit

import mysql.connector
import pytest
import redis
from dotenv import dotenv_values
from minio.error import S3Error

from batch.tools.audit import LakeAudit
from cdc import rest
from config import Settings
from config.settings import KAFKA_CLIENT_ROLES, REPO_ROOT
from source import database, generate
from source.traffic import InsertOrder, Truth, Write, plan
from stack import lake_process, process, rotation, secrets
from stack.lake_process import start_continuous_lake, stop_continuous_lake, wait_caught_up, wait_running
from stack.scratch import cdc_caught_up, scratch_lake
from stack.services import StackLayout, kafka_answers, minio_client
from tests.integration.faults.injection import FaultRow, Scale, collect, record
from tests.integration.scratch_stream import CHAOS, CUSTOMERS, fresh_seed, scratch_stream
from tests.integration.secrets_seen import in_environment

pytestmark = pytest.mark.rotation
RATE = 100  # orders/s, until the rotation is over
AFTER_S = 5  # orders still written after it


def until(stop: threading.Event, writes: Iterable[Write]) -> Iterator[Write]:
    """`writes` up to the first new order after `stop` is set."""
    for write in writes:
        if stop.is_set() and isinstance(write, InsertOrder):
            return
        yield write


def write_until(settings: Settings, stop: threading.Event, manifest: dict, failure: list[BaseException]) -> None:
    """Orders at RATE on one connection (opened before the rotation: it stays logged in) until `stop`."""
    truth, most = Truth(), RATE * 600
    try:
        writes = until(stop, plan(most, seed=fresh_seed(), customers=CUSTOMERS, chaos=CHAOS))
        generate.run(database.connect(settings), writes, total_orders=most, rate=RATE, truth=truth, progress=False)
    except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
        failure.append(error)
    finally:
        manifest.update(truth.manifest())


def redis_login(url: str) -> socket.socket:
    """A connection logged in with the URL's user and password (AUTH, as any client does), kept open."""
    parts = urlsplit(url)
    words = [b"AUTH", unquote(parts.username or "default").encode(), unquote(parts.password or "").encode()]
    connection = socket.create_connection((parts.hostname, parts.port or 6379), timeout=10)
    connection.sendall(f"*{len(words)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words))
    assert connection.recv(64) == b"+OK\r\n"
    return connection


def renewed(settings: Settings, old: dict[str, str], new: dict[str, str]) -> Settings:
    """`settings` with the new value of each secret it took from the stack (a scratch lake's own keys kept)."""
    env = settings.as_env()
    return settings.with_variables({variable: new[variable] for variable in new if env.get(variable) == old[variable]})


def denial(attempt) -> str | None:
    """The service's own word refusing `attempt`, or None when it went through. Anything else (a
    service that is down, say) raises: it is no refusal."""
    try:
        attempt()
    except redis.AuthenticationError:  # WRONGPASS
        return "WRONGPASS"
    except mysql.connector.Error as error:
        if error.errno is None:
            raise
        return str(error.errno)
    except S3Error as error:
        return error.code
    return None


def answers(settings: Settings) -> dict[str, object]:
    """What each service says to `settings`' logins: a denial, None (let in), or for Kafka
    whether it served metadata to each role."""
    with rest.client(settings) as connect:
        connect_status = connect.get("/connectors").status_code
    return {
        "redis": denial(lambda: redis.Redis.from_url(settings.redis_url).ping()),
        "redis admin": denial(lambda: redis.Redis.from_url(settings.redis_operator_url).ping()),
        **{f"mysql {role}": denial(lambda role=role: database.connect(settings, role=role).close())
           for role in MYSQL_ROLES},
        "kafka": {role: kafka_answers(settings.kafka_bootstrap, **settings.kafka_aiokafka_auth(role))
                  for role in (*KAFKA_CLIENT_ROLES, "tools")},
        **{f"minio {role}": denial(lambda role=role: minio_client(settings, role).bucket_exists("bronze"))
           for role in ("writer", "reader")},
        "connect": connect_status,
    }


def assert_old_refused_and_new_let_in(old: Settings, new: Settings) -> None:
    refused, let_in = answers(old), answers(new)
    every_kafka_role = (*KAFKA_CLIENT_ROLES, "tools")
    assert let_in == {"redis": None, "redis admin": None, **{f"mysql {role}": None for role in MYSQL_ROLES},
                      "kafka": dict.fromkeys(every_kafka_role, True), "minio writer": None, "minio reader": None,
                      "connect": 200}
    assert refused == {"redis": "WRONGPASS", "redis admin": "WRONGPASS",
                       **{f"mysql {role}": "1045" for role in MYSQL_ROLES},  # access denied
                       "kafka": dict.fromkeys(every_kafka_role, False),  # SASL authentication failed
                       "minio writer": "SignatureDoesNotMatch", "minio reader": "SignatureDoesNotMatch",
                       "connect": 401}


MYSQL_ROLES = ("owner", "shop", "cdc", "reader")


def test_every_role_rotated_under_load_loses_and_doubles_no_order_and_the_lake_stays_exact(
        settings, unique_name, spark, fault_table: list[FaultRow]):
    old = {name: value for name, value in dotenv_values(secrets.path(settings.stack_home)).items()
           if name in rotation.variables(rotation.ROLES)}
    passwords = {role.variable for role in rotation.ROLES}
    with scratch_lake(settings, unique_name) as lake_settings, \
            scratch_stream(lake_settings, unique_name, workers=2, web_port=16150) as (scratch, workers):
        start_continuous_lake(scratch)
        try:
            wait_running(scratch)
            stop, manifest, failure = threading.Event(), {}, []
            writer = threading.Thread(target=write_until, args=(scratch, stop, manifest, failure), name="order-writer")
            writer.start()
            time.sleep(3)
            logged_in_before = redis_login(scratch.redis_url)  # Redis checks a password at login only
            started = time.monotonic()
            rotated = subprocess.run([sys.executable, "-m", "stack", "rotate-secrets"], cwd=REPO_ROOT,
                                     capture_output=True, text=True, timeout=600)
            rotation_s = time.monotonic() - started
            time.sleep(AFTER_S)
            stop.set()
            writer.join()
            print(rotated.stderr)
            assert rotated.returncode == 0, rotated.stderr[-3000:]
            assert not failure, f"the order writer failed: {failure[0]!r}"
            new = {name: value for name, value in dotenv_values(secrets.path(settings.stack_home)).items() if name in old}
            now = renewed(scratch, old, new)
            open_sessions = {client["addr"] for client in redis.Redis.from_url(now.redis_operator_url).client_list()}

            outcome = collect(now, manifest, timeout_s=300)
            cdc_caught_up(now, database.connect(now))
            wait_caught_up(now, timeout_s=300)
            audits = LakeAudit(spark, now).run()
            lake_pid = process.running_pid(StackLayout(settings.stack_home).pidfile(lake_process.name(scratch)))
            held = {name: in_environment(pid, {variable: new[variable] for variable in passwords}) for name, pid in
                    [*((worker.name, worker.pid()) for worker in workers), ("lake", lake_pid)]}
        finally:
            stop_continuous_lake(scratch)

    record(fault_table, "every role's password rotated under load", Scale(manifest["counts"]["complete"], RATE, 0, 2),
           1, outcome)
    print(f"rotation took {rotation_s:.1f} s; {manifest['counts']['complete']:,} complete orders written")
    assert {name for name in old if new[name] == old[name]} == set()
    # closed by the rotation, not merely refused at its next login
    assert "%s:%d" % logged_in_before.getsockname() not in open_sessions and logged_in_before.recv(64) == b""
    assert outcome.exact, outcome.summary()
    assert [audit.line() for audit in audits if not audit.clean] == []
    assert held == {**{worker.name: {"KAFKA_PASSWORD", "REDIS_URL"} for worker in workers},
                    "lake": {"KAFKA_LAKE_PASSWORD", "MYSQL_READER_PASSWORD"}}  # its MinIO key is the scratch lake's
    assert_old_refused_and_new_let_in(settings, Settings())
