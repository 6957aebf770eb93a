"""Faust workers as local processes: for `make demo`, integration tests and benchmarks.

Worker N runs `faust -A streams.app --datadir=<STACK_HOME>/workers/<app>-N worker` with web
port FAUST_WEB_PORT + N - 1, its output in `<STACK_HOME>/logs/<app>-worker-N.log`, and the
environment of the given settings (so a test can run its own isolated stream).
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from config import Settings
from config.settings import REPO_ROOT
from stack import process
from stack.services import StackLayout


@dataclass(frozen=True)
class Worker:
    settings: Settings
    number: int
    app: str = "streams.app"  # the Faust app module (bench.bare_agent for the framework's ceiling)
    env: tuple[tuple[str, str], ...] = ()  # more environment for the process
    args: tuple[str, ...] = ()  # more `faust worker` options (e.g. --web-bind 0.0.0.0)
    source: Path = REPO_ROOT  # the checkout whose code it runs (a benchmark's older revision)

    @property
    def name(self) -> str:
        return f"{self.settings.stream_app_id}-worker-{self.number}"

    @property
    def layout(self) -> StackLayout:
        return StackLayout(self.settings.stack_home)

    @property
    def port(self) -> int:
        return self.settings.faust_web_port + self.number - 1

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def datadir(self) -> Path:
        return self.settings.stack_home / "workers" / self.name

    def argv(self) -> list[str]:
        faust = Path(sys.executable).with_name("faust")
        datadir = self.datadir
        return [str(faust), "-A", self.app, f"--datadir={datadir}", "worker", "-l", "info",
                "--web-port", str(self.port), "--web-host", "127.0.0.1", *self.args]

    def start(self) -> int:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)  # faust does not create it
        # The code of `source`, not the checkout the editable install points at. Both the path
        # and the working directory: Faust imports the app module (the whole `streams`
        # package with it) from the working directory first.
        return process.start(self.argv(), pidfile=self.layout.pidfile(self.name),
                             logfile=self.layout.logfile(self.name), cwd=self.source,
                             env={**self.settings.as_env("worker"), "PYTHONPATH": str(self.source), **dict(self.env)})

    def pid(self) -> int | None:
        return process.running_pid(self.layout.pidfile(self.name))

    def stop(self) -> int | None:
        return process.stop(self.layout.pidfile(self.name), grace_s=30)

    def kill(self) -> int | None:
        """SIGKILL, as a crash would: no shutdown, no commit, no changelog flush."""
        pid = self.pid()
        if pid is not None:
            process.signal_group(pid, signal.SIGKILL)
            self.layout.pidfile(self.name).unlink(missing_ok=True)
        return pid

    def stats(self) -> dict | None:
        try:
            token = self.settings.web_token
            headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
            response = httpx.get(f"{self.url}/stats", timeout=2, headers=headers)
        except httpx.HTTPError:
            return None
        return response.json() if response.status_code == 200 else None

    def wait_ready(self, timeout_s: float = 180) -> None:  # a first start reads the reference data first
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise RuntimeError(f"{self.name} exited; see {self.layout.logfile(self.name)}")
            if self.stats() is not None:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{self.name} not serving /stats after {timeout_s} s; see "
                           f"{self.layout.logfile(self.name)}")


def start_workers(settings: Settings, count: int, **options) -> list[Worker]:
    """Start `count` workers (`options`: Worker's `app`, `env`, `args` and `source`) and wait until each
    serves /stats; if one does not, stop them all (a worker left behind holds its ports)."""
    workers = [Worker(settings, number, **options) for number in range(1, count + 1)]
    for worker in workers:
        if worker.pid() is None:
            worker.start()
    try:
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        for worker in workers:
            worker.stop()
        raise
    return workers


def wait_for_group(settings: Settings, workers: list[Worker], timeout_s: float = 90) -> None:
    """Until the workers share the CDC partitions, each holding some: orders written before
    the group settles wait for its rebalance (and a test's would be processed twice)."""
    topic, partitions = settings.cdc_topic("orders"), settings.topic_partitions
    deadline = time.monotonic() + timeout_s
    while True:
        shares = [set(((worker.stats() or {}).get("lag") or {}).get(topic, {})) for worker in workers]
        if all(shares) and sum(map(len, shares)) == len(set().union(*shares)) == partitions:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers hold {shares} of {topic}'s {partitions} partitions after {timeout_s:.0f} s")
        time.sleep(0.5)
