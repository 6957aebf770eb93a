"""bench.codec's comparison of two codecs: by the values decoded, whatever their types."""

from __future__ import annotations

from dataclasses import make_dataclass

from bench.codec import as_compared, codec_at
from streams.codec import OrderChange, Position, Tombstone

# the shape an older codec gave: a frozen dataclass of the same name and fields
OlderOrderChange = make_dataclass("OrderChange", OrderChange._fields, frozen=True, slots=True)


def test_changes_of_two_codecs_compare_by_their_values():
    today = OrderChange("o1", "c", 7, 3, 2, Position(3, 10, 1), 1000)

    assert as_compared(today) == as_compared(OlderOrderChange("o1", "c", 7, 3, 2, (3, 10, 1), 1000))
    assert as_compared(today) != as_compared(OlderOrderChange("o1", "c", 7, 3, 2, (3, 10, 2), 1000))
    assert as_compared(Tombstone()) == ("Tombstone", ())


def test_a_revision_s_codec_loads_as_a_module_of_its_own():
    old = codec_at("HEAD")

    assert old.decode_order(None, None) == old.Tombstone()
    assert old.OrderChange is not OrderChange
