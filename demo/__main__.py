"""`python -m demo`: the main job on the local stack, end to end.

Reference data, the CDC connector, two Faust workers, orders from the generator (chaos on),
the continuous lake (started beside the workers, waited for until it has caught up), a wait
until `order_final` holds every complete order of the manifest and until Gold holds every
order with the status the manifest gives it, then a report (with the lake's freshness). Exits 1
on any check the report's result line names (missing, duplicate, wrong-content or
unexpected orders, records without their customer, an unclean whole-database audit), or
when the lake's statuses differ from the manifest. Leaves the stack, the workers and the
continuous lake running; `make down` stops them.
"""

from __future__ import annotations

import secrets
from collections import Counter
import time
import uuid
from pathlib import Path
from typing import Annotated

import orjson
import typer
from confluent_kafka import Consumer
from tqdm import tqdm

from cdc import rest
from cdc.connector import connector_config
from cdc.topics import TopicMissing, last_appends, read_to_end, wait_for_records
from config import Settings, settings
from config.cli import run
from demo.lake import DemoLake
from demo.report import DemoReport, percentiles
from source import database, generate
from source.order_final_audit import audit
from source.reconcile import reconcile
from source.traffic import ChaosMix, Truth, plan
from stack.watcher import start_watcher
from stack.workers import start_workers, wait_for_group

def read_finals(settings: Settings, wanted: set[str], *, timeout_s: float) -> tuple[list[dict], list[float]]:
    """This run's order_final records (values, and their broker timestamps in ms), read until
    every `wanted` order has arrived, then 3 s more to catch late duplicates."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"demo-{uuid.uuid4()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([settings.order_final_topic])
    values, stamps, seen = [], [], set()
    deadline, settled_at = time.monotonic() + timeout_s, None
    with tqdm(total=len(wanted), unit="orders", desc="order_final") as bar:
        while time.monotonic() < deadline and (settled_at is None or time.monotonic() < settled_at):
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() or message.value() is None:
                    continue
                value = orjson.loads(message.value())
                if value.get("order_id") in wanted or value.get("order_id") in seen:
                    values.append(value)
                    stamps.append(message.timestamp()[1])
                    if value["order_id"] in wanted:
                        wanted.discard(value["order_id"])
                        seen.add(value["order_id"])
                        bar.update()
            if not wanted and settled_at is None:
                settled_at = time.monotonic() + 3
    consumer.close()
    return values, stamps


def alert_counts(settings: Settings, order_ids: set[str]) -> Counter:
    """This run's alerts on order_alerts so far, by kind (`stalled` ones come STALL_AFTER_S
    after an order's last change: most of them after the report)."""
    try:
        return Counter(m.value["kind"] for m in read_to_end(settings, settings.order_alerts_topic)
                       if isinstance(m.value, dict) and m.value.get("order_id") in order_ids)
    except TopicMissing:
        return Counter()


def main(
    orders: Annotated[int, typer.Option(help="Orders to generate.", min=1)] = 25_000,
    customers: Annotated[int, typer.Option(help="Customers in the reference data.", min=1)] = 1_000_000,
    workers: Annotated[int, typer.Option(help="Faust workers to run.", min=1)] = 2,
    chaos: Annotated[bool, typer.Option(help="Alter some orders (update, cancel, redo, abandon).")] = True,
    rate: Annotated[float, typer.Option(help="Orders started per second; 0 = as fast as possible.", min=0)] = 0.0,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for order_final, and for the lake.", min=1)] = 600.0,
    manifest: Annotated[Path, typer.Option(help="Where to write the ground truth.")] = Path(".stack/manifest.json"),
) -> None:
    """Run the whole pipeline once on the local stack and report against the ground truth."""
    connection = database.connect(settings)
    database.apply_schema(connection)
    typer.echo(f"reference data: {database.load_reference(connection, customers, 42):,} customers inserted")
    connect = rest.client(settings)
    rest.put_config(connect, settings.cdc_connector_name, connector_config(settings))
    rest.wait_running(connect, settings.cdc_connector_name)
    typer.echo(f"connector watcher running (pid {start_watcher(settings)}): restarts failed tasks; "
               "`python -m stack down` stops it")
    # Debezium streams the binlog only once its initial snapshot is done: orders written during
    # a first run's snapshot of 1,000,000 customers would reach Kafka after it (about 50 s here),
    # and complete before their customers were read. A later run finds them captured already.
    reference_rows = database.count_rows(connection, "customers")
    snapshot_s = wait_for_records(settings, settings.cdc_topic("customers"), reference_rows, timeout)
    typer.echo(f"connector {settings.cdc_connector_name} running; starting {workers} Faust workers "
               "(each reads the reference data before it joins)")
    started = start_workers(settings, workers)
    wait_for_group(settings, started)  # orders written before would wait for the rebalance
    typer.echo("workers: " + ", ".join(f"{w.name} {w.url}" for w in started))
    demo_lake = DemoLake(settings)
    typer.echo(f"continuous lake running (pid {demo_lake.pid}; `python -m stack down` stops it); "
               "waiting until it has applied what the CDC topics hold")
    typer.echo(f"continuous lake caught up in {demo_lake.wait_caught_up(timeout, progress=True):.0f} s "
               f"(every record the CDC topics held applied; its peak memory so far {demo_lake.peak_memory()})")
    run_orders(settings, database.connect(settings, role="shop"), demo_lake, orders=orders, chaos=chaos, rate=rate,
               timeout=timeout, manifest=manifest, reference=(reference_rows, snapshot_s))


def run_orders(settings: Settings, connection, demo_lake: DemoLake, *, orders: int, chaos: bool, rate: float,
               timeout: float, manifest: Path, reference: tuple[int, float]) -> None:
    """The orders, order_final and the lake checked against the manifest, the report."""
    seed = secrets.randbelow(2**31)
    committed: dict[str, float] = {}
    truth = Truth()
    writes = plan(orders, seed=seed, customers=database.count_rows(connection, "customers"),
                  chaos=ChaosMix() if chaos else ChaosMix.off())

    def on_commit(write) -> None:
        committed[write.order_id] = time.time() * 1000  # the order's last commit, once all are written

    generate.run(connection, writes, total_orders=orders, rate=rate, truth=truth, on_commit=on_commit)
    ground_truth = generate.write_manifest(manifest, truth, {"seed": seed, "orders": orders})
    complete = set(ground_truth["complete"])
    typer.echo(f"manifest: {manifest} ({len(complete):,} complete orders)")

    values, stamps = read_finals(settings, set(complete), timeout_s=timeout)
    first_seen: dict[str, float] = {}
    for value, stamp in zip(values, stamps):
        first_seen.setdefault(value["order_id"], stamp)
    latencies = [stamp - committed[order_id] for order_id, stamp in first_seen.items()]
    cdc_appends = last_appends(settings, set(first_seen), since_ms=int(min(committed.values())) - 1000)
    cdc_latencies = [cdc_appends[order_id] - committed[order_id] for order_id in first_seen if order_id in cdc_appends]
    lake_check = demo_lake.check(ground_truth, timeout_s=timeout)
    whole_lake = demo_lake.whole(connection, timeout_s=timeout)
    lake_p50, lake_p99 = percentiles(demo_lake.freshness_s(committed, ground_truth))
    gold_counts, lake_report = demo_lake.report(timeout_s=timeout)
    report = DemoReport(ground_truth["counts"], audit(ground_truth, values), latencies, gold_counts,
                        reconcile(settings, settings.order_final_topic),
                        snapshot=reference,
                        unenriched=sum(value.get("customer") is None for value in values),
                        alerts=alert_counts(settings, {*complete, *ground_truth["incomplete"],
                                                       *ground_truth["cancelled"]}),
                        cdc_latencies_ms=cdc_latencies)
    typer.echo("\n".join(["", "demo report", *report.lines(), *lake_check.lines(), whole_lake.line(),
                           f"lake freshness      commit -> Gold fact_orders p50 {lake_p50:.1f} s, p99 {lake_p99:.1f} s"
                           " (an order's last commit -> the Gold commit with its final status)",
                           f"lake memory         the continuous lake's process at most {demo_lake.peak_memory()} "
                           "(VmHWM; Spark's deferred work runs in a JVM of its own)",
                           f"lake report         {lake_report.resolve()}"]))
    if not report.exact:
        raise typer.Exit(1)
    if not lake_check.exact:
        typer.echo("result: FAILED, the lake's order statuses differ from the manifest", err=True)
        raise typer.Exit(1)
    if not whole_lake.exact:
        typer.echo("result: FAILED, Gold's live orders differ from MySQL's", err=True)
        raise typer.Exit(1)


if __name__ == "__main__":
    run(main)
