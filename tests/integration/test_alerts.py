"""Alerts on order_alerts, each exactly once: bulk, cancelled_after_details, stalled."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from cdc.topics import read_to_end
from source import database, generate
from source.traffic import CancelOrder, InsertDetail, InsertOrder
from tests.integration.scratch_stream import go_past, scratch_stream
from tests.integration.waiting import wait_for

STALL_AFTER_S = 3.0


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=1, web_port=16666, stall_after_s=STALL_AFTER_S,
                        alert_bulk_quantity=10) as running:
        yield running


def alerts(settings, order_ids: set[str]) -> list[dict]:
    try:
        return [m.value for m in read_to_end(settings, settings.order_alerts_topic) if m.value["order_id"] in order_ids]
    except LookupError:  # the topic is created by the worker as it starts
        return []


def finals(settings, order_ids: set[str]) -> list[dict]:
    return [m.value for m in read_to_end(settings, settings.order_final_topic) if m.value["order_id"] in order_ids]


def test_each_alert_kind_is_raised_once_and_a_stalled_order_still_completes(stream):
    settings, (worker,) = stream
    bulk, cancelled, stalled, plain = (str(uuid.uuid4()) for _ in range(4))
    connection = database.connect(settings)
    cursor = connection.cursor()
    for write in (InsertOrder(bulk, 1, 1, 1, 2), InsertDetail(bulk, 1, 5), InsertDetail(bulk, 2, 5),
                  InsertOrder(cancelled, 1, 1, 1, 2), InsertDetail(cancelled, 1, 1), CancelOrder(cancelled),
                  InsertOrder(stalled, 1, 1, 1, 2), InsertDetail(stalled, 1, 1),
                  InsertOrder(plain, 1, 1, 1, 1), InsertDetail(plain, 1, 1)):
        generate.execute(cursor, write)
    ours = {bulk, cancelled, stalled, plain}

    assert wait_for(lambda: len(alerts(settings, ours)) >= 3, timeout_s=60 + STALL_AFTER_S), alerts(settings, ours)
    generate.execute(cursor, InsertDetail(stalled, 2, 1))  # completes after its stalled alert
    assert wait_for(lambda: len(finals(settings, ours)) >= 3, timeout_s=60)
    quiet = go_past(settings, stalled=True)  # an alert check ran after all of the above: any second alert is out

    raised = alerts(settings, ours)
    assert Counter((a["kind"], a["order_id"]) for a in raised) == Counter(
        {("bulk", bulk): 1, ("cancelled_after_details", cancelled): 1, ("stalled", stalled): 1})
    by_kind = {a["kind"]: a for a in raised}
    assert by_kind["bulk"]["total_quantity"] == 10 and by_kind["bulk"]["products_received"] == 2
    assert by_kind["cancelled_after_details"]["details_seen"] == 1
    assert by_kind["stalled"]["num_products"] == 2 and by_kind["stalled"]["products_received"] == 1
    assert Counter(f["order_id"] for f in finals(settings, ours)) == Counter({bulk: 1, stalled: 1, plain: 1})
    counts = worker.stats()["counts"]
    assert (counts.get("alerts_bulk"), counts.get("alerts_stalled"), counts.get("alerts_cancelled_after_details")) \
        == (1, 1 + len(quiet), 1)
