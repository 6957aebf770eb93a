"""Reference data loaded into a scratch database: a second load of customers already there
generates none and inserts none; a larger count loads only what is new."""

from __future__ import annotations

import pytest

from config import Settings
from source import database, reference


def test_a_second_load_generates_no_customer_and_a_larger_one_adds_only_the_new(settings: Settings, unique_name,
                                                                               monkeypatch):
    with database.scratch_database(settings, unique_name) as scratch:
        connection = database.connect(scratch)
        database.apply_schema(connection)
        assert database.load_reference(connection, 500, seed=5, progress=False) == 500

        def generated(*args, **kwargs):
            raise AssertionError("customers generated though every one is in the table")

        with monkeypatch.context() as patched:
            patched.setattr(reference, "customers", generated)
            assert database.load_reference(connection, 500, seed=5, progress=False) == 0
            assert database.load_reference(connection, 300, seed=5, progress=False) == 0
            with pytest.raises(AssertionError, match="customers generated"):
                database.load_reference(connection, 501, seed=5, progress=False)
        assert database.load_reference(connection, 800, seed=5, progress=False) == 300
        assert database.count_rows(connection, "customers") == 800
        assert database.count_rows(connection, "payment_method") == len(reference.PAYMENT_METHODS)
