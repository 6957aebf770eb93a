"""`python -m stack doctor` against the real stack, and with each service out of reach in turn
(its address pointed at a closed port: what a client sees of a stopped service)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from config import Settings
from config.settings import INSECURE_DEFAULTS
from config.settings import REPO_ROOT
from stack import doctor as health
from stack.scratch import scratch_lake
from stack.services import minio_client
from tests.integration.faults.injection import free_port, scratch_redis
from tests.integration.test_connector_watcher import mysql_user

CLOSED = "127.0.0.1:1"
UNREACHABLE = {  # service -> settings that point it at a closed port
    "mariadb": {"MYSQL_PORT": "1"},
    "redis": {"REDIS_URL": f"redis://{CLOSED}/2"},
    "minio": {"MINIO_ENDPOINT": CLOSED},
    "kafka": {"KAFKA_BOOTSTRAP": CLOSED},
    "kafka-connect": {"KAFKA_CONNECT_URL": f"http://{CLOSED}"},
}


def doctor(settings, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stack", "doctor", "--worker-url", f"http://{CLOSED}"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                          env={**os.environ, **settings.as_env(), "CDC_CONNECTOR_NAME": "doctor-no-such-connector", **env})


def row(output: str, check: str) -> str:
    """The table row whose first cell is `check`."""
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) > 2 and cells[1] == check:
            return line
    return ""


def test_the_doctor_reports_every_check_and_names_the_fix(settings):
    examined = doctor(settings)

    assert examined.returncode == 1  # no such connector, no worker
    for service in UNREACHABLE:
        assert "ok" in row(examined.stdout, f"service {service}"), examined.stdout
    assert "not registered" in row(examined.stdout, "connector") and "python -m cdc register" in examined.stdout
    assert "none answers" in row(examined.stdout, "workers")
    assert "AOF on" in row(examined.stdout, "redis")
    assert "credentials required" in row(examined.stdout, "redis access")
    assert "credentials required; owner " in row(examined.stdout, "mysql access")
    assert "credentials required; lake writer " in row(examined.stdout, "minio access")
    assert "no answer without credentials; stream " in row(examined.stdout, "kafka access")
    assert "rules for orderpipe-connect" in row(examined.stdout, "kafka acls")
    assert "in the last hour" in row(examined.stdout, "dead letters")
    assert "problem(s): connector" in examined.stderr and "Traceback" not in examined.stderr


@pytest.mark.parametrize("service", UNREACHABLE)
def test_a_service_out_of_reach_is_named_and_the_rest_still_reported(settings, service):
    examined = doctor(settings, **UNREACHABLE[service])

    assert examined.returncode == 1
    assert "PROBLEM" in row(examined.stdout, f"service {service}") and "does not answer" in examined.stdout
    assert f"not checked: {service} does not answer" in examined.stdout  # its checks skipped, not waited on
    others = [name for name in UNREACHABLE if name != service]
    assert all("ok" in row(examined.stdout, f"service {name}") for name in others), examined.stdout
    assert "Traceback" not in examined.stderr


def test_a_redis_without_credentials_is_named_with_the_fix(settings, tmp_path):
    with scratch_redis(settings, tmp_path, free_port(), password="") as open_redis:
        access = next(health.redis_state(open_redis.settings))

    assert not access.ok and "answers without credentials" in access.detail
    assert "python -m stack down" in access.fix


def test_a_bucket_anyone_may_list_is_named_with_the_fix(settings):
    with scratch_lake(settings, f"doctor-open-{uuid.uuid4().hex[:8]}") as lake:
        bucket = lake.lake_path("gold").removeprefix("s3a://").split("/")[0]
        listing = {"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": ["s3:ListBucket"],
                   "Resource": [f"arn:aws:s3:::{bucket}"]}
        minio_client(settings, "root").set_bucket_policy(
            bucket, json.dumps({"Version": "2012-10-17", "Statement": [listing]}))
        access = next(health.minio_access(lake))

    assert not access.ok and f"lists bucket {bucket} to anyone" in access.detail
    assert f"mc anonymous set none <alias>/{bucket}" in access.fix


def test_mysql_letting_in_the_settings_default_login_is_named_with_the_fix(settings):
    default = Settings.model_fields["mysql_user"].default, INSECURE_DEFAULTS["MYSQL_PASSWORD"]
    with mysql_user(settings, *default):
        access = next(health.mysql_access(settings))

    assert not access.ok and f"lets in {default[0]} (its default password)" in access.detail
    assert "python -m stack down" in access.fix
