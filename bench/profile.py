"""Where a busy worker's CPU goes, or its time: py-spy samples of workers taking a pre-filled backlog.

    python -m bench.profile [--orders 20000] [--seconds 6] [--top 25] [--workers 2] [--idle]

A scratch database and stream (as bench.stream's); the CDC topics are filled first, then
`--workers` workers start and, once the first has taken 2,000 records, py-spy samples each
of them (all threads, 200 Hz) for `--seconds`. Printed: self time by module (aiokafka,
faust, the project's files, the standard library's), the functions with the most self time,
and the events/s of the run with its audit. With `--idle`, samples of waiting threads count
too and each thread's share is printed: where a worker that is not CPU-bound waits. py-spy
slows the workers; compare shares, not the events/s.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer

from bench.stream import isolated, ours, prefill
from config import cli
from stack.workers import Worker

WARM_UP_RECORDS = 2_000
PROJECT_PACKAGES = ("agents", "streams", "tables", "web")


def where(frame: str) -> tuple[str, str]:
    """(module group, function) of one py-spy frame, e.g. `put (streams/runtime/changelog.py:77)`."""
    found = re.search(r"^(.*) \((.*?):\d+\)$", frame)
    if found is None:
        return frame or "(unknown)", frame or "(unknown)"
    function, path = found.groups()
    path = re.sub(r".*site-packages/", "", path)
    path = re.sub(r".*/lib/python3\.\d+/", "stdlib/", path)
    path = re.sub(rf"^{re.escape(str(Path.cwd()))}/", "", path)
    parts = path.split("/")
    if parts[0] in PROJECT_PACKAGES:
        group = path  # one of the project's modules
    else:
        group = "/".join(parts[:2]) if parts[0] == "stdlib" else parts[0]
    return group, f"{function} ({path})"


def shares(raw: str) -> tuple[int, Counter, Counter, Counter]:
    """Samples, and self samples by module group, by function and by thread and function (the
    thread's name, when py-spy recorded `--threads`: a stack's first frame is then
    `thread (id): name`), from py-spy's raw output."""
    by_group, by_function, by_thread, total = Counter(), Counter(), Counter(), 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        thread = re.match(r"^thread \(\w+\): (.*)$", frames[0])
        group, function = where(frames[-1])
        by_group[group] += int(count)
        by_function[function] += int(count)
        by_thread[f"{thread.group(1) if thread else '(all)'}: {function}"] += int(count)
        total += int(count)
    return total, by_group, by_function, by_thread


def project_totals(raw: str) -> Counter:
    """Samples by the project's functions with their callees included (each function counted
    once per stack, recursion or not): which of the project's calls the time goes through."""
    totals = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        placed = {where(frame) for frame in stack.split(";")}
        for group, function in placed:
            if group.startswith(PROJECT_PACKAGES):
                totals[function] += int(count)
    return totals


def print_shares(title: str, shares_by: Counter, total: int, top: int) -> None:
    print(f"{title} ({total:,} samples):")
    for name, count in shares_by.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {name}")


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders pre-filled (about 3 CDC records each).")] = 20_000,
    seconds: Annotated[float, typer.Option(min=1, help="How long py-spy samples the worker.")] = 6,
    top: Annotated[int, typer.Option(min=1, help="How many functions to list.")] = 25,
    workers: Annotated[int, typer.Option(min=1, max=4, help="Workers taking the backlog, each sampled.")] = 1,
    idle: Annotated[bool, typer.Option(help="Count waiting threads too (where a worker waits), "
                                            "with each thread's share.")] = False,
) -> None:
    """Sample the workers' CPU (or, with --idle, their time) by module, function and thread
    while they take a backlog."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise typer.BadParameter("py-spy is not installed: pip install py-spy", param_hint="py-spy")
    with tempfile.TemporaryDirectory() as scratch_dir, isolated(f"bench_{uuid.uuid4().hex[:8]}_pf") as scratch:
        filled = prefill(scratch, orders)
        print(f"{filled.records:,} CDC records from {orders:,} orders; sampling {seconds:.0f} s", flush=True)
        raw_paths, sampled = [Path(scratch_dir) / f"samples-{n}.txt" for n in range(workers)], threading.Event()
        waiting = ["--idle", "--threads"] if idle else []

        def sample(started: list[Worker]) -> None:
            try:
                while started[0].stats()["counts"].get("events_in", 0) < WARM_UP_RECORDS:
                    time.sleep(0.05)
                spies = [subprocess.Popen([spy, "record", "--pid", str(worker.pid()), "--duration", str(int(seconds)),
                                           "--rate", "200", "--format", "raw", "--output", str(path),
                                           "--nonblocking", *waiting],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for worker, path in zip(started, raw_paths)]
                for one in spies:
                    one.wait()
            finally:
                sampled.set()

        run = ours(scratch, workers, filled.records, filled.manifest, "pf", during=sample)
        sampled.wait(seconds + 30)
        raws = [path.read_text() if path.exists() else "" for path in raw_paths]
    print(f"{workers} worker(s): {run.events_per_s:,.0f} events/s under py-spy; {run.audit.summary()}")
    for number, raw in enumerate(raws, start=1):
        total, by_group, by_function, by_thread = shares(raw)
        if not total:
            print(f"py-spy took no samples of worker {number} (is ptrace allowed here?)")
            raise typer.Exit(1)
        print(f"worker {number}: {'time (waiting included)' if idle else 'CPU'}")
        if idle:
            print_shares("  by thread and function", by_thread, total, top)
        print_shares("  self time by module", by_group, total, 20)
        print_shares("  functions with the most self time", by_function, total, top)
        print_shares("  the project's functions with the most time, callees included", project_totals(raw), total, top)


if __name__ == "__main__":
    cli.run(main)
