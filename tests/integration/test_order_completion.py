"""The stream end to end: generator -> MariaDB -> Debezium -> Faust workers -> order_final."""

from __future__ import annotations

import random
import threading
import time

import pytest

from cdc import rest
from cdc.connector import connector_config, server_id
from cdc.topics import read_topics
from config import Settings
from source import database, generate
from source.audit import audit
from source.traffic import ChaosMix, Truth, plan
from stack.workers import start_workers

CUSTOMERS = 2000
ORDERS = 2000


@pytest.fixture
def stream(settings: Settings, unique_name: str):
    """A database, connector, topics and consumer group of this test's own."""
    with database.scratch_database(settings, unique_name) as scratch:
        scratch = scratch.model_copy(update={
            "stream_app_id": f"orderpipe-{unique_name}", "order_final_topic": f"order_final_{unique_name}",
            "dead_letter_topic": f"dead_letters_{unique_name}", "faust_web_port": 16066})
        db = database.connect(scratch)
        database.apply_schema(db)
        database.load_reference(db, CUSTOMERS, seed=3, progress=False)
        connect = rest.client(scratch.kafka_connect_url)
        name = scratch.cdc_connector_name
        rest.put_config(connect, name, connector_config(scratch, **{"database.server.id": server_id(name)}))
        rest.wait_running(connect, name)
        workers = start_workers(scratch, 2)
        try:
            yield scratch, workers
        finally:
            for worker in workers:
                worker.stop()
            rest.delete(connect, name)


def order_final(settings: Settings, expected: int, workers, timeout_s: float = 180) -> list[dict]:
    """order_final's values once `expected` have arrived, plus 3 s to catch any duplicate."""
    reached: list[float] = []

    def done(messages) -> bool:
        if len(messages) >= expected and not reached:
            reached.append(time.monotonic())
        return bool(reached) and time.monotonic() - reached[0] > 3

    try:
        messages = read_topics(settings, [settings.order_final_topic], until=done, timeout_s=timeout_s)
    except TimeoutError as error:
        pytest.fail(f"{error}; expected {expected}; workers: {[w.stats() for w in workers]}")
    return [m.value for m in messages]


def fresh_seed() -> int:
    """Order ids follow from the seed, and Redis remembers every id ever sent: never reuse one."""
    return random.SystemRandom().randrange(2**31)


def write_orders(settings: Settings, seed: int, rate: float) -> dict:
    truth = Truth()
    writes = plan(ORDERS, seed=seed, customers=CUSTOMERS, chaos=ChaosMix(0.1, 0.05, 0.1, 0.05))
    generate.run(database.connect(settings), writes, total_orders=ORDERS, rate=rate, truth=truth,
                 progress=False)
    return truth.manifest()


def test_two_workers_emit_each_complete_order_exactly_once(stream):
    settings, workers = stream

    manifest = write_orders(settings, seed=fresh_seed(), rate=0)
    emitted = order_final(settings, manifest["counts"]["complete"], workers)

    result = audit(manifest, emitted)
    assert result.exact, result.summary()
    assert manifest["counts"]["incomplete"] > 0 and manifest["counts"]["cancelled"] > 0
    # `completed` counts each worker's acknowledged order_final messages
    deadline = time.monotonic() + 30
    while True:
        counts = [worker.stats()["counts"] for worker in workers]
        recorded = sum(c.get("completed", 0) for c in counts)
        if recorded >= manifest["counts"]["complete"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(c.get("events_in", 0) > 0 for c in counts), counts  # both workers did work
    assert recorded == manifest["counts"]["complete"], counts


def test_a_worker_killed_mid_run_and_restarted_loses_and_duplicates_nothing(stream):
    settings, workers = stream
    manifest: dict = {}
    writer = threading.Thread(target=lambda: manifest.update(write_orders(settings, seed=fresh_seed(), rate=400)))

    writer.start()
    time.sleep(2)
    killed = workers[0].kill()
    time.sleep(2)
    workers[0].start()
    writer.join()
    workers[0].wait_ready()
    emitted = order_final(settings, manifest["counts"]["complete"], workers)

    assert killed is not None
    result = audit(manifest, emitted)
    assert result.exact, result.summary()
