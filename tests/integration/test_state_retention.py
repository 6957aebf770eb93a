"""Bounded state: an emitted order keeps a marker; a cancelled order's state is dropped after
STATE_RETENTION_S, in RocksDB and (a tombstone) in the changelog."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from cdc.topics import read_to_end
from source import database, generate
from source.traffic import CancelOrder, InsertDetail, InsertOrder
from tests.integration.scratch_stream import scratch_stream
from tests.integration.waiting import wait_for

RETENTION_S = 2.0


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=1, web_port=16566, state_retention_s=RETENTION_S) as running:
        yield running


def status(worker, order_id: str) -> str | None:
    answer = httpx.get(f"{worker.url}/orders/{order_id}", timeout=5, follow_redirects=True)
    return answer.json().get("status") if answer.status_code == 200 else None


def test_a_cancelled_orders_state_is_dropped_after_the_retention_and_an_emitted_one_keeps_its_marker(stream):
    settings, (worker,) = stream
    cancelled, completed = str(uuid.uuid4()), str(uuid.uuid4())
    connection = database.connect(settings)
    cursor = connection.cursor()
    for write in (InsertOrder(cancelled, 1, 1, 1, 2), InsertDetail(cancelled, 5, 1), CancelOrder(cancelled),
                  InsertOrder(completed, 1, 1, 1, 1), InsertDetail(completed, 5, 1)):
        generate.execute(cursor, write)

    assert wait_for(lambda: status(worker, completed) == "emitted", timeout_s=60)
    assert wait_for(lambda: (worker.stats() or {}).get("counts", {}).get("cancelled_states_dropped", 0) >= 1,
                    timeout_s=30 + RETENTION_S)
    assert status(worker, cancelled) is None  # 404: nothing known of it any more
    assert status(worker, completed) == "emitted"
    changelog = [m for m in read_to_end(settings, f"{settings.stream_app_id}-order_progress-changelog", raw=True)
                 if m.key == orjson.dumps(cancelled)]
    assert changelog and changelog[-1].value is None  # a tombstone: a recovery forgets it too
    assert changelog[0].value is not None and orjson.loads(changelog[0].value)["x"] in (False, True)
