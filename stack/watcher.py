"""The connector watcher as a stack process: `python -m cdc watch` beside the stack, so a
connector task that fails (for example MariaDB error 4052 when a restarted Kafka Connect
reconnects while its old binlog session is still open) is restarted without anyone at
the keyboard. `make demo` starts it; `python -m stack down` stops it with the workers."""

from __future__ import annotations

import sys

from config import Settings
from stack import process
from stack.services import StackLayout

PREFIX = "cdc-watch-"


def name(settings: Settings) -> str:
    return f"{PREFIX}{settings.cdc_connector_name}"


def start_watcher(settings: Settings, interval_s: float = 5) -> int:
    """Start the watcher of the settings' connector unless it runs already; its pid."""
    layout = StackLayout(settings.stack_home)
    running = process.running_pid(layout.pidfile(name(settings)))
    if running is not None:
        return running
    return process.start([sys.executable, "-m", "cdc", "watch", "--interval", str(interval_s)],
                         pidfile=layout.pidfile(name(settings)), logfile=layout.logfile(name(settings)),
                         env={**settings.as_env(), "PYTHONUNBUFFERED": "1"})  # its log, line by line


def stop_watcher(settings: Settings) -> int | None:
    return process.stop(StackLayout(settings.stack_home).pidfile(name(settings)), grace_s=10)
