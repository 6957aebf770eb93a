"""stack.watcher: a connector watcher holding credentials it would no longer be given is started again."""

from __future__ import annotations

import subprocess

from stack.watcher import stale_secrets


def test_a_running_process_holding_a_secret_it_would_not_be_given_now_is_stale():
    wanted = {"PATH": "/usr/bin:/bin", "KAFKA_CONNECT_REST_PASSWORD": "rest-pw", "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(["sleep", "30"], env={**wanted, "KAFKA_TOOLS_PASSWORD": "tools-pw"}) as older, \
            subprocess.Popen(["sleep", "30"], env=wanted) as current, \
            subprocess.Popen(["sleep", "30"], env={**wanted, "KAFKA_CONNECT_REST_PASSWORD": "before-rotation"}) as rotated:
        try:
            assert stale_secrets(older.pid, wanted) == {"KAFKA_TOOLS_PASSWORD"}
            assert stale_secrets(current.pid, wanted) == set()
            assert stale_secrets(rotated.pid, wanted) == {"KAFKA_CONNECT_REST_PASSWORD"}
        finally:
            for child in (older, current, rotated):
                child.kill()
