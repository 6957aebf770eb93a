"""The continuous lake (`python -m batch --continuous`: the fast lane, and Spark's deferred work
as its child) as a stack process: `make demo` starts it beside the workers and waits until it
has caught up with the CDC topics; `python -m stack down` stops it (SIGTERM: it finishes the
micro-batch under way) with them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tqdm import tqdm

from batch.fastlane.lease import fresh, read_state
from batch.fastlane.run import RUNNING
from config import Settings
from stack import process
from stack.services import StackLayout

PREFIX = "lake-"


def name(settings: Settings) -> str:
    """One continuous lake per lake location (its lease allows one writer)."""
    return f"{PREFIX}{settings.lake_uri.split('://', 1)[-1].strip('/').replace('/', '-') or 'default'}"


def start_continuous_lake(settings: Settings, every_s: float = 1, tree: Path | None = None) -> int:
    """Start the continuous lake of the settings' lake unless it runs already (`tree`: another
    checkout's, for a benchmark); its pid."""
    layout = StackLayout(settings.stack_home)
    running = process.running_pid(layout.pidfile(name(settings)))
    if running is not None:
        return running
    return process.start([sys.executable, "-m", "batch", "--continuous", "--every", f"{every_s}s"],
                         pidfile=layout.pidfile(name(settings)), logfile=layout.logfile(name(settings)),
                         env={**settings.as_env("lake"), "PYTHONUNBUFFERED": "1"}, cwd=tree)


def wait_running(settings: Settings, timeout_s: float = 300) -> None:
    """Until the continuous lake reads the CDC topics."""
    log, deadline = StackLayout(settings.stack_home).logfile(name(settings)), time.monotonic() + timeout_s
    while RUNNING not in (log.read_text() if log.exists() else ""):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the continuous lake did not start in {timeout_s:.0f} s: see {log}")
        time.sleep(1)


def log_path(settings: Settings) -> Path:
    """Where the continuous lake of the settings' lake logs."""
    return StackLayout(settings.stack_home).logfile(name(settings))


def stop_continuous_lake(settings: Settings) -> int | None:
    return process.stop(StackLayout(settings.stack_home).pidfile(name(settings)), grace_s=120)


def progress(settings: Settings, since: float = 0.0) -> tuple[int, int] | None:
    """(records applied, records the CDC topics hold beyond them) as the continuous lake's
    progress says (`python -m batch --continuous` renews it after each micro-batch and every
    few seconds between: archive, Silver and Gold's facts applied); None before it says so
    after `since` (epoch seconds), or while it is not running."""
    state = read_state(settings)
    if not fresh(state) or state.get("left") is None or state["heartbeat"] < since:
        return None
    return sum(offset for offsets in state["applied"].values() for offset in offsets.values()), state["left"]


def records_behind(settings: Settings, since: float = 0.0) -> int | None:
    """The records the CDC topics hold beyond what the continuous lake has applied; None as
    `progress` is."""
    said = progress(settings, since)
    return None if said is None else said[1]


def caught_up(settings: Settings) -> bool:
    """Whether the continuous lake has applied every record the CDC topics hold now."""
    return records_behind(settings, since=time.time()) == 0


def wait_caught_up(settings: Settings, timeout_s: float, *, who: str = "the lake",
                   label: str | None = None) -> float:
    """Until the continuous lake says it has applied every record the CDC topics hold (said
    after this wait began); seconds waited. With `label`, a bar of the records
    applied out of those the topics held, with its rate and time left. Raises TimeoutError
    naming where to look."""
    started, since = time.monotonic(), time.time()
    with tqdm(desc=label, unit="records", disable=label is None, dynamic_ncols=True) as bar:
        while (said := progress(settings, since)) is None or said[1] != 0:
            if said is not None:
                applied, behind = said
                bar.total = applied + behind
                bar.update(applied - bar.n)
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"{who} has not caught up with the CDC topics in {timeout_s:.0f} s: "
                                   f"see {settings.stack_home}/logs")
            time.sleep(1)
        if bar.total:
            bar.update(bar.total - bar.n)
    return time.monotonic() - started
