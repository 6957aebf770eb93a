"""Source database -> Debezium -> Kafka, checked change by change against the generator's truth."""

from __future__ import annotations

from collections import Counter

import pytest

from cdc import rest
from cdc.connector import CDC_TABLES, connector_config, server_id
from config import Settings
from source import database, generate
from source.traffic import (CancelOrder, ChaosMix, DeleteDetail, InsertDetail, InsertOrder, Truth,
                            UpdateNumProducts, plan)
from cdc.topics import Message, read_topics, snapshot_done

CUSTOMERS = 300


@pytest.fixture
def scratch(settings: Settings, unique_name: str):
    """A database and connector of this test's own (topics mysql.<db>.<table>)."""
    with database.scratch_database(settings, unique_name) as scratch:
        connect = rest.client(scratch)
        yield scratch, connect
        rest.delete(connect, scratch.cdc_connector_name)


def expected_change_events(writes) -> tuple[Counter, int]:
    """(table, op) counts and tombstones that Debezium must emit for `writes`."""
    events, tombstones, details = Counter(), 0, Counter()
    for write in writes:
        match write:
            case InsertOrder():
                events["orders", "c"] += 1
            case InsertDetail(order_id):
                events["order_details", "c"] += 1
                details[order_id] += 1
            case DeleteDetail(order_id):
                events["order_details", "d"] += 1
                tombstones += 1
                details[order_id] -= 1
            case UpdateNumProducts():
                events["orders", "u"] += 1
            case CancelOrder(order_id):
                events["order_details", "d"] += details[order_id]
                events["orders", "d"] += 1
                tombstones += details.pop(order_id, 0) + 1
    return events, tombstones


def replay(messages: list[Message]) -> tuple[dict, dict]:
    """The source tables' final state as the CDC topics tell it."""
    orders, details = {}, {}
    for message in sorted(messages, key=lambda m: (m.topic, m.partition, m.offset)):
        if message.value is None:
            continue
        table, op = message.value["source"]["table"], message.value["op"]
        row = message.value["before"] if op == "d" else message.value["after"]
        if table == "orders":
            if op == "d":
                orders.pop(row["id"])
            else:
                orders[row["id"]] = row
        elif table == "order_details":
            if op == "d":
                details.pop((row["order_id"], row["product_id"]))
            else:
                details[row["order_id"], row["product_id"]] = row["quantity"]
    return orders, details


def test_every_change_reaches_its_topic_and_the_topics_agree_with_the_manifest(scratch):
    settings, connect = scratch
    db = database.connect(settings)
    database.apply_schema(db)
    database.load_reference(db, CUSTOMERS, seed=1, progress=False)
    truth = Truth()
    # given 20 orders written before the connector exists (they arrive as snapshot rows)
    generate.run(db, plan(20, seed=100, customers=CUSTOMERS, chaos=ChaosMix.off()), total_orders=20,
                 rate=0, truth=truth, progress=False)
    before = truth.manifest()
    topics = [settings.cdc_topic(table) for table in CDC_TABLES]

    # when the connector is registered, its snapshot completes, and 200 chaotic orders follow
    rest.put_config(connect, settings.cdc_connector_name, connector_config(
        settings, **{"database.server.id": server_id(settings.cdc_connector_name)}))
    rest.wait_running(connect, settings.cdc_connector_name)
    read_topics(settings, topics, until=snapshot_done)
    writes = plan(200, seed=101, customers=CUSTOMERS, chaos=ChaosMix(0.15, 0.15, 0.15, 0.15))
    generate.run(db, writes, total_orders=200, rate=0, truth=truth, progress=False)
    expected, tombstones = expected_change_events(writes)
    snapshot_rows = CUSTOMERS + 12 + 20 + before["counts"]["detail_rows"]

    def all_arrived(seen: list[Message]) -> bool:
        return len(seen) >= snapshot_rows + sum(expected.values()) + tombstones

    messages = read_topics(settings, topics, until=all_arrived, timeout_s=120)

    # then the snapshot holds every row that existed, as op r
    changes = [m for m in messages if m.value is not None]
    snapshot = Counter(m.value["source"]["table"] for m in changes if m.value["op"] == "r")
    assert snapshot == {"customers": CUSTOMERS, "payment_method": 12, "orders": 20,
                        "order_details": before["counts"]["detail_rows"]}
    # and each later write arrived once, with its op
    streamed = Counter((m.value["source"]["table"], m.value["op"]) for m in changes if m.value["op"] != "r")
    assert streamed == expected
    assert expected["orders", "u"] > 0 and expected["orders", "d"] > 0 and expected["order_details", "d"] > 0
    # and every delete is followed by a tombstone for the same key
    for delete in (m for m in changes if m.value["op"] == "d"):
        later = [m for m in messages if (m.topic, m.partition) == (delete.topic, delete.partition)
                 and m.offset > delete.offset and m.key == delete.key]
        assert later and later[0].value is None, delete
    assert sum(m.value is None for m in messages) == tombstones

    # and the topics, replayed, tell the manifest's story
    manifest = truth.manifest()
    orders, details = replay(messages)
    received = Counter(order_id for order_id, _ in details)
    complete = {order_id for order_id, row in orders.items() if received[order_id] == row["num_products"]}
    assert complete == set(manifest["complete"])
    assert set(orders) - complete == set(manifest["incomplete"])
    assert not set(orders) & set(manifest["cancelled"])
    for order_id, truth_row in manifest["complete"].items():
        assert orders[order_id]["customer_id"] == truth_row["customer_id"]
        assert orders[order_id]["payment_method_id"] == truth_row["payment_method_id"]
        assert {(order_id, p["product_id"]): p["quantity"] for p in truth_row["products"]} == \
            {key: quantity for key, quantity in details.items() if key[0] == order_id}
    # and every change of an order sits in the same partition number of both topics
    partitions = {}
    for message in changes:
        if message.topic.endswith((".orders", ".order_details")):
            order_id = message.value["before" if message.value["op"] == "d" else "after"]
            order_id = order_id.get("order_id") or order_id["id"]
            assert message.key == order_id
            partitions.setdefault(order_id, set()).add(message.partition)
    assert all(len(found) == 1 for found in partitions.values())
    assert len(set().union(*partitions.values())) == settings.topic_partitions
