"""Where a busy worker's CPU goes, or its time: py-spy samples of workers taking a pre-filled backlog.

    python -m bench.profile [--orders 20000] [--seconds 6] [--top 25] [--workers 2] [--idle]
    python -m bench.profile --contender quix-best [--orders 60000] [--seconds 6]

A scratch database and stream (as bench.stream's); the CDC topics are filled first, then
`--workers` workers start and, once the first has taken 2,000 records, py-spy samples each
of them (all threads, 200 Hz) for `--seconds`. Printed: the machine's CPU per input record by
stage (the workers' CPU split by where its samples fall, and the broker's own CPU), self time by
module (aiokafka, faust, the project's files, the standard library's), the functions with the
most self time, and the events/s of the run with its audit. With `--idle`, samples of waiting threads count
too and each thread's share is printed: where a worker that is not CPU-bound waits. py-spy
slows the workers; compare shares, not the events/s.

`--contender quix-best` makes the same CPU table of Quix Streams at its best (bench.peers'
quix-noclaim, one process): sampled from a second after its consumer group is stable, its
records in the window counted from the output orders appended in it, its librdkafka threads'
CPU (which py-spy cannot see) a stage of its own.
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
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

import psutil

from bench.peers.contenders import Contender, running, wait_groups_stable
from bench.peers.measure import collect_output
from bench.stream import CpuUse, isolated, ours, prefill
from config import Settings, cli
from stack import process
from stack.services import StackLayout
from stack.workers import Worker

WARM_UP_RECORDS = 2_000
PROJECT_PACKAGES = ("agents", "streams", "tables", "web")


def where(frame: str) -> tuple[str, str]:
    """(module group, function) of one py-spy frame, e.g. `put (streams/runtime/changelog_table.py:77)`."""
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


MACHINERY = "the framework's per-record machinery (Faust, mode, the feed; Quix's dataframe and loop)"

# Where a sample's CPU goes: the innermost of the project's frames names the stage (a RocksDB
# read under the state cache is the state cache's, aiokafka's send under the changelog is the
# changelog's); a stack with none of them goes by the first library stage, in this order, that
# any of its frames is in (aiokafka's connection under its sender is the sender's).
PROJECT_STAGES = (
    ("decode", ("streams/codec.py",)),
    ("state cache + changelog", ("streams/runtime/state_cache.py", "streams/runtime/commit_protocol.py",
                                 "streams/runtime/changelog_table.py",
                                 "streams/runtime/rocksdb_budget.py", "tables/")),
    ("claims", ("agents/emission/guard.py", "agents/emission/order_final_lookup.py")),
    ("output produce", ("agents/emission/", "streams/topics.py", "streams/runtime/producer.py")),
    ("fetch", ("streams/runtime/consumer.py", "streams/runtime/connect_offsets.py",
               "streams/runtime/reference_reader.py")),
    (MACHINERY, ("streams/runtime/feed.py", "streams/runtime/order_pipe_app.py",
                                      "streams/runtime/metrics.py")),
    ("the rule", ("agents/", "web/")),
)
LIBRARY_STAGES = (
    ("fetch", ("aiokafka/consumer/", "quixstreams/kafka/consumer.py", "quixstreams/rowconsumer.py")),
    ("produce (the client's sender: changelog and outputs)",
     ("aiokafka/producer/", "quixstreams/kafka/producer.py", "quixstreams/rowproducer.py",
      "quixstreams/models/serializers/")),
    ("claims", ("redis/",)),
    ("state cache + changelog", ("rocksdict/", "quixstreams/state/")),
    ("decode", ("orjson",)),
    ("Kafka client I/O (either way)", ("aiokafka/",)),
    (MACHINERY, ("faust/", "mode/", "venusian/", "quixstreams/")),
)
NATIVE_STAGE = "librdkafka's threads (fetch, produce, I/O: not sampled)"
OTHER_STAGE = "event loop, collector and the rest"
# Quix's application (its `main` is under every stack of that process): its own lines are the
# rule; what it calls goes by the callee's stage.
QUIX_GLUE = "bench/peers/quix_completion.py"


def stage_of(frames: list[str]) -> str:
    """The stage one sampled stack (outermost frame first) spends its CPU in."""
    paths = [where(frame)[1].rpartition(" (")[2].rstrip(")") for frame in frames]
    for path in reversed(paths):
        for stage, prefixes in PROJECT_STAGES:
            if path.startswith(prefixes):
                return stage
    if paths and paths[-1] == QUIX_GLUE:
        return "the rule"
    for stage, prefixes in LIBRARY_STAGES:
        if any(path.startswith(prefixes) for path in paths):
            return stage
    return OTHER_STAGE


def stage_samples(raw: str) -> Counter:
    """py-spy's raw samples by stage."""
    by_stage = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if count.isdigit():
            by_stage[stage_of(stack.split(";"))] += int(count)
    return by_stage


def budget(by_stage: Counter, worker_cpu_s: float, broker_cpu_s: float, records: int,
           native_cpu_s: float = 0.0) -> dict[str, float]:
    """µs of the machine's CPU per input record, by stage: the workers' sampled CPU split as their
    samples are, their threads py-spy cannot see (`native_cpu_s`), and the broker's own."""
    total = sum(by_stage.values())
    per_record = {stage: 1e6 * worker_cpu_s * count / total / records for stage, count in by_stage.most_common()}
    native = {NATIVE_STAGE: 1e6 * native_cpu_s / records} if native_cpu_s else {}
    return per_record | native | {"the broker (its process)": 1e6 * broker_cpu_s / records}


def records_in_window(appended_ms: list[float], start_ms: float, end_ms: float, records: int) -> int:
    """The input records a contender took in a window, from its output: its share of the outputs
    appended then, of all `records` (a backlog run's records and outputs go at one pace)."""
    inside = sum(start_ms <= stamp <= end_ms for stamp in appended_ms)
    return round(records * inside / len(appended_ms)) if appended_ms else 0


def print_budget(per_record: dict[str, float], records: int, seconds: float) -> None:
    print(f"CPU per input record by stage ({records:,} records in {seconds:.1f} s sampled):")
    for stage, micros in per_record.items():
        print(f"  {micros:6.1f} µs  {stage}")
    print(f"  {sum(per_record.values()):6.1f} µs  in all")


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


class Profiled(str, Enum):
    ours = "ours"
    quix_best = "quix-best"


def broker_cpu_s(cpu: dict[str, float]) -> float:
    return sum(seconds for name, seconds in cpu.items() if name.startswith("kafka") and name != "kafka-connect")


def quix_best(scratch: Settings, filled, seconds: float, spy: str, raw_path: Path) -> dict[str, float]:
    """Quix Streams at its best (one process) taking the backlog, sampled by py-spy for `seconds`
    from a second after its group is stable: the window's records, seconds and CPU (its main
    thread's, its librdkafka threads', the broker's)."""
    contender = Contender("quix-noclaim", 1)
    with running(contender, scratch, web_port=0):
        pid = process.running_pid(StackLayout(scratch.stack_home).pidfile(f"{contender.slug(scratch)}-0"))
        wait_groups_stable(scratch, contender.groups(scratch))
        time.sleep(1.0)  # its imports and topic set-up are behind it; the backlog is under way
        quix, cpu = psutil.Process(pid), CpuUse([])

        def threads() -> tuple[float, float]:
            """CPU so far of its main thread (all its Python work) and of its other threads
            (librdkafka's; py-spy samples Python threads only)."""
            seen = quix.threads()
            main = sum(t.user_time + t.system_time for t in seen if t.id == pid)
            return main, sum(t.user_time + t.system_time for t in seen) - main

        before, (main_before, native_before), start_ms = cpu.seconds(), threads(), time.time() * 1000
        subprocess.run([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
                        "--format", "raw", "--output", str(raw_path), "--nonblocking"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        after, (main_after, native_after), end_ms = cpu.seconds(), threads(), time.time() * 1000
        outputs = collect_output(scratch, contender.output_topic(scratch), set(filled.manifest["complete"]),
                                 quiet_s=10, timeout_s=300, desc="quix-best output")
    appended = [message.timestamp_ms for message in outputs]
    return {"records": records_in_window(appended, start_ms, end_ms, filled.records),
            "seconds": (end_ms - start_ms) / 1000, "workers": main_after - main_before,
            "native": native_after - native_before, "broker": broker_cpu_s(after) - broker_cpu_s(before)}


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders pre-filled (about 3 CDC records each).")] = 20_000,
    seconds: Annotated[float, typer.Option(min=1, help="How long py-spy samples the worker.")] = 6,
    top: Annotated[int, typer.Option(min=1, help="How many functions to list.")] = 25,
    workers: Annotated[int, typer.Option(min=1, max=4, help="Workers taking the backlog, each sampled.")] = 1,
    idle: Annotated[bool, typer.Option(help="Count waiting threads too (where a worker waits), "
                                            "with each thread's share.")] = False,
    contender: Annotated[Profiled, typer.Option(
        help="Whose CPU: ours (the workers), or quix-best (Quix Streams at its best, one process).")] = "ours",
) -> None:
    """Sample the workers' CPU (or, with --idle, their time) by module, function and thread
    while they take a backlog."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise typer.BadParameter("py-spy is not installed: pip install py-spy", param_hint="py-spy")
    if contender is Profiled.quix_best and (workers != 1 or idle):
        raise typer.BadParameter("Quix at its best is profiled as one process, CPU only: leave out --workers "
                                 "and --idle", param_hint="--contender")
    with tempfile.TemporaryDirectory() as scratch_dir, isolated(f"bench_{uuid.uuid4().hex[:8]}_pf") as scratch:
        filled = prefill(scratch, orders)
        print(f"{filled.records:,} CDC records from {orders:,} orders; sampling {seconds:.0f} s", flush=True)
        if contender is Profiled.quix_best:
            raw_path = Path(scratch_dir) / "samples-quix.txt"
            window = quix_best(scratch, filled, seconds, spy, raw_path)
            raw = raw_path.read_text() if raw_path.exists() else ""
            print(f"Quix at its best: {window['records'] / window['seconds']:,.0f} events/s under py-spy")
            print_budget(budget(stage_samples(raw), window["workers"], window["broker"], int(window["records"]),
                                native_cpu_s=window["native"]), int(window["records"]), window["seconds"])
            print_profile([raw], idle=False, top=top)
            return
        raw_paths, sampled = [Path(scratch_dir) / f"samples-{n}.txt" for n in range(workers)], threading.Event()
        waiting = ["--idle", "--threads"] if idle else []
        window: dict[str, float] = {}

        def taken(started: list[Worker]) -> int:
            return sum((worker.stats() or {}).get("counts", {}).get("events_in", 0) for worker in started)

        def sample(started: list[Worker]) -> None:
            try:
                while started[0].stats()["counts"].get("events_in", 0) < WARM_UP_RECORDS:
                    time.sleep(0.05)
                cpu = CpuUse(started)
                before, records_before, clock = cpu.seconds(), taken(started), time.monotonic()
                spies = [subprocess.Popen([spy, "record", "--pid", str(worker.pid()), "--duration", str(int(seconds)),
                                           "--rate", "200", "--format", "raw", "--output", str(path),
                                           "--nonblocking", *waiting],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                         for worker, path in zip(started, raw_paths)]
                for one in spies:
                    one.wait()
                after = cpu.seconds()
                window.update(records=taken(started) - records_before, seconds=time.monotonic() - clock,
                              workers=after["workers"] - before["workers"],
                              broker=broker_cpu_s(after) - broker_cpu_s(before))
            finally:
                sampled.set()

        run = ours(scratch, workers, filled.records, filled.manifest, "pf", during=sample)
        sampled.wait(seconds + 30)
        raws = [path.read_text() if path.exists() else "" for path in raw_paths]
    print(f"{workers} worker(s): {run.events_per_s:,.0f} events/s under py-spy; {run.audit.summary()}")
    if not idle and window.get("records"):
        by_stage = sum((stage_samples(raw) for raw in raws), Counter())
        print_budget(budget(by_stage, window["workers"], window["broker"], int(window["records"])),
                     int(window["records"]), window["seconds"])
    print_profile(raws, idle=idle, top=top)


def print_profile(raws: list[str], *, idle: bool, top: int) -> None:
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
