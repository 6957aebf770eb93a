"""streams.changelog: the batch-written table encodes keys exactly as Faust would."""

from __future__ import annotations

import pytest

from streams.app import app
from streams.changelog import BatchWrittenTable
from tables.order_progress import order_progress

pytestmark = pytest.mark.usefixtures("tables_in_memory")


@pytest.mark.parametrize("key", ["123", "0", "order-7", 'a "quoted" \\ key', "tab\tand\nnewline\x01", "bestellung-ä€"])
def test_keys_are_encoded_as_faust_encodes_them(key):
    assert order_progress.encode_key(key) == order_progress.data._encode_key(key)


def test_a_table_of_other_key_or_value_types_is_refused():
    with pytest.raises(ValueError, match="str keys .json. and bytes values .raw."):
        BatchWrittenTable(app, name="not_bytes", key_type=str, value_type=str, partitions=4)
