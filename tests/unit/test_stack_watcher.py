"""A connector watcher holding credentials it would no longer be given is started again
(stack.watcher, through stack.holders' view of a running process)."""

from __future__ import annotations

import time

import psutil

from stack import holders, process
from stack.services import StackLayout


def environment_shown(pid: int, timeout_s: float = 10.0) -> None:
    """Wait until the kernel shows the started process's environment: the parent may run on
    after exec before the new image's environment is laid out (/proc/<pid>/environ empty), which
    a CPU busy with other work makes likely."""
    deadline = time.monotonic() + timeout_s
    while not psutil.Process(pid).environ() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_running_process_holding_a_secret_it_would_not_be_given_now_is_stale(tmp_path):
    layout = StackLayout(tmp_path)
    wanted = {"PATH": "/usr/bin:/bin", "KAFKA_CONNECT_REST_PASSWORD": "rest-pw", "PYTHONUNBUFFERED": "1"}
    runs = {"older": {**wanted, "KAFKA_TOOLS_PASSWORD": "tools-pw"}, "current": wanted,
            "rotated": {**wanted, "KAFKA_CONNECT_REST_PASSWORD": "before-rotation"}}
    for name, env in runs.items():
        environment_shown(process.start(["sleep", "30"], pidfile=layout.pidfile(name), logfile=layout.logfile(name),
                                        env=env))
    try:
        stale = {name: holders.of(layout, layout.pidfile(name)).stale_secrets(wanted) for name in runs}
        assert stale == {"older": {"KAFKA_TOOLS_PASSWORD"}, "current": set(), "rotated": {"KAFKA_CONNECT_REST_PASSWORD"}}
        assert holders.of(layout, layout.pidfile("never-started")) is None
    finally:
        for name in runs:
            process.stop(layout.pidfile(name), grace_s=1)
