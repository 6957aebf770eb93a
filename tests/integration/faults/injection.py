"""What every fault test does: run orders through a scratch stream, inject a fault while
they flow, then check order_final against the generator's manifest and time the recovery.

Recovery time is the longest pause in order_final's appends while orders were flowing:
with orders written at a steady rate, output stops only while the pipeline is down, so the
longest gap between consecutive order_final messages measures the outage as users see it.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
from confluent_kafka import Consumer, TopicPartition

from cdc.topics import TopicMissing, read_to_end, read_topics
from config import Settings
from source.order_final_audit import AlertAudit, Audit, audit, audit_alerts, bulk_orders, misenriched
from stack import control, process
from stack.install import Toolchain
from stack.services import Redis, Service, StackLayout, all_services
from stack.workers import Worker
from tests.integration.scratch_stream import go_past, sentinels, write_orders


ALERT_WAIT_S = 90  # past the 30 s alert check period, and a worker's restart and recovery

@dataclass(frozen=True)
class Scale:
    orders: int  # per run under load
    rate: float  # orders/s written while faults happen
    fault_every_s: float
    workers: int

    @classmethod
    def short(cls) -> Scale:
        return cls(orders=3000, rate=150, fault_every_s=6, workers=3)

    @classmethod
    def long(cls) -> Scale:
        return cls(orders=20_000, rate=200, fault_every_s=10, workers=3)


@dataclass(frozen=True)
class FaultRow:
    fault: str
    runs: int  # faults injected
    orders: int
    duplicates: int
    missing: int
    recovery_s: float

    @staticmethod
    def markdown(rows: list[FaultRow]) -> str:
        lines = ["| fault | runs | orders | duplicates | missing | recovery (longest output pause) |",
                 "|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {r.fault} | {r.runs} | {r.orders:,} | {r.duplicates} | {r.missing} | {r.recovery_s:.1f} s |"
                  for r in rows]
        return "\n".join(lines)


@dataclass(frozen=True)
class Outcome:
    manifest: dict
    audit: Audit
    longest_pause_s: float
    found_dead: int = 0  # workers that had exited by the end of the writing (then restarted)
    alerts: AlertAudit | None = None
    misenriched: tuple[str, ...] = ()  # order_final records without their customer or payment method
    wrong: tuple[str, ...] = ()  # for the first orders with wrong contents: what was expected, what came

    @property
    def exact(self) -> bool:
        """order_final exact, each alert once and none missing, every order enriched."""
        return self.audit.exact and (self.alerts is None or self.alerts.exact) and not self.misenriched

    def summary(self) -> str:
        found = self.audit
        named = "".join(f"; {finding} e.g. {sorted(order_ids)[:5]}" for finding, order_ids in (
            ("missing", found.missing), ("duplicated", found.duplicates), ("wrong contents", found.wrong_contents),
            ("unexpected", found.unexpected)) if order_ids)
        return (f"{found.summary()}{named}; {self.alerts.summary() if self.alerts else 'alerts not read'}; "
                f"misenriched {len(self.misenriched)} {list(self.misenriched[:5])}"
                + "".join(f"\n{difference}" for difference in self.wrong))

    @property
    def complete(self) -> int:
        return self.manifest["counts"]["complete"]


def longest_pause(append_times_ms: list[int]) -> float:
    times = sorted(append_times_ms)
    return max((b - a for a, b in zip(times, times[1:])), default=0) / 1000


def run_under_fault(settings: Settings, workers: list[Worker], scale: Scale,
                    inject: Callable[[threading.Event], int], drain_timeout_s: float = 300) -> tuple[Outcome, int]:
    """Write `scale.orders` at `scale.rate` while `inject(writing)` runs in this thread (it
    returns the number of faults it injected once `writing` is cleared); then restart any
    worker left down and read order_final until every complete order has arrived."""
    manifest: dict = {}
    failure: list[BaseException] = []
    writing = threading.Event()
    writing.set()

    def write() -> None:
        try:
            manifest.update(write_orders(settings, scale.orders, rate=scale.rate))
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failure.append(error)
        finally:
            writing.clear()

    writer = threading.Thread(target=write, name="order-writer")
    writer.start()
    try:
        injected = inject(writing)
    finally:
        writer.join()
    if failure:
        raise failure[0]
    dead = [worker for worker in workers if worker.pid() is None]
    for worker in dead:
        worker.start()
    outcome = collect(settings, manifest, drain_timeout_s)
    return replace(outcome, found_dead=len(dead)), injected


def collect(settings: Settings, manifest: dict, timeout_s: float) -> Outcome:
    """order_final once every complete order arrived and the workers went past everything
    written (sentinel orders, so late duplicates are in too); or all that arrived within
    `timeout_s` (the audit then names what is missing)."""
    expected = set(manifest["complete"])
    try:
        read_topics(settings, [settings.order_final_topic], timeout_s=timeout_s,
                    until=lambda messages: expected <= {m.value["order_id"] for m in messages})
        go_past(settings)
    except TimeoutError:
        pass
    messages = [m for m in read_to_end(settings, settings.order_final_topic) if m.value["order_id"] not in sentinels(settings)]
    finals = [m.value for m in messages]
    found = audit(manifest, finals)
    return Outcome(manifest, found, longest_pause([m.timestamp_ms for m in messages]),
                   alerts=audit_alerts(manifest, owed_alerts(settings, manifest),
                                       bulk_quantity=settings.alert_bulk_quantity,
                                       bulk_products=settings.alert_bulk_products),
                   misenriched=tuple(misenriched(finals)),
                   wrong=tuple(differences(manifest, finals, found.wrong_contents[:3])))


def differences(manifest: dict, finals: list[dict], order_ids: list[str]) -> Iterator[str]:
    """Each order's first order_final beside what the manifest expected."""
    for order_id in order_ids:
        received = next(final for final in finals if final["order_id"] == order_id)
        yield f"{order_id}: expected {manifest['complete'][order_id]}, received {received}"


def owed_alerts(settings: Settings, manifest: dict) -> list[dict]:
    """order_alerts once every bulk alert the manifest owes has arrived (or the wait is over),
    plus 3 s for late duplicates. An alert whose claim or send failed (Redis away, a worker
    killed between the order's two acknowledgements) goes out at the next alert check, up to
    ALERT_CHECK_S (30 s with the default STALL_AFTER_S) after the faults, or after the new
    owner's recovery: later than order_final's last record, but not lost."""
    owed = bulk_orders(manifest, bulk_quantity=settings.alert_bulk_quantity,
                       bulk_products=settings.alert_bulk_products)
    started = time.monotonic()
    while not owed <= {alert["order_id"] for alert in read_alerts(settings) if alert["kind"] == "bulk"}:
        if time.monotonic() - started > ALERT_WAIT_S:
            break
        time.sleep(1)
    print(f"owed bulk alerts: waited {time.monotonic() - started:.1f} s after order_final for {len(owed)}")
    time.sleep(3)
    return read_alerts(settings)


def read_alerts(settings: Settings) -> list[dict]:
    try:
        return [m.value for m in read_to_end(settings, settings.order_alerts_topic)]
    except TopicMissing:  # no alert raised yet: the worker creates the topic, Kafka lists it a moment later
        return []


def every(interval_s: float, writing: threading.Event, action: Callable[[], None]) -> int:
    """Run `action` every `interval_s` while orders are being written; how many times it ran."""
    count = 0
    while sleep_while(writing, interval_s):
        action()
        count += 1
    return count


def sleep_while(writing: threading.Event, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not writing.is_set():
            return False
        time.sleep(0.1)
    return True


def once_a_third_in(scale: Scale, action: Callable[[], None]) -> Callable[[threading.Event], int]:
    """An injector: `action()` once, a third of the way through the writing."""
    def inject(writing: threading.Event) -> int:
        if not sleep_while(writing, scale.orders / scale.rate / 3):
            return 0
        action()
        return 1
    return inject


def record(fault_table: list[FaultRow], name: str, scale: Scale, injected: int, outcome: Outcome) -> None:
    result = outcome.audit
    fault_table.append(FaultRow(name, injected, scale.orders, sum(result.duplicates.values()),
                                len(result.missing), outcome.longest_pause_s))


def service(settings: Settings, name: str) -> Service:
    return next(s for s in all_services(settings) if s.name == name)


def restart(target: Service, *, kill: bool = False, down_s: float = 0.0,
            while_down: Callable[[], None] = lambda: None) -> None:
    """Stop a stack service (SIGTERM, or SIGKILL as a crash), keep it down `down_s` (and
    `while_down()`), start it."""
    pidfile = target.layout.pidfile(target.name)
    if kill:
        pid = process.running_pid(pidfile)
        if pid is not None:
            process.signal_group(pid, signal.SIGKILL)
            _wait_gone(pid)
        pidfile.unlink(missing_ok=True)
    else:
        process.stop(pidfile, grace_s=60)
    try:
        time.sleep(down_s)
        while_down()
    finally:
        control.up([target], timeout_s=120)


def _wait_gone(pid: int, timeout_s: float = 30) -> None:
    try:
        psutil.Process(pid).wait(timeout=timeout_s)
    except psutil.NoSuchProcess:
        pass


def free_port() -> int:
    """A port no one listens on now (a fixed one could be held by a run killed before its cleanup)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def scratch_redis(settings: Settings, home: Path, port: int, password: str) -> Iterator[Service]:
    """A Redis of the test's own (with `password`; none if empty), started by the stack's own Redis service."""
    redis_settings = settings.model_copy(update={
        "redis_url": f"redis://:{password}@127.0.0.1:{port}/2", "redis_admin_url": None, "stack_home": home})
    server = Redis(redis_settings, StackLayout(home), Toolchain(settings.stack_cache))
    control.up([server], timeout_s=30)
    try:
        yield server
    finally:
        process.stop(server.layout.pidfile(server.name))


def cdc_records(settings: Settings) -> int:
    """Records in the CDC topics the stream reads (every one counts as taken in)."""
    consumer = Consumer({**settings.kafka_client_config(), "group.id": f"count-{uuid.uuid4()}"})
    try:
        total = 0
        for table in ("orders", "order_details"):
            for partition in range(settings.topic_partitions):
                low, high = consumer.get_watermark_offsets(TopicPartition(settings.cdc_topic(table), partition),
                                                           timeout=10)
                total += high - low
        return total
    finally:
        consumer.close()


def replayed_cdc_records(settings: Settings) -> int:
    """CDC records that repeat an earlier one's binlog position: Kafka Connect's replays."""
    total = cdc_records(settings)
    messages = read_topics(settings, [settings.cdc_topic("orders"), settings.cdc_topic("order_details")],
                           until=lambda read: len(read) >= total, timeout_s=60)
    changes = [(m.topic, m.value["source"]["file"], m.value["source"]["pos"], m.value["source"].get("row"))
               for m in messages if m.value is not None]
    return len(changes) - len(set(changes))
