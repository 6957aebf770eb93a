"""Reference rows: their codec, and the store every worker keeps them in (RocksDB, no services)."""

from __future__ import annotations

import re

import orjson
import pytest

from agents.completion_rule import completed_order
from streams.codec import CodecError, ReferenceRow, Tombstone, decode_reference
from tables.order_state import OrderState
from tables.reference_data import ReferenceData
from tests.unit.test_codec import envelope

ALICE = {"id": 7, "name": "Alice", "email": "alice@example.com", "phone": "1", "city": "Lyon",
         "created_at": 1700000000000}


@pytest.mark.parametrize("schemas", [False, True])
def test_a_customer_row_keeps_the_fields_order_final_carries(schemas: bool):
    row = decode_reference("customers", b'{"id":7}', envelope("u", before=ALICE, after=ALICE, schemas=schemas))

    assert row == ReferenceRow("customers", 7, {"name": "Alice", "email": "alice@example.com", "city": "Lyon"})


def test_a_deleted_row_has_no_fields_and_its_tombstone_changes_nothing():
    assert decode_reference("customers", b'{"id":7}', envelope("d", before=ALICE)) == ReferenceRow("customers", 7, None)
    assert decode_reference("customers", b'{"id":7}', None) == Tombstone()


@pytest.mark.parametrize(("key", "row", "reason"), [
    (b'{"id":7}', {**ALICE, "id": "seven"}, "customers: Expected `int`, got `str` - at `$.after.id`"),
    (b'{"id":8}', ALICE, "does not match customers.id 7"),
    (b'{"id":7}', {**ALICE, "city": None}, "customers.city must be str"),
])
def test_a_malformed_row_says_what_is_wrong(key: bytes, row: dict, reason: str):
    with pytest.raises(CodecError, match=re.escape(reason)):
        decode_reference("customers", key, envelope("c", after=row))


def test_the_store_keeps_the_last_change_of_each_row_and_where_to_read_next(tmp_path):
    store = ReferenceData(tmp_path / "reference")
    store.apply([ReferenceRow("customers", 7, {"name": "A", "email": "a@x", "city": "Lyon"}),
                 ReferenceRow("customers", 8, {"name": "B", "email": "b@x", "city": "Oslo"}),
                 ReferenceRow("payment_method", 3, {"name": "Card", "provider": "Visa"})],
                {("mysql.db.customers", 0): 2, ("mysql.db.payment_method", 1): 1})
    store.apply([ReferenceRow("customers", 7, {"name": "A", "email": "a@x", "city": "Rome"}),
                 ReferenceRow("customers", 8, None)], {("mysql.db.customers", 0): 4})
    store.close()

    reopened = ReferenceData(tmp_path / "reference")
    assert orjson.loads(orjson.dumps(reopened.customer(7))) == {"id": 7, "name": "A", "email": "a@x", "city": "Rome"}
    assert reopened.customer(8) is None and reopened.customer(None) is None
    assert orjson.loads(orjson.dumps(reopened.payment_method(3))) == {"id": 3, "name": "Card", "provider": "Visa"}
    assert dict(reopened.next_offsets()) == {("mysql.db.customers", 0): 4, ("mysql.db.payment_method", 1): 1}
    assert (reopened.count("customers"), reopened.count("payment_method")) == (1, 1)
    reopened.close()


def test_order_final_embeds_the_reference_rows_as_stored_or_null(tmp_path):
    store = ReferenceData(tmp_path / "reference")
    store.apply([ReferenceRow("payment_method", 3, {"name": "Card", "provider": "Visa"})], {})
    state = OrderState(customer_id=7, payment_method_id=3, num_products=0)

    value = orjson.loads(orjson.dumps(completed_order("o-1", state, "2026-01-01T00:00:00Z",
                                                      store.customer(7), store.payment_method(3))))

    assert value["customer"] is None
    assert value["payment_method"] == {"id": 3, "name": "Card", "provider": "Visa"}
    store.close()
