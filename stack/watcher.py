"""Connector watchers as stack processes, so a connector task that fails (for example
MariaDB error 4052 when a restarted Kafka Connect reconnects while its old binlog session
is still open) is restarted without anyone at the keyboard:
- the healer (`python -m cdc heal`): every connector's failed tasks; `python -m stack up`
  starts it, so any stack that is up heals its connectors;
- a connector's watcher (`python -m cdc watch`): also registers the connector again if it
  disappears; `make demo` starts one for its connector.
`python -m stack down` stops them with the workers."""

from __future__ import annotations

import sys

from config import Settings
from stack import holders, process
from stack.services import StackLayout

PREFIX = "cdc-watch-"
HEALER = f"{PREFIX}every-connector"


def name(settings: Settings) -> str:
    return f"{PREFIX}{settings.cdc_connector_name}"


def start_watcher(settings: Settings, interval_s: float = 5) -> int:
    """Start the watcher of the settings' connector unless it runs already; its pid."""
    return _start(settings, name(settings), "watch", interval_s)


def start_healer(settings: Settings, interval_s: float = 5) -> int:
    """Start the healer of every connector unless it runs already; its pid."""
    return _start(settings, HEALER, "heal", interval_s)


def _start(settings: Settings, process_name: str, command: str, interval_s: float) -> int:
    """Start it unless it runs already with the credentials it would be started with now (one
    started by an older version, or before a rotation, holding others, is started again)."""
    layout = StackLayout(settings.stack_home)
    env = {**settings.as_env("connector-watcher"), "PYTHONUNBUFFERED": "1"}  # its log, line by line
    pidfile = layout.pidfile(process_name)
    if (running := holders.of(layout, pidfile)) is not None:
        if not running.stale_secrets(env):
            return process.running_pid(pidfile)
        process.stop(pidfile, grace_s=10)
    return process.start([sys.executable, "-m", "cdc", command, "--interval", str(interval_s)],
                         pidfile=layout.pidfile(process_name), logfile=layout.logfile(process_name), env=env)


def stop_watcher(settings: Settings) -> int | None:
    return process.stop(StackLayout(settings.stack_home).pidfile(name(settings)), grace_s=10)
