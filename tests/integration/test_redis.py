"""The stack's Redis: the workers' guard user against the real server (db 2), and what that
user and a client without credentials are refused."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import Settings
from config.settings import REPO_ROOT
from streams.runtime.order_pipe_app import EXIT_MISCONFIGURED


def guard(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url)


def operator(settings: Settings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_operator_url)


def test_set_nx_grants_a_key_once_on_db_2(settings: Settings, unique_name: str):
    client = guard(settings)
    key = f"order_trigger_lock:{unique_name}"

    first = client.set(key, "worker-a", nx=True, ex=60)
    second = client.set(key, "worker-b", nx=True, ex=60)

    assert first is True
    assert second is None
    assert client.get(key) == b"worker-a"
    assert operator(settings).client_info()["db"] == 2 and operator(settings).get(key) == b"worker-a"
    operator(settings).delete(key)


def test_set_nx_can_be_taken_again_after_the_ttl_expires(settings: Settings, unique_name: str):
    client = guard(settings)
    key = f"order_trigger_lock:{unique_name}"

    assert client.set(key, "worker-a", nx=True, px=200) is True
    time.sleep(0.4)

    assert client.set(key, "worker-b", nx=True, px=200) is True
    assert client.get(key) == b"worker-b"

ONCE = Retry(NoBackoff(), 0)  # a refusal is an AuthenticationError, which redis-py retries by default


def test_a_client_without_credentials_or_with_a_wrong_password_is_refused(settings: Settings):
    host, port = settings.redis_host_port
    user = urlsplit(settings.redis_url).username

    with pytest.raises(redis.AuthenticationError, match="(?i)auth"):
        redis.Redis(host=host, port=port, db=2, retry=ONCE).get("order_trigger_lock:anything")
    with pytest.raises(redis.AuthenticationError, match="(?i)invalid username-password"):
        redis.Redis(host=host, port=port, db=2, username=user, password="not-the-password", retry=ONCE).ping()


def test_the_guard_user_cannot_flush_the_claims_nor_touch_keys_outside_its_own(settings: Settings,
                                                                                  unique_name: str):
    client = guard(settings)

    with pytest.raises(redis.exceptions.NoPermissionError, match="flushdb"):
        client.flushdb()
    with pytest.raises(redis.exceptions.NoPermissionError, match="(?i)no permissions to access one of the keys"):
        client.set(f"somebody_else:{unique_name}", "x")
    with pytest.raises(redis.exceptions.NoPermissionError, match="(?i)no permissions to run the 'del' command"):
        client.delete(f"order_trigger_lock:{unique_name}")
    assert client.set(f"dead_letter_claim:{unique_name}", "1", nx=True, ex=5) is True


def test_a_worker_whose_redis_credentials_are_refused_stops_with_one_line_naming_the_setting(
        settings: Settings, unique_name: str, tmp_path):
    host, port = settings.redis_host_port
    wrong = f"redis://{urlsplit(settings.redis_url).username}:not-the-password@{host}:{port}/2"
    env = {**os.environ, **settings.as_env(), "REDIS_URL": wrong, "STREAM_APP_ID": f"refused-{unique_name}"}
    faust = Path(sys.executable).with_name("faust")

    worker = subprocess.run([str(faust), "-A", "streams.app", f"--datadir={tmp_path}", "worker", "-l", "info",
                             "--web-port", "16191", "--web-host", "127.0.0.1"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=240)

    output = worker.stdout + worker.stderr
    refused = [line for line in output.splitlines() if "worker not started" in line]
    assert worker.returncode == EXIT_MISCONFIGURED, output[-3000:]
    assert len(refused) == 1 and "REDIS_URL" in refused[0] and "not-the-password" not in output
    assert "Traceback" not in output
