"""order_final carries the customer and payment method, read by every worker from their CDC topics."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Producer

from cdc.topics import TopicMissing, read_to_end
from source import database, generate
from source.traffic import InsertDetail, InsertOrder
from tests.integration.scratch_stream import go_past, scratch_stream
from tests.integration.waiting import wait_for


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=2, web_port=16466) as running:
        yield running


def place_order(settings, customer_id: int, payment_method_id: int) -> str:
    """A complete one-product order for the customer; its id."""
    order_id = str(uuid.uuid4())
    connection = database.connect(settings)
    cursor = connection.cursor()
    generate.execute(cursor, InsertOrder(order_id, customer_id, 1, payment_method_id, 1))
    generate.execute(cursor, InsertDetail(order_id, 42, 2))
    return order_id


def finals_of(settings, order_id: str) -> list[dict]:
    try:
        return [m.value for m in read_to_end(settings, settings.order_final_topic) if m.value["order_id"] == order_id]
    except TopicMissing:  # the worker creates it as it starts
        return []


def final_of(settings, order_id: str) -> dict:
    assert wait_for(lambda: finals_of(settings, order_id), timeout_s=90), f"order {order_id} not in order_final"
    go_past(settings)  # a second order_final for it would be out by now
    found = finals_of(settings, order_id)
    assert len(found) == 1
    return found[0]


def counts(workers) -> list[dict]:
    return [(worker.stats() or {}).get("counts", {}) for worker in workers]


def reference_read(workers) -> list[int]:
    return [c.get("reference_records_read", 0) for c in counts(workers)]


def change_customer(settings, workers, statement: str, records: int) -> None:
    """Run `statement` and wait until every worker has read its `records` CDC records."""
    before = reference_read(workers)
    connection = database.connect(settings)
    connection.cursor().execute(statement)
    assert wait_for(lambda: all(now >= then + records for now, then in zip(reference_read(workers), before)),
                    timeout_s=60), f"workers read {reference_read(workers)} reference records, {before} before"


def customer_row(settings, customer_id: int) -> dict:
    connection = database.connect(settings)
    cursor = connection.cursor()
    cursor.execute("SELECT id, name, email, city FROM customers WHERE id = %s", (customer_id,))
    return dict(zip(("id", "name", "email", "city"), cursor.fetchone()))


def test_order_final_carries_the_customer_and_payment_method_as_they_are_when_it_completes(stream):
    settings, workers = stream
    first = final_of(settings, place_order(settings, 7, 3))
    assert first["customer"] == customer_row(settings, 7)
    assert first["payment_method"]["id"] == 3 and set(first["payment_method"]) == {"id", "name", "provider"}
    assert (first["customer_id"], first["products"]) == (7, [{"product_id": 42, "quantity": 2}])

    change_customer(settings, workers, "UPDATE customers SET city = 'Changedville' WHERE id = 7", records=1)
    later = final_of(settings, place_order(settings, 7, 3))
    assert later["customer"] == {**customer_row(settings, 7), "city": "Changedville"}

    change_customer(settings, workers, "DELETE FROM customers WHERE id = 8", records=2)  # delete + tombstone
    unknown = final_of(settings, place_order(settings, 8, 3))
    assert unknown["customer"] is None and unknown["customer_id"] == 8
    assert unknown["payment_method"]["id"] == 3
    assert sum(c.get("unenriched_customer", 0) for c in counts(workers)) == 1
    assert final_of(settings, first["order_id"])["customer"]["city"] != "Changedville"  # sent as it was


def test_a_malformed_reference_row_is_dead_lettered_once_though_every_worker_reads_it(stream):
    settings, workers = stream
    topic = settings.cdc_topic("customers")
    before = reference_read(workers)
    producer = Producer(settings.kafka_client_config())
    producer.produce(topic, key=b'{"id":5}', value=b'{"op": "c", "after": {"id": "five"}}', partition=0)
    assert producer.flush(30) == 0
    # a worker counts a record once it has handled it, its dead letter acknowledged: past
    # this point every worker has, and a second letter would be on the topic
    assert wait_for(lambda: all(now > then for now, then in zip(reference_read(workers), before)),
                    timeout_s=60), "a worker did not read the malformed row"
    letters = [m for m in read_to_end(settings, settings.dead_letter_topic, raw=True)
               if dict(m.headers).get("topic") == topic.encode()]
    assert len(letters) == 1
    assert dict(letters[0].headers)["reason"] == b"customers: Expected `int`, got `str` - at `$.after.id`"
    assert sum(c.get("reference_dead_letters_by_another_worker", 0) for c in counts(workers)) == 1
