"""A fresh output topic derived from the CDC topics from their beginning: `python -m streams rebuild`.

The rebuild is one Faust worker of an application of its own (`<STREAM_APP_ID>-rebuild-<topic>`:
its own consumer group, table, changelog and tick topic) writing to the given topic, with
the Redis guard scoped to that topic (agents.emission.guard). It runs beside the live stream without
blocking or suppressing any of its orders, and stops once it has caught up: no lag, no
order waiting to settle, no event held for a changelog write, and nothing emitted for a
quiet spell. Run again with the same topic, it resumes from its committed offsets and its
guard keys send nothing twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from config import Settings
from config.settings import names_a_secret


@dataclass
class Progress:
    """What the rebuild worker's /stats said, and since when its emissions have not moved."""

    events_in: int = 0
    completed: int = 0
    lag_total: int | None = None
    settling: int = 0
    held_events: int = 0
    quiet_since: float = 0.0


def read_progress(stats: dict, before: Progress, now: float) -> Progress:
    counts, cache = stats.get("counts") or {}, stats.get("state_cache") or {}
    progress = Progress(counts.get("events_in", 0), counts.get("completed", 0), stats.get("lag_total"),
                        counts.get("unsettled_now", 0), cache.get("held_events", 0), before.quiet_since)
    if (progress.events_in, progress.completed) != (before.events_in, before.completed) or not before.quiet_since:
        progress.quiet_since = now
    return progress


def caught_up(progress: Progress, now: float, quiet_s: float) -> bool:
    """Everything read and committed, nothing waiting, nothing new for `quiet_s`."""
    return (progress.events_in > 0 and progress.lag_total == 0 and progress.settling == 0
            and progress.held_events == 0 and now - progress.quiet_since >= quiet_s)


@dataclass(frozen=True)
class RebuildWorker:
    settings: Settings
    output: str
    web_port: int

    @property
    def app_id(self) -> str:
        return f"{self.settings.stream_app_id}-rebuild-{self.output}"

    @property
    def logfile(self) -> Path:
        return self.settings.stack_home / "logs" / f"{self.app_id}.log"

    def start(self) -> subprocess.Popen:
        datadir = self.settings.stack_home / "rebuild" / self.output
        datadir.parent.mkdir(parents=True, exist_ok=True)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        # A worker's credentials and no others: the caller (an operator's shell) may hold more.
        inherited = {name: value for name, value in os.environ.items() if not names_a_secret(name)}
        env = {**inherited, **self.settings.as_env("worker"), "STREAM_APP_ID": self.app_id,
               "ORDER_FINAL_TOPIC": self.output, "ORDER_ALERTS_TOPIC": f"{self.output}-alerts",
               "FAUST_WEB_PORT": str(self.web_port)}
        argv = [str(Path(sys.executable).with_name("faust")), "-A", "streams.app", f"--datadir={datadir}",
                "worker", "-l", "info", "--web-port", str(self.web_port), "--web-host", "127.0.0.1"]
        with self.logfile.open("a") as log:
            return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stats(self) -> dict | None:
        try:
            response = httpx.get(f"http://127.0.0.1:{self.web_port}/stats", timeout=2)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    @staticmethod
    def stop(process: subprocess.Popen, grace_s: float = 30) -> None:
        """SIGTERM (the worker flushes its state and commits), SIGKILL after `grace_s`."""
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def wait_caught_up(worker: RebuildWorker, process: subprocess.Popen, *, quiet_s: float, timeout_s: float,
                   report=print) -> Progress:
    """Poll the worker until it has caught up; report a line every few seconds."""
    started = time.monotonic()
    progress, reported = Progress(), 0.0
    while True:
        now = time.monotonic()
        if process.poll() is not None:
            raise RuntimeError(f"the rebuild worker exited ({process.returncode}); see {worker.logfile}")
        stats = worker.stats()
        if stats is not None:
            progress = read_progress(stats, progress, now)
            if caught_up(progress, now, quiet_s):
                return progress
            if now - reported >= 5:
                reported = now
                report(f"{now - started:5.0f} s: {progress.events_in:,} CDC records read, "
                       f"{progress.completed:,} orders emitted, lag {progress.lag_total}")
        if now - started > timeout_s:
            raise TimeoutError(f"not caught up after {timeout_s:.0f} s ({progress}); see {worker.logfile}")
        time.sleep(1)
