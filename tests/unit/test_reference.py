from __future__ import annotations

from source.reference import CUSTOMER_COLUMNS, PAYMENT_METHODS, customers


def test_customers_are_deterministic_per_seed():
    assert list(customers(50, seed=3)) == list(customers(50, seed=3))
    assert list(customers(50, seed=3)) != list(customers(50, seed=4))


def test_customer_ids_are_consecutive_and_rows_fit_the_columns():
    rows = list(customers(1000, seed=1, start_id=11))

    assert [row[0] for row in rows] == list(range(11, 1011))
    assert all(len(row) == len(CUSTOMER_COLUMNS) for row in rows)
    assert len({row[2] for row in rows}) == 1000  # emails are unique


def test_there_are_twelve_payment_methods_with_ids_1_to_12():
    assert [method[0] for method in PAYMENT_METHODS] == list(range(1, 13))
