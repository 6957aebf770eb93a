"""bench.codec's comparison of two codecs: by the values decoded, whatever their types."""

from __future__ import annotations

from dataclasses import make_dataclass

import orjson

from bench.codec import as_compared, codec_at
from streams.codec import OrderChange, Position, Tombstone, decode_order

# the shape an older codec gave: a frozen dataclass of the same name and fields
OlderOrderChange = make_dataclass("OrderChange", OrderChange._fields, frozen=True, slots=True)


def test_changes_of_two_codecs_compare_by_their_values():
    today = OrderChange("o1", "c", 7, 3, 2, Position(3, 10, 1), 1000)

    assert as_compared(today) == as_compared(OlderOrderChange("o1", "c", 7, 3, 2, (3, 10, 1), 1000))
    assert as_compared(today) != as_compared(OlderOrderChange("o1", "c", 7, 3, 2, (3, 10, 2), 1000))
    assert as_compared(Tombstone()) == ("Tombstone", ())


def test_a_revision_s_codec_loads_as_a_module_of_its_own_and_decodes_alike():
    old = codec_at("HEAD")
    value = orjson.dumps({"op": "c", "source": {"file": "binlog.000003", "pos": 1234, "row": 1, "ts_ms": 5},
                          "after": {"id": "o-1", "customer_id": 7, "payment_method_id": 3, "num_products": 2}})

    assert old.OrderChange is not OrderChange
    assert as_compared(old.decode_order(None, value)) == as_compared(decode_order(None, value)) \
        == ("OrderChange", ("o-1", "c", 7, 3, 2, (3, 1234, 1), 5))
