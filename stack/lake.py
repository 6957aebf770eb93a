"""The continuous lake (`python -m batch --continuous`) as a stack process: `make demo`
starts it beside the workers; `python -m stack down` stops it (SIGTERM: it finishes the
micro-batch under way) with them."""

from __future__ import annotations

import sys

from config import Settings
from stack import process
from stack.services import StackLayout

PREFIX = "lake-"


def name(settings: Settings) -> str:
    """One continuous lake per lake location (its checkpoint allows one writer)."""
    return f"{PREFIX}{settings.lake_uri.split('://', 1)[-1].strip('/').replace('/', '-') or 'default'}"


def start_continuous_lake(settings: Settings, every_s: float = 10) -> int:
    """Start the continuous lake of the settings' lake unless it runs already; its pid."""
    layout = StackLayout(settings.stack_home)
    running = process.running_pid(layout.pidfile(name(settings)))
    if running is not None:
        return running
    return process.start([sys.executable, "-m", "batch", "--continuous", "--every", f"{every_s}s"],
                         pidfile=layout.pidfile(name(settings)), logfile=layout.logfile(name(settings)),
                         env={**settings.as_env(), "PYTHONUNBUFFERED": "1"})


def stop_continuous_lake(settings: Settings) -> int | None:
    return process.stop(StackLayout(settings.stack_home).pidfile(name(settings)), grace_s=120)
