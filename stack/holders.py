"""The stack's own processes that hold a secret in their environment (workers, the continuous
lake, connector watchers, the brokers' metrics), found by their pid files, and restarted one by
one as they were started (same arguments, working directory and environment) but with new
values for some secrets: how a rotation reaches them."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from config.settings import SECRET_VARIABLES, names_a_secret
from stack import process
from stack.services import StackLayout

# The continuous lake finishes its micro-batch under way before it stops (stack/control.py's `down`).
GRACE_S = {"lake-": 120.0}
READY_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Holder:
    """One running process the stack started, as it was started."""
    pidfile: Path
    logfile: Path
    argv: tuple[str, ...]
    cwd: str
    environ: Mapping[str, str]

    @property
    def name(self) -> str:
        return self.pidfile.stem

    def holds(self, values: Mapping[str, str]) -> set[str]:
        """The variables of `values` its environment holds with that very value."""
        return {variable for variable, value in values.items() if self.environ.get(variable) == value}

    def stale_secrets(self, env: Mapping[str, str]) -> set[str]:
        """The secret variables it holds that `env` (what it would be started with now) does
        not give it, or gives another value."""
        return {name for name, value in self.environ.items()
                if (name in SECRET_VARIABLES or names_a_secret(name)) and env.get(name) != value}

    def renewed(self, old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str]:
        """Its environment with each variable that holds its `old` value given its `new` one
        (the same variable with a value of its own, a scratch lake's key, is kept)."""
        return {name: new[name] if name in new and old.get(name) == value else value
                for name, value in self.environ.items()}

    @property
    def web_port(self) -> int | None:
        """A Faust worker's web port (`--web-port N`): it is ready once that answers."""
        for option, value in zip(self.argv, self.argv[1:]):
            if option == "--web-port" and value.isdigit():
                return int(value)
        return None

    @property
    def grace_s(self) -> float:
        return next((grace for prefix, grace in GRACE_S.items() if self.name.startswith(prefix)), 30.0)


def running(layout: StackLayout, skip: set[str] = frozenset()) -> list[Holder]:
    """Every process the stack under `layout` started that still runs (the names in `skip`
    aside: services the stack restarts its own way)."""
    return [holder for pidfile in sorted(layout.run.glob("*.pid"))
            if pidfile.stem not in skip and (holder := of(layout, pidfile)) is not None]


def of(layout: StackLayout, pidfile: Path) -> Holder | None:
    """The process `pidfile` names, as it was started; None if it does not run."""
    if (pid := process.running_pid(pidfile)) is None:
        return None
    try:
        started = psutil.Process(pid)
        return Holder(pidfile, layout.logfile(pidfile.stem), tuple(started.cmdline()), started.cwd(), started.environ())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def stop(holder: Holder) -> None:
    process.stop(holder.pidfile, grace_s=holder.grace_s)


def start(holder: Holder, old: Mapping[str, str], new: Mapping[str, str]) -> int:
    """Start `holder` again as it was started, with the `new` values of the `old` ones it holds;
    wait until it is ready (a worker serves its web port, anything else still runs after 2 s)."""
    environ = holder.renewed(old, new)
    pid = process.start(holder.argv, pidfile=holder.pidfile, logfile=holder.logfile, env=environ, cwd=Path(holder.cwd))
    wait_ready(holder, environ)
    return pid


def restart(holder: Holder, old: Mapping[str, str], new: Mapping[str, str]) -> int:
    stop(holder)
    return start(holder, old, new)


def wait_ready(holder: Holder, environ: Mapping[str, str]) -> None:
    token = environ.get("WEB_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    deadline = time.monotonic() + (READY_TIMEOUT_S if holder.web_port else 2.0)
    while time.monotonic() < deadline:
        if process.running_pid(holder.pidfile) is None:
            raise RuntimeError(f"{holder.name} exited after its restart: see {holder.logfile}")
        if holder.web_port:
            try:
                if httpx.get(f"http://127.0.0.1:{holder.web_port}/stats", headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    if holder.web_port:
        raise TimeoutError(f"{holder.name} did not serve its web port {holder.web_port} within {READY_TIMEOUT_S:.0f} s "
                           "of its restart")
