"""Bounded state: an emitted order keeps a marker, and both a cancelled order's state and an
emitted order's marker are dropped after STATE_RETENTION_S, in RocksDB and (a tombstone) in
the changelog."""

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

RETENTION_S = 4.0


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=1, web_port=16566, state_retention_s=RETENTION_S) as running:
        yield running


def status(worker, order_id: str) -> str | None:
    answer = httpx.get(f"{worker.url}/orders/{order_id}", timeout=5, follow_redirects=True)
    return answer.json().get("status") if answer.status_code == 200 else None


def test_a_finished_orders_state_is_dropped_after_the_retention_in_the_table_and_its_changelog(stream):
    settings, (worker,) = stream
    cancelled, completed = str(uuid.uuid4()), str(uuid.uuid4())
    connection = database.connect(settings)
    cursor = connection.cursor()
    for write in (InsertOrder(cancelled, 1, 1, 1, 2), InsertDetail(cancelled, 5, 1), CancelOrder(cancelled),
                  InsertOrder(completed, 1, 1, 1, 1), InsertDetail(completed, 5, 1)):
        generate.execute(cursor, write)

    assert wait_for(lambda: status(worker, completed) == "emitted", timeout_s=60)  # its marker
    counts = lambda: (worker.stats() or {}).get("counts", {})  # noqa: E731
    assert wait_for(lambda: counts().get("cancelled_states_dropped", 0) >= 1
                    and counts().get("emitted_markers_dropped", 0) >= 1, timeout_s=30 + RETENTION_S)
    # A drop is counted when it is made; its tombstone reaches the changelog with the table's
    # next flush of buffered writes, so the changelog is read until both are there.
    topic, changelog = f"{settings.stream_app_id}-order_progress-changelog", []

    def both_tombstoned() -> bool:
        changelog[:] = read_to_end(settings, topic, raw=True)
        last = {m.key: m.value for m in changelog}
        return all(last.get(orjson.dumps(order_id), b"") is None for order_id in (cancelled, completed))

    wait_for(both_tombstoned, timeout_s=30, every_s=1)
    for order_id in (cancelled, completed):
        assert status(worker, order_id) is None  # 404: nothing known of it any more
        writes = [m.value for m in changelog if m.key == orjson.dumps(order_id)]
        assert writes and writes[0] is not None and writes[-1] is None  # a tombstone: a recovery forgets it too
    marker_written = [orjson.loads(m.value) for m in changelog if m.key == orjson.dumps(completed) and m.value]
    assert type(marker_written[-1]["e"]) is int  # the marker's time, where its retention starts
