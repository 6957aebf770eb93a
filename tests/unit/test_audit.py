from __future__ import annotations

from source.audit import audit

MANIFEST = {"complete": {
    "a": {"customer_id": 1, "payment_method_id": 2, "num_products": 1, "products": [{"product_id": 9, "quantity": 1}]},
    "b": {"customer_id": 3, "payment_method_id": 4, "num_products": 1, "products": [{"product_id": 8, "quantity": 2}]},
}}


def final(order_id: str, quantity: int = 1, product: int = 9) -> dict:
    truth = MANIFEST["complete"].get(order_id, MANIFEST["complete"]["a"])
    return {**truth, "order_id": order_id, "products": [{"product_id": product, "quantity": quantity}]}


def test_each_complete_order_once_is_exact():
    result = audit(MANIFEST, [final("a"), final("b", 2, 8)])

    assert result.exact
    assert "duplicates 0, missing 0" in result.summary()


def test_duplicates_missing_unexpected_and_wrong_contents_are_each_reported():
    result = audit(MANIFEST, [final("a", 5), final("a", 5), final("zz")])

    assert result.duplicates == {"a": 1}
    assert result.missing == ["b"]
    assert result.unexpected == ["zz"]
    assert result.wrong_contents == ["a"]
    assert not result.exact
