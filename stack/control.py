"""Bring the stack up and down, and report on it.

`up` is idempotent: services already running (by pid file) are left alone, services
started now are waited on until healthy, wave by wave (Kafka Connect needs Kafka), and a
wave's set-up (users, grants, buckets) runs once the whole wave is healthy.
Any failure names the service and its log file, and shows the log's last lines.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed

from stack import process
from stack.services import Service

log = logging.getLogger("stack")


class StackError(RuntimeError):
    """A service could not be started; the message says which, why, and where to look."""


class StackBusy(StackError):
    """Another `up` or `rotate-secrets` runs on this stack."""


@contextmanager
def alone(stack_home: Path, doing: str) -> Iterator[None]:
    """One `up` or `rotate-secrets` at a time per stack: each changes passwords the other sets.
    A second is refused at once, naming the first; the lock goes with its process."""
    stack_home.mkdir(parents=True, exist_ok=True)
    with open(stack_home / ".control.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            running = lock.read().strip() or "another process"
            raise StackBusy(f"{running} is working on the stack in {stack_home}: wait for it to end, then "
                            f"run `{doing}` again") from None
        lock.truncate(0)
        lock.write(f"`{doing}` (pid {os.getpid()})")
        lock.flush()
        yield


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    port: int
    pid: int | None
    healthy: bool

    @property
    def state(self) -> str:
        if self.pid is None:
            return "stopped"
        return "healthy" if self.healthy else "unhealthy"


def log_tail(service: Service, lines: int = 25) -> str:
    logfile = service.layout.logfile(service.name)
    try:
        return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def _fail(service: Service, why: str) -> StackError:
    logfile = service.layout.logfile(service.name)
    return StackError(f"{service.name} (port {service.port}) {why}.\n"
                      f"Log: {logfile}\n--- last lines ---\n{log_tail(service)}")


def _launch(service: Service) -> bool:
    """Start `service` unless it runs already. True if it was started now."""
    pidfile = service.layout.pidfile(service.name)
    if pid := process.running_pid(pidfile):
        log.info("%-13s already running (pid %d)", service.name, pid)
        return False
    if (holder := process.listening_pid(service.port)) is not None:
        owner = f"pid {holder}" if holder > 0 else "another process"
        raise _fail(service, f"cannot start: port {service.port} is taken by {owner}; stop it, "
                             "or point the stack elsewhere with the settings' environment variables")
    service.prepare()
    pid = process.start(service.argv(), pidfile=pidfile, env=service.env(),
                        logfile=service.layout.logfile(service.name))
    log.info("%-13s started (pid %d, port %d)", service.name, pid, service.port)
    return True


def _wait_healthy(service: Service, timeout_s: float) -> float:
    """Block until `service` answers its probe; seconds waited. Raises if it dies or times out."""
    pidfile = service.layout.pidfile(service.name)
    started = time.monotonic()

    def healthy_or_dead() -> bool:
        if process.running_pid(pidfile) is None:
            raise _fail(service, "exited during start-up")
        return service.probe()

    # Only a False probe is retried; the StackError of a dead process ends the wait at once.
    wait_until_healthy = Retrying(stop=stop_after_delay(timeout_s), wait=wait_fixed(0.5),
                                  retry=retry_if_result(lambda ok: not ok),
                                  retry_error_callback=lambda _: False)
    if not wait_until_healthy(healthy_or_dead):
        raise _fail(service, f"did not become healthy within {timeout_s:.0f} s")
    return time.monotonic() - started


def up(services: Iterable[Service], timeout_s: float) -> None:
    ordered = sorted(services, key=lambda s: s.wave)
    for _, wave in groupby(ordered, key=lambda s: s.wave):
        wave = list(wave)
        for service in wave:
            _launch(service)
        for service in wave:
            log.info("%-13s healthy after %.1f s", service.name, _wait_healthy(service, timeout_s))
        # Set-up waits for the whole wave: a cluster's first node answers before the others
        # have joined, and an admin request it routes to a node still joining is dropped.
        for service in wave:
            service.bootstrap()


def down(services: Iterable[Service]) -> list[tuple[str, int]]:
    """Stop what the stack started: the continuous lake (stack.lake_process), Faust workers
    (stack.workers) and connector watchers (stack.watcher) first, then the services, last
    wave first. Returns (name, pid) of those stopped."""
    services = list(services)
    stopped = []
    if services:
        run = services[0].layout.run
        for pidfile in sorted(run.glob("lake-*.pid")):
            if (pid := process.stop(pidfile, grace_s=120)) is not None:  # the micro-batch under way ends first
                stopped.append((pidfile.stem, pid))
        for pidfile in sorted([*run.glob("*-worker-*.pid"), *run.glob("cdc-watch-*.pid")]):
            if (pid := process.stop(pidfile, grace_s=30)) is not None:
                stopped.append((pidfile.stem, pid))
    for service in sorted(services, key=lambda s: s.wave, reverse=True):
        if (pid := process.stop(service.layout.pidfile(service.name))) is not None:
            stopped.append((service.name, pid))
    return stopped


def status(services: Iterable[Service]) -> list[ServiceStatus]:
    report = []
    for service in services:
        pid = process.running_pid(service.layout.pidfile(service.name))
        report.append(ServiceStatus(service.name, service.port, pid, pid is not None and service.probe()))
    return report
