"""Where one busy worker's CPU goes: py-spy samples of a worker taking a pre-filled backlog.

    python -m bench.profile [--orders 20000] [--seconds 6] [--top 25]

A scratch database and stream (as bench.stream's); the CDC topics are filled first, then
one worker starts and, once it has taken 2,000 records, py-spy samples it (all threads, 200
Hz) for `--seconds`. Printed: self time by module (aiokafka, faust, the project's files,
the standard library's), the functions with the most self time, and the events/s of the
run with its audit. py-spy slows the worker; compare shares, not the events/s.
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


def where(frame: str) -> tuple[str, str]:
    """(module group, function) of one py-spy frame, e.g. `put (streams/changelog.py:77)`."""
    found = re.search(r"^(.*) \((.*?):\d+\)$", frame)
    if found is None:
        return frame or "(unknown)", frame or "(unknown)"
    function, path = found.groups()
    path = re.sub(r".*site-packages/", "", path)
    path = re.sub(r".*/lib/python3\.\d+/", "stdlib/", path)
    path = re.sub(rf"^{re.escape(str(Path.cwd()))}/", "", path)
    parts = path.split("/")
    group = "/".join(parts[:2]) if parts[0] in ("agents", "streams", "tables", "web", "stdlib") else parts[0]
    return group, f"{function} ({path})"


def shares(raw: str) -> tuple[int, Counter, Counter]:
    """Samples, and self samples by module group and by function, from py-spy's raw output."""
    by_group, by_function, total = Counter(), Counter(), 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        group, function = where(stack.split(";")[-1])
        by_group[group] += int(count)
        by_function[function] += int(count)
        total += int(count)
    return total, by_group, by_function


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders pre-filled (about 3 CDC records each).")] = 20_000,
    seconds: Annotated[float, typer.Option(min=1, help="How long py-spy samples the worker.")] = 6,
    top: Annotated[int, typer.Option(min=1, help="How many functions to list.")] = 25,
) -> None:
    """Sample one worker's CPU by module and function while it takes a backlog."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise typer.BadParameter("py-spy is not installed: pip install py-spy", param_hint="py-spy")
    with tempfile.TemporaryDirectory() as scratch_dir, isolated(f"bench_{uuid.uuid4().hex[:8]}_pf") as scratch:
        filled = prefill(scratch, orders)
        print(f"{filled.records:,} CDC records from {orders:,} orders; sampling {seconds:.0f} s", flush=True)
        raw_path, sampled = Path(scratch_dir) / "samples.txt", threading.Event()

        def sample(workers: list[Worker]) -> None:
            try:
                while workers[0].stats()["counts"].get("events_in", 0) < WARM_UP_RECORDS:
                    time.sleep(0.05)
                subprocess.run([spy, "record", "--pid", str(workers[0].pid()), "--duration", str(int(seconds)),
                                "--rate", "200", "--format", "raw", "--output", str(raw_path), "--nonblocking"],
                               check=False, capture_output=True)
            finally:
                sampled.set()

        run = ours(scratch, 1, filled.records, filled.manifest, "pf", during=sample)
        sampled.wait(seconds + 30)
        raw = raw_path.read_text() if raw_path.exists() else ""
    total, by_group, by_function = shares(raw)
    print(f"one worker: {run.events_per_s:,.0f} events/s under py-spy; {run.audit.summary()}")
    if not total:
        print("py-spy took no samples (is ptrace allowed here?)")
        raise typer.Exit(1)
    print(f"self time by module ({total:,} samples):")
    for group, count in by_group.most_common(20):
        print(f"  {100 * count / total:5.1f}%  {group}")
    print("functions with the most self time:")
    for function, count in by_function.most_common(top):
        print(f"  {100 * count / total:5.1f}%  {function}")


if __name__ == "__main__":
    cli.run(main)
