"""The stream's speed: events/s per worker (1 and 2 workers), end-to-end latency, worker RSS.

    python -m bench.stream [--orders 20000] [--rounds 3] [--latency-orders 60000 --rate 1000]
                           [--against REV] [--with-lake]

Everything runs in a scratch database with its own connector, topics and consumer groups.
- Throughput: the CDC topics are filled first; then, in each round, the same records are
  read from the start by each contender with a fresh consumer group: a plain confluent-kafka
  consumer that only decodes JSON (the baseline, in this process), a bare Faust agent that
  decodes and counts (bench.bare_agent) on Faust's stock consumer and on the project's
  (streams.runtime.consumer), and the product with 1 and 2 workers. events/s counts CDC records
  (orders + order_details) from the first one processed to the last. Each product run's
  order_final is audited against the generator's manifest. Ratios per round, then their
  median and range; the load average is printed per round, flagged above the core count.
  With `--against REV` the product at that git revision (a worktree of it, imported first)
  runs with 1 worker in every round too: before and after a change, in one run. With
  `--with-lake` ours x1 also runs while the continuous lake (a scratch bucket) works through
  the same topics, its first micro-batch under way: the ratio is the stream's speed with
  the lake beside it on these cores. Two
  workers are also timed from when each holds CDC partitions ("once settled"): until the
  group rebalances, the first worker to join reads alone.
- Latency: two workers start; the clock starts once the group has settled (every worker
  holds partitions, nothing left to read); orders are written at a steady rate (the rate
  reached is printed beside the one asked); for each completed order,
  its last write's commit (wall clock, taken by the writer right after COMMIT) to its
  order_final append (broker LogAppendTime). The CDC share (commit to the CDC record's
  append) is measured in the same run.
- RSS: each worker's resident memory at the end (psutil).
- Cores: CPU time of the workers and of each stack service (broker, Connect, MariaDB,
  Redis, MinIO) over each timed run, in cores: on a 2-core machine what the broker takes
  bounds what a second worker can add.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Annotated

import orjson
import psutil
import redis
import typer
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.verdict import audit_verdict
from cdc import rest
from cdc.connector import cdc_topics, connector_config, server_id
from cdc.topics import last_appends, read_topics, wait_for_records
from config import Settings, cli, settings
from source import database, generate
from agents.alerts import KINDS
from source.order_final_audit import Audit, audit
from agents.emission.guard import guard_key
from source.traffic import ChaosMix, InsertOrder, Truth, plan
from stack import process
from stack.lake_process import start_continuous_lake, stop_continuous_lake, wait_running
from stack.scratch import scratch_lake
from stack.services import all_services
from stack.workers import Worker, start_workers

CUSTOMERS = 10_000
WITH_LAKE = "ours, 1 worker, lake working beside"
DUPLICATE_GRACE_S = 3  # after the last expected order arrives, keep reading to catch copies


def percentiles(values: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(values, n=100)
    return cuts[49], cuts[98]


def create_output_topic(scratch: Settings, name: str) -> None:
    """An output topic as a deployment has it before its workers start: TOPIC_PARTITIONS
    partitions, appends timed by the broker (LogAppendTime)."""
    admin = AdminClient(scratch.kafka_client_config())
    topic = NewTopic(name, scratch.topic_partitions, scratch.replication_factor,
                     config={"message.timestamp.type": "LogAppendTime"})
    admin.create_topics([topic])[name].result(timeout=30)


def prepare(scratch: Settings, customers: int = CUSTOMERS) -> None:
    db = database.connect(scratch)
    database.apply_schema(db)
    database.load_reference(db, customers, seed=1, progress=False)
    append_time = {"message.timestamp.type": "LogAppendTime"}
    replicas = scratch.replication_factor
    topics = [NewTopic(cdc.topic, cdc.num_partitions, cdc.replication_factor, config={**cdc.config, **append_time})
              for cdc in cdc_topics(scratch)]
    topics.append(NewTopic(scratch.order_final_topic, scratch.topic_partitions, replicas, config=append_time))
    admin = AdminClient(scratch.kafka_client_config())  # must outlive its futures
    for future in admin.create_topics(topics).values():
        future.result(timeout=30)
    connect = rest.client(scratch)
    name = scratch.cdc_connector_name
    rest.put_config(connect, name, connector_config(scratch, **{"database.server.id": server_id(name)}))
    rest.wait_running(connect, name)
    # orders written before Debezium's snapshot ends would reach Kafka only after it
    wait_for_records(scratch, scratch.cdc_topic("customers"), customers, timeout_s=600, progress=False)


def end_offsets(scratch: Settings, tables=("orders", "order_details")) -> int:
    consumer = Consumer({**scratch.kafka_client_config(), "group.id": "bench-offsets"})
    total = 0
    for table in tables:
        for p in range(scratch.topic_partitions):
            total += consumer.get_watermark_offsets(TopicPartition(scratch.cdc_topic(table), p), timeout=10)[1]
    consumer.close()
    return total


def wait_topics_still(scratch: Settings) -> int:
    """Wait until the CDC topics stop growing; their record count."""
    last, still_since = -1, time.monotonic()
    while time.monotonic() - still_since < 3:
        now = end_offsets(scratch)
        if now != last:
            last, still_since = now, time.monotonic()
        time.sleep(0.5)
    return last


def baseline_events_per_s(scratch: Settings, total: int) -> float:
    consumer = Consumer({**scratch.kafka_client_config(), "group.id": f"bench-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([scratch.cdc_topic("orders"), scratch.cdc_topic("order_details")])
    seen, started = 0, None
    while seen < total:
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            if message.error():
                continue
            started = started or time.monotonic()
            if message.value() is not None:
                orjson.loads(message.value())
            seen += 1
    consumer.close()
    return seen / (time.monotonic() - started)


def forget_emissions(scratch: Settings, order_ids: list[str]) -> None:
    """Clear the Redis guard of these orders, so the next run emits them afresh: the keys
    for the settings' output topic, and the unscoped ones (`order_final`'s, and every key of
    a revision from before the guard was scoped by output topic, as `--against` may run)."""
    client = redis.Redis.from_url(scratch.redis_operator_url)
    for start in range(0, len(order_ids), 1000):
        chunk = order_ids[start:start + 1000]
        client.delete(*(guard_key(o, scratch.order_final_topic) for o in chunk), *(guard_key(o) for o in chunk),
                      *(guard_key(f"{kind}:{o}", scratch.order_alerts_topic) for o in chunk for kind in KINDS))


@dataclass(frozen=True)
class Run:
    events_per_s: float
    rss_mb: list[float]
    cores: dict[str, float]  # CPU used during the timed window, per process group
    settled_events_per_s: float | None = None  # several workers: from the group's settling on
    audit: Audit | None = None  # the product's runs only

    def cpu_note(self) -> str:
        return ", ".join(f"{name} {cores:.2f}" for name, cores in self.cores.items())


class CpuUse:
    """CPU time of the workers and of each stack service: where a run's cores went (on a
    2-core machine the broker's share bounds what a second worker can add)."""

    def __init__(self, workers: list[Worker]) -> None:
        self.groups = {"workers": [psutil.Process(w.pid()) for w in workers]}
        for service in all_services(settings):
            pid = process.running_pid(service.layout.pidfile(service.name))
            if pid is not None:
                leader = psutil.Process(pid)
                self.groups[service.name] = [leader, *leader.children(recursive=True)]

    def seconds(self) -> dict[str, float]:
        used = {}
        for name, processes in self.groups.items():
            used[name] = 0.0
            for proc in processes:
                try:
                    times = proc.cpu_times()
                    used[name] += times.user + times.system
                except psutil.NoSuchProcess:
                    pass
        return used

    @staticmethod
    def cores(before: dict[str, float], after: dict[str, float], wall_s: float) -> dict[str, float]:
        return {name: (after[name] - before[name]) / wall_s for name in after}


def timed_workers(workers: list[Worker], total: int, timeout_s: float = 600) -> Run:
    """events/s of `workers` (already started) until they have taken `total` records; RSS
    (MB); cores used meanwhile by the workers and by each stack service. With several
    workers also the events/s from when every one holds CDC partitions: the first to join
    reads alone until the group rebalances, a cost of starting, not of running."""
    started, deadline, seen, settled = None, time.monotonic() + timeout_s, 0, None
    cpu = CpuUse(workers)
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers took {seen:,} of {total:,} records in {timeout_s:.0f} s; see their logs "
                               f"({', '.join(str(w.layout.logfile(w.name)) for w in workers)})")
        answers = [w.stats() for w in workers]
        seen = sum(answer["counts"].get("events_in", 0) for answer in answers)
        if seen and started is None:
            started, cpu_before = time.monotonic(), cpu.seconds()
        if len(workers) > 1 and settled is None and all(answer.get("lag") for answer in answers):
            settled = (time.monotonic(), seen)
        if seen >= total:
            now = time.monotonic()
            steady = None
            if settled is not None and now > settled[0] and seen > settled[1]:
                steady = (seen - settled[1]) / (now - settled[0])
            return Run(seen / (now - started), [psutil.Process(w.pid()).memory_info().rss / 2**20 for w in workers],
                       CpuUse.cores(cpu_before, cpu.seconds(), now - started), steady)
        time.sleep(0.05)


def ours(scratch: Settings, workers_count: int, total: int, manifest: dict, tag: str,
         source: Path | None = None, during: Callable[[list[Worker]], None] | None = None) -> Run:
    """The product with `workers_count` fresh workers (own group, table, output topic); from
    the checkout at `source` if given (a revision to compare with), else from this one;
    `during(workers)` runs in a thread beside the timed run (load the workers put up with)."""
    group = scratch.model_copy(update={"stream_app_id": f"{scratch.stream_app_id}-{tag}",
                                       "order_final_topic": f"{scratch.order_final_topic}-{tag}"})
    create_output_topic(group, group.order_final_topic)
    workers = start_workers(group, workers_count, **({"source": source} if source else {}))
    if during is not None:
        threading.Thread(target=during, args=(workers,), daemon=True).start()
    try:
        timed = timed_workers(workers, total)
        expected = set(manifest["complete"])
        finals = read_topics(group, [group.order_final_topic], timeout_s=120,
                             until=lambda m: expected <= {x.value["order_id"] for x in m})
        time.sleep(DUPLICATE_GRACE_S)  # copies sent late would still show
        finals = read_topics(group, [group.order_final_topic], until=lambda m: len(m) >= len(finals))
        return replace(timed, audit=audit(manifest, [m.value for m in finals]))
    finally:
        for worker in workers:
            worker.stop()


def bare_faust(scratch: Settings, total: int, consumer: str, tag: str) -> Run:
    """bench.bare_agent on Faust's `stock` consumer or the `project`'s."""
    group = scratch.model_copy(update={"stream_app_id": f"{scratch.stream_app_id}-{tag}"})
    workers = start_workers(group, 1, app="bench.bare_agent", env=(("BARE_CONSUMER", consumer),))
    try:
        return timed_workers(workers, total)
    finally:
        for worker in workers:
            worker.stop()


def config_echo() -> str:
    from streams.app import app
    from streams.runtime.producer import BUFFER_MAX_MESSAGES
    from agents.completion_loop import BATCH_MAX, BATCH_WITHIN_S
    from tables.order_progress import FLUSH_INTERVAL_S
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("faust-streaming", "aiokafka", "mode-streaming"))
    return (f"config: linger {app.conf.producer_linger * 1000:.0f} ms, max batch {app.conf.producer_max_batch_size:,} B, "
            f"producer buffer {BUFFER_MAX_MESSAGES:,} records, state flush every {FLUSH_INTERVAL_S * 1000:.0f} ms, "
            f"agent batches of {BATCH_MAX} within {BATCH_WITHIN_S * 1000:.0f} ms, TOPIC_PARTITIONS "
            f"{settings.topic_partitions}; {versions}, Python {platform.python_version()}; {os.cpu_count()} cores")


def load_note() -> str:
    load = os.getloadavg()[0]
    return f"load {load:.2f}" + (" (ABOVE the core count: figures disturbed)" if load > (os.cpu_count() or 1) else "")


def spread(values: list[float], unit: str = "") -> str:
    return f"median {statistics.median(values):,.2f}{unit} (range {min(values):,.2f}-{max(values):,.2f})"


@contextmanager
def checkout(revision: str | None):
    """A worktree of `revision` (None: nothing), removed afterwards."""
    if revision is None:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="bench-against-") as parent:
        path = Path(parent) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", str(path), revision], check=True, capture_output=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(path)], check=False, capture_output=True)


@contextmanager
def lake_beside(scratch: Settings):
    """The continuous lake (in a bucket of its own) working through the scratch CDC topics,
    its first micro-batch under way: the load the demo's workers share the cores with."""
    with scratch_lake(scratch, f"bench-stream-{uuid.uuid4().hex[:8]}") as lake:
        start_continuous_lake(lake)
        try:
            wait_running(lake)
            yield
        finally:
            stop_continuous_lake(lake)


def throughput_rounds(scratch: Settings, rounds: int, total: int, manifest: dict, order_ids: list[str],
                      against: tuple[str, Path] | None = None, with_lake: bool = False) -> list[tuple[str, Audit]]:
    """Print each round's figures and their spread; the audit of every product run, labelled."""
    ratios: dict[str, list[float]] = {}
    audits: list[tuple[str, Audit]] = []
    for number in range(1, rounds + 1):
        print(f"round {number}/{rounds} ({load_note()})", flush=True)
        base = baseline_events_per_s(scratch, total)
        runs = {"bare Faust agent, stock consumer": bare_faust(scratch, total, "stock", f"bare{number}s"),
                "bare Faust agent, project consumer": bare_faust(scratch, total, "project", f"bare{number}p")}
        if against:
            forget_emissions(scratch, order_ids)
            runs[f"ours at {against[0]}, 1 worker"] = ours(scratch, 1, total, manifest, f"r{number}a", against[1])
        for count in (1, 2):
            forget_emissions(scratch, order_ids)
            runs[f"ours, {count} worker(s)"] = ours(scratch, count, total, manifest, f"r{number}w{count}")
        if with_lake:
            forget_emissions(scratch, order_ids)
            with lake_beside(scratch):
                runs[WITH_LAKE] = ours(scratch, 1, total, manifest, f"r{number}l")
        print(f"  {'plain consumer + JSON decode (baseline)':<38} {base:>9,.0f} events/s")
        for name, run in runs.items():
            audit_note = f"; audit: {run.audit.summary()}" if run.audit else ""
            if run.audit:
                audits.append((f"round {number} {name}", run.audit))
            print(f"  {name:<38} {run.events_per_s:>9,.0f} events/s ({run.events_per_s / base:.2f}x baseline); "
                  f"RSS {', '.join(f'{r:.0f}' for r in run.rss_mb)} MB{audit_note}", flush=True)
            settled = (f"; {run.settled_events_per_s:,.0f} events/s once every worker held partitions"
                       if run.settled_events_per_s else "")
            print(f"  {'':<38} cores used: {run.cpu_note()}{settled}", flush=True)
        one, two = runs["ours, 1 worker(s)"].events_per_s, runs["ours, 2 worker(s)"].events_per_s
        round_ratios = {"ours x1 / baseline": one / base,
                        "ours x1 / bare Faust agent (project consumer)": one / runs["bare Faust agent, project consumer"].events_per_s,
                        "bare agent: project / stock consumer": runs["bare Faust agent, project consumer"].events_per_s
                        / runs["bare Faust agent, stock consumer"].events_per_s,
                        "ours x2 / ours x1": two / one,
                        "ours x2 once settled / ours x1": (runs["ours, 2 worker(s)"].settled_events_per_s or 0) / one,
                        "ours x1 events/s": one}
        if with_lake:
            round_ratios["ours x1 with the lake / ours x1"] = runs[WITH_LAKE].events_per_s / one
        if against:
            round_ratios[f"ours x1 / ours x1 at {against[0]}"] = one / runs[f"ours at {against[0]}, 1 worker"].events_per_s
        for name, value in round_ratios.items():
            ratios.setdefault(name, []).append(value)
    print(f"over {rounds} round(s):")
    for name, values in ratios.items():
        print(f"  {name:<46} {spread(values)}")
    return audits


def latency(scratch: Settings, orders: int, rate: float, customers: int = CUSTOMERS) -> dict:
    workers = start_workers(scratch, 2)
    try:
        return measure_latency(scratch, workers, orders, rate, customers)
    finally:
        for worker in workers:
            worker.stop()


def wait_settled(workers: list[Worker], topic: str, quiet_s: float = 2.0, timeout_s: float = 300) -> float:
    """Until every worker holds some of `topic`'s partitions, has read every record there is
    and has taken none in for `quiet_s`: a latency clock started while the group still
    rebalances (or drains) measures that pause. Seconds waited."""
    started = time.monotonic()
    seen, since = None, started
    while time.monotonic() - started < timeout_s:
        stats = [worker.stats() or {} for worker in workers]
        taken = sum((s.get("counts") or {}).get("events_in", 0) for s in stats)
        settled = all((s.get("lag") or {}).get(topic) and s.get("lag_total") == 0 for s in stats)
        if taken != seen or not settled:
            seen, since = taken, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"the workers did not settle on {topic} within {timeout_s:.0f} s")


def measure_latency(scratch: Settings, workers: list[Worker], orders: int, rate: float,
                    customers: int = CUSTOMERS) -> dict:
    settled_s = wait_settled(workers, scratch.cdc_topic("orders"))
    committed: dict[str, float] = {}
    writes = plan(orders, seed=int(time.time()), customers=customers, chaos=ChaosMix())

    def on_commit(write) -> None:
        committed[write.order_id] = time.time() * 1000

    truth = Truth()
    writing_started = time.monotonic()
    generate.run(database.connect(scratch), writes, total_orders=orders, rate=rate, truth=truth,
                 progress=False, on_commit=on_commit)
    written_rate = orders / (time.monotonic() - writing_started)
    manifest = truth.manifest()
    expected = manifest["counts"]["complete"]

    def mine(messages):
        return [m for m in messages if m.value["order_id"] in committed]

    finals = mine(read_topics(scratch, [scratch.order_final_topic],
                              until=lambda m: len(mine(m)) >= expected, timeout_s=300))
    cdc_append = last_appends(scratch, set(committed), since_ms=int(min(committed.values())) - 1000)
    end_to_end = [m.timestamp_ms - committed[m.value["order_id"]] for m in finals]
    cdc_share = [cdc_append[m.value["order_id"]] - committed[m.value["order_id"]] for m in finals]
    result = audit(manifest, [m.value for m in finals])
    rss = [psutil.Process(w.pid()).memory_info().rss / 2**20 for w in workers]
    return {"e2e": percentiles(end_to_end), "cdc": percentiles(cdc_share), "audit": result,
            "rss": rss, "orders": orders, "rate": rate, "settled_s": settled_s, "written_rate": written_rate}


@dataclass(frozen=True)
class Prefilled:
    """Orders written at full speed and their CDC records settled in the topics."""

    manifest: dict
    order_ids: list[str]
    records: int


def prefill(scratch: Settings, orders: int, customers: int = CUSTOMERS) -> Prefilled:
    writes = plan(orders, seed=int(time.time()), customers=customers, chaos=ChaosMix())
    truth = Truth()
    generate.run(database.connect(scratch), writes, total_orders=orders, rate=0, truth=truth, progress=False)
    order_ids = [w.order_id for w in writes if isinstance(w, InsertOrder)]
    return Prefilled(truth.manifest(), order_ids, wait_topics_still(scratch))


def isolated(suffix: str, customers: int = CUSTOMERS):
    """A scratch database with its own connector, topics, consumer group and web ports."""
    @contextmanager
    def scope():
        with database.scratch_database(settings, suffix) as scratch:
            # named after the stack's own, so its Kafka ACLs cover them (stack/secrets.py)
            scratch = scratch.model_copy(update={"stream_app_id": f"{settings.stream_app_id}-{suffix}",
                                                 "order_final_topic": f"{settings.order_final_topic}_{suffix}",
                                                 "order_alerts_topic": f"{settings.order_alerts_topic}_{suffix}",
                                                 "dead_letter_topic": f"{settings.dead_letter_topic}_{suffix}",
                                                 "faust_web_port": 17066})
            prepare(scratch, customers)
            try:
                yield scratch
            finally:
                rest.delete(rest.client(scratch), scratch.cdc_connector_name)
    return scope()


def main(
    orders: Annotated[int, typer.Option(min=1, help="Orders pre-filled for the throughput runs.")] = 20_000,
    rounds: Annotated[int, typer.Option(min=1, help="Throughput rounds (each runs every contender once).")] = 3,
    latency_orders: Annotated[int, typer.Option(min=1, help="Orders in the latency run (60 s at the default rate).")] = 60_000,
    rate: Annotated[float, typer.Option(min=0, help="Orders/s in the latency run.")] = 1000,
    against: Annotated[str | None, typer.Option(help="A git revision (e.g. HEAD~3) whose product also runs "
                                                     "with 1 worker in each round, for a before/after ratio.")] = None,
    customers: Annotated[int, typer.Option(min=1, help="Customers in the reference data (every worker reads them "
                                                "all before its first batch).")] = CUSTOMERS,
    with_lake: Annotated[bool, typer.Option("--with-lake", help="Each round also runs ours x1 while the continuous "
                                            "lake works through the same topics, and prints the ratio.")] = False,
) -> None:
    """Measure the stream: events/s (baseline, bare Faust agent, ours x1 and x2), latency, RSS.
    Exits 1 if any of the product's outputs fails its audit."""
    run = uuid.uuid4().hex[:8]
    print(config_echo())
    with isolated(f"bench_{run}_tp", customers) as scratch:
        filled = prefill(scratch, orders, customers)
        print(f"throughput: {filled.records:,} CDC records (orders + order_details) from {orders:,} orders")
        with checkout(against) as source:
            audits = throughput_rounds(scratch, rounds, filled.records, filled.manifest, filled.order_ids,
                                       (against, source) if against else None, with_lake)
    with isolated(f"bench_{run}_lat", customers) as scratch:
        result = latency(scratch, latency_orders, rate, customers)
    print(f"latency at {result['written_rate']:.0f} orders/s written (asked {result['rate']:.0f}) over "
          f"{result['orders']:,} orders, 2 workers ({load_note()}): "
          f"commit -> order_final p50 {result['e2e'][0]:.0f} ms, p99 {result['e2e'][1]:.0f} ms; "
          f"of which commit -> CDC record p50 {result['cdc'][0]:.0f} ms, p99 {result['cdc'][1]:.0f} ms "
          f"(ratio p99 {result['e2e'][1] / result['cdc'][1]:.2f}x)")
    print(f"  audit: {result['audit'].summary()}; worker RSS {', '.join(f'{r:.0f}' for r in result['rss'])} MB; "
          f"clock started once the group had settled ({result['settled_s']:.1f} s)")
    code, line = audit_verdict([*audits, ("latency, ours x2", result["audit"])])
    print(line)
    if code:
        raise typer.Exit(code)


if __name__ == "__main__":
    cli.run(main)
