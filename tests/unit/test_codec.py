from __future__ import annotations

import re

import orjson
import pytest

from streams.codec import (CodecError, DetailChange, OrderChange, Position, Tombstone, Truncate, committed_position,
                           decode_detail, decode_order, decode_reference, offset_connector)
from streams.runtime.connect_offsets import ConnectorPosition

SOURCE = {"file": "binlog.000003", "pos": 1234, "row": 1, "ts_ms": 1700000000000, "snapshot": "false",
          "table": "orders"}
ORDER = {"id": "0b4c7a9e-1111-4222-8333-444455556666", "customer_id": 42, "store_id": 3,
         "payment_method_id": 5, "num_products": 2, "timestamp": 1700000000123}


def envelope(op: str, before=None, after=None, *, schemas: bool = False, source=SOURCE) -> bytes:
    payload = {"before": before, "after": after, "source": source, "op": op, "ts_ms": 1}
    return orjson.dumps({"schema": {"type": "struct"}, "payload": payload} if schemas else payload)


@pytest.mark.parametrize("schemas", [False, True], ids=["schemas.enable=false", "schemas.enable=true"])
@pytest.mark.parametrize("op", ["c", "u", "r"])
def test_an_order_insert_update_or_snapshot_row_decodes(op: str, schemas: bool):
    change = decode_order(orjson.dumps(ORDER["id"]), envelope(op, after=ORDER, schemas=schemas))

    assert change == OrderChange(ORDER["id"], op, 42, 5, 2, Position(3, 1234, 1), 1700000000000)


def test_an_order_delete_reads_the_before_image():
    change = decode_order(None, envelope("d", before=ORDER))

    assert (change.op, change.order_id, change.num_products) == ("d", ORDER["id"], None)


def test_a_detail_change_decodes_with_and_without_quantity():
    row = {"order_id": ORDER["id"], "product_id": 1001, "quantity": 3}

    assert decode_detail(None, envelope("c", after=row, schemas=True)) == \
        DetailChange(ORDER["id"], 1001, "c", 3, Position(3, 1234, 1), 1700000000000)
    assert decode_detail(None, envelope("d", before=row)).quantity is None


def test_tombstones_and_truncates_are_recognised():
    assert decode_order(b'"x"', None) == Tombstone()
    assert decode_detail(b'"x"', None) == Tombstone()
    assert decode_detail(None, envelope("t")) == Truncate("order_details", Position(3, 1234, 1))


def test_snapshot_rows_without_a_row_index_sort_by_file_and_position():
    source = {**SOURCE, "row": None}
    assert decode_order(None, envelope("r", after=ORDER, source=source)).position == Position(3, 1234, 0)
    assert Position(3, 99, 0) < Position(3, 1234, 0) < Position(4, 1, 0)


DEEP = b'{"a":' * 20_000 + b"1" + b"}" * 20_000  # past any recursive decoder's depth

BAD = {
    "not JSON": (b"{nope", "value is not JSON"),
    "a JSON list": (b"[1, 2]", "orders: Expected `object`, got `array`"),
    "unknown op": (envelope("x", after=ORDER), "unknown op 'x'"),
    "no after image": (envelope("c"), "op c without its after row image"),
    "no source": (orjson.dumps({"op": "c", "after": ORDER}), "source block missing"),
    "num_products a string": (envelope("c", after={**ORDER, "num_products": "2"}),
                              "orders: Expected `int | null`, got `str` - at `$.after.num_products`"),
    "num_products negative": (envelope("c", after={**ORDER, "num_products": -1}), "negative"),
    "id missing": (envelope("c", after={k: v for k, v in ORDER.items() if k != "id"}),
                   "orders: Object missing required field `id` - at `$.after`"),
    "a boolean where an int belongs": (envelope("c", after={**ORDER, "customer_id": True}),
                                       "got `bool` - at `$.after.customer_id`"),
    "an id that is not an order id": (envelope("c", after={**ORDER, "id": "../../etc/passwd"}),
                                      "orders.id is not an order id"),
    "an oversized id": (envelope("c", after={**ORDER, "id": "a" * 100_000}), "orders.id is not an order id"),
    "binlog file without a number": (envelope("c", after=ORDER, source={**SOURCE, "file": "binlog.x"}),
                                     "source.file has no binlog number"),
    "a binlog position that is not a number": (envelope("c", after=ORDER, source={**SOURCE, "pos": "1234"}),
                                               "source.pos must be int, got '1234'"),
    "an insert without its customer": (envelope("c", after={**ORDER, "customer_id": None}),
                                       "orders.customer_id must be int, got None"),
    "a bare envelope that names a payload": (envelope("c", after={**ORDER, "num_products": "2", "note": "payload"}),
                                             "orders: Expected `int | null`, got `str` - at `$.after.num_products`"),
    "a row nested 20,000 deep": (b'{"op":"c","after":' + DEEP + b'}', "value nested too deep to decode"),
    "a wrapped envelope with a bad field": (
        envelope("c", after={**ORDER, "num_products": "2"}, schemas=True),
        "orders: Expected `int | null`, got `str` - at `$.payload.after.num_products`"),
}


@pytest.mark.parametrize("raw, reason", BAD.values(), ids=BAD.keys())
def test_malformed_order_events_raise_with_a_reason(raw: bytes, reason: str):
    with pytest.raises(CodecError, match=re.escape(reason)):
        decode_order(None, raw)
    with pytest.raises(CodecError, match=re.escape(reason)):
        decode_order(DEEP, raw)  # a key too deep to read is not judged: the value's reason stands


@pytest.mark.parametrize("decode", [decode_detail, lambda key, value: decode_reference("customers", key, value)],
                         ids=["order_details", "customers"])
def test_a_value_nested_too_deep_for_the_decoder_is_bad_input_for_every_table(decode):
    with pytest.raises(CodecError, match="value nested too deep to decode"):
        decode(None, b'{"op":"u","before":' + DEEP + b"}")


def test_a_record_keyed_by_another_order_than_its_row_is_rejected():
    with pytest.raises(CodecError, match="does not match orders.id"):
        decode_order(b'"another-order"', envelope("c", after=ORDER))


def test_a_key_in_another_shape_than_the_bare_id_is_not_judged():
    assert decode_order(b'{"id": 1}', envelope("c", after=ORDER)).order_id == ORDER["id"]


def test_a_detail_insert_without_its_quantity_is_rejected_and_a_delete_needs_none():
    row = {"order_id": ORDER["id"], "product_id": 1001}

    with pytest.raises(CodecError, match="order_details.quantity must be int, got None"):
        decode_detail(None, envelope("c", after=row))
    assert decode_detail(None, envelope("d", before=row)).quantity is None


def test_a_detail_with_a_string_product_id_is_rejected():
    reason = "order_details: Expected `int`, got `str` - at `$.after.product_id`"
    with pytest.raises(CodecError, match=re.escape(reason)):
        decode_detail(None, envelope("c", after={"order_id": "o", "product_id": "1001", "quantity": 1}))


# --- Kafka Connect's offset storage records ------------------------------------------------
OFFSET_KEY = b'["project-db-cdc",{"server":"mysql"}]'


def test_an_offset_record_names_its_connector_and_anything_else_names_none():
    assert offset_connector(OFFSET_KEY) == "project-db-cdc"
    assert [offset_connector(key) for key in (None, b"", b"not json", b"{}", b"[]", b"[7]")] == [None] * 6


def test_a_committed_position_is_the_restart_point_with_row_zero():
    value = b'{"ts_sec":1,"file":"binlog.000004","pos":15333974,"gtids":"0-1-9","row":1,"server_id":1,"event":2}'

    assert committed_position(value) == Position(4, 15333974, 0)
    assert committed_position(value) > Position(4, 15333973, 5)
    assert not committed_position(value) > Position(4, 15333974, 0)


def test_a_reset_or_an_offset_without_a_binlog_position_commits_nothing():
    not_positions = (None, b"{}", b'{"file":"binlog"}', b"garbage", b"[1, 2]")
    assert [committed_position(value) for value in not_positions] == [None] * len(not_positions)


def test_the_follower_keeps_its_connectors_newest_position_and_forgets_it_at_a_reset():
    followed = ConnectorPosition("127.0.0.1:9092", "_connect_offsets", "project-db-cdc")
    followed.take(OFFSET_KEY, b'{"file":"binlog.000004","pos":100}')
    followed.take(b'["project-db-cdc-other",{"server":"mysql"}]', b'{"file":"binlog.000004","pos":900}')
    followed.take(b'["project",{"server":"mysql"}]', b'{"file":"binlog.000004","pos":900}')
    kept = followed.position
    followed.take(OFFSET_KEY, None)

    assert (kept, followed.position) == (Position(4, 100, 0), None)
