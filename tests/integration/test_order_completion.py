"""The stream end to end: generator -> MariaDB -> Debezium -> Faust workers -> order_final."""

from __future__ import annotations

import threading
import time

import orjson
import pytest
import redis

from agents.emission.guard import guard_key
from cdc.topics import read_topics
from source.order_final_audit import audit
from streams.topics import LEADER_SETTLE_S
from tests.integration.scratch_stream import order_final, scratch_stream, sentinels, uncommitted, write_orders

ORDERS = 2000


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name) as running:
        yield running


def test_two_workers_emit_each_complete_order_exactly_once(stream):
    settings, workers = stream

    manifest = write_orders(settings, ORDERS, rate=0)
    emitted = order_final(settings, manifest["counts"]["complete"], workers, manifest=manifest)

    result = audit(manifest, emitted)
    assert result.exact, result.summary()
    assert manifest["counts"]["incomplete"] > 0 and manifest["counts"]["cancelled"] > 0
    # `completed` counts each worker's acknowledged order_final messages, sentinels included
    sent = manifest["counts"]["complete"] + len(sentinels(settings))
    deadline = time.monotonic() + 30
    while True:
        counts = [worker.stats()["counts"] for worker in workers]
        recorded = sum(c.get("completed", 0) for c in counts)
        if recorded >= sent or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert all(c.get("events_in", 0) > 0 for c in counts), counts  # both workers did work
    assert recorded == sent, counts
    # every CDC record is committed once its changes are saved: nothing left for a restart to redo
    assert uncommitted(settings) == {}
    # the guard records where each order was sent, and order_final holds it there
    sent_at = {(m.partition, m.offset): m.value["order_id"]
               for m in read_topics(settings, [settings.order_final_topic], until=lambda m: len(m) >= len(emitted))}
    guard = redis.Redis.from_url(settings.redis_url)
    marks = {order_id: orjson.loads(guard.get(guard_key(order_id, settings.order_final_topic))) for order_id in manifest["complete"]}
    misplaced = {order_id: mark for order_id, mark in marks.items()
                 if sent_at.get((mark.get("partition"), mark.get("offset"))) != order_id}
    assert misplaced == {}, f"{len(misplaced)} guard marks point elsewhere, e.g. {list(misplaced.items())[:3]}"


def outputs_ready_after_ms(worker) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready = ((worker.stats() or {}).get("counts") or {}).get("outputs_ready_after_ms")
        if ready is not None:
            return ready
        time.sleep(0.2)
    raise TimeoutError(f"{worker.name}: no outputs_ready_after_ms in /stats after 60 s")


def test_a_restarted_worker_sends_without_waiting_for_its_existing_output_topics_to_settle(stream):
    settings, workers = stream
    first_start = [outputs_ready_after_ms(worker) for worker in workers]

    workers[0].stop()
    workers[0].start()
    workers[0].wait_ready()
    restarted = outputs_ready_after_ms(workers[0])
    manifest = write_orders(settings, 200, rate=0)
    emitted = order_final(settings, manifest["counts"]["complete"], workers, manifest=manifest)

    assert max(first_start) >= LEADER_SETTLE_S * 1000, first_start  # the workers created them
    assert restarted < LEADER_SETTLE_S * 1000, restarted
    result = audit(manifest, emitted)
    assert result.exact, result.summary()


def test_a_worker_killed_mid_run_and_restarted_loses_and_duplicates_nothing(stream):
    settings, workers = stream
    manifest: dict = {}
    writer = threading.Thread(target=lambda: manifest.update(write_orders(settings, ORDERS, rate=400)))

    writer.start()
    time.sleep(2)
    killed = workers[0].kill()
    time.sleep(2)
    workers[0].start()
    writer.join()
    workers[0].wait_ready()
    emitted = order_final(settings, manifest["counts"]["complete"], workers, manifest=manifest)

    assert killed is not None
    result = audit(manifest, emitted)
    assert result.exact, result.summary()
