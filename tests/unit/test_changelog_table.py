"""streams.runtime.changelog_table: the batch-written table encodes keys exactly as Faust does."""

from __future__ import annotations

import pytest

from streams.app import app
from streams.runtime.changelog_table import BatchWrittenTable
from tables.order_progress import order_progress

pytestmark = pytest.mark.usefixtures("tables_in_memory")


@pytest.mark.parametrize(("key", "stored"), [
    ("123", b'"123"'), ("0", b'"0"'), ("order-7", b'"order-7"'),
    ('a "quoted" \\ key', b'"a \\"quoted\\" \\\\ key"'),
    ("tab\tand\nnewline\x01", b'"tab\\tand\\nnewline\\u0001"'),
    ("bestellung-\u00e4\u20ac", '"bestellung-\u00e4\u20ac"'.encode()),
])
def test_keys_are_stored_as_json_text_in_utf_8(key, stored):
    """The bytes Faust's json key serializer writes (RFC 8259 text, non-ASCII as UTF-8), which
    workers reading the changelog and RocksDB written by Faust itself depend on."""
    assert order_progress.encode_key(key) == stored
    assert order_progress.data._encode_key(key) == stored


def test_a_table_of_other_key_or_value_types_is_refused():
    with pytest.raises(ValueError, match="str keys .json. and bytes values .raw."):
        BatchWrittenTable(app, name="not_bytes", key_type=str, value_type=str, partitions=4)
