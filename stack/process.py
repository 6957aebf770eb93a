"""Start, find and stop the stack's background processes by pid file.

A pid file holds `pid create_time since_boot`: a pid the kernel has recycled for another
program has a different start time, so `down` never signals a process the stack did not
start. The start is compared as seconds after boot, which a wall-clock step (NTP) leaves
alone: the wall-clock create time moved by 21 s under a running stack here once, and every
service then looked stopped.
Each service runs in its own session (process group), and `stop` signals the group, so
children (MariaDB's helpers, the JVMs' forks) go with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from config.settings import names_a_secret


def _read_pidfile(pidfile: Path) -> tuple[int, float, float | None] | None:
    try:
        pid, created, *since_boot = pidfile.read_text().split()
        return int(pid), float(created), float(since_boot[0]) if since_boot else None
    except (FileNotFoundError, ValueError, IndexError):
        return None


def _since_boot(process: psutil.Process) -> float:
    """When the process started, in seconds after boot (both terms move with a clock step)."""
    return process.create_time() - psutil.boot_time()


def running_pid(pidfile: Path) -> int | None:
    """The pid recorded in `pidfile` if that very process is still alive, else None."""
    record = _read_pidfile(pidfile)
    if record is None:
        return None
    pid, created, since_boot = record
    try:
        process = psutil.Process(pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        if since_boot is None:  # a pid file written before since_boot was recorded
            same = abs(process.create_time() - created) < 0.01
        else:
            same = abs(_since_boot(process) - since_boot) < 0.05
    except psutil.NoSuchProcess:
        return None
    return pid if alive and same else None


def start(
    argv: Sequence[str],
    *,
    pidfile: Path,
    logfile: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start `argv` detached, output appended to `logfile`; record it in `pidfile`. It inherits
    this process's environment without its secrets (the settings' and any variable whose name
    says one): a child gets those it needs in `env`."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with logfile.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        child = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**{name: value for name, value in os.environ.items() if not names_a_secret(name)}, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    started = psutil.Process(child.pid)
    pidfile.write_text(f"{child.pid} {started.create_time()} {_since_boot(started)}")
    return child.pid


def stop(pidfile: Path, *, grace_s: float = 20.0) -> int | None:
    """SIGTERM the recorded process group, SIGKILL it after `grace_s`. Returns the pid stopped."""
    pid = running_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return None
    process = psutil.Process(pid)
    family = [process, *process.children(recursive=True)]
    signal_group(pid, signal.SIGTERM)
    alive = _wait_ended(family, grace_s)
    if alive:
        signal_group(pid, signal.SIGKILL)
        for straggler in alive:
            try:
                straggler.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
    pidfile.unlink(missing_ok=True)
    return pid


def _wait_ended(family: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until each process has exited (a zombie has: only its parent, maybe another
    process, can reap it); those still running after `timeout_s`."""
    def running(member: psutil.Process) -> bool:
        try:
            if member.status() != psutil.STATUS_ZOMBIE:
                return True
            if member.ppid() == os.getpid():
                member.wait(timeout=0)  # our own child: reaped
        except (psutil.NoSuchProcess, psutil.TimeoutExpired):
            pass
        return False

    deadline = time.monotonic() + timeout_s
    while (alive := [member for member in family if running(member)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


def peak_rss_mb(pid: int) -> float | None:
    """A process's high-water resident set (VmHWM) in MB; None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next((int(line.split()[1]) / 1024 for line in status if line.startswith("VmHWM:")), None)
    except OSError:
        return None


def signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def listening_pid(port: int) -> int | None:
    """Pid of whatever listens on TCP `port` on this machine (None if nothing or unknown)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            return conn.pid or -1
    return None
