from __future__ import annotations

from source.order_final_audit import audit, audit_alerts, misenriched

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


def test_the_source_rows_make_the_manifest_by_the_streams_rule():
    from source.order_final_audit import manifest_from_rows

    rows = [("o1", 7, 3, 2, 1001, 1), ("o1", 7, 3, 2, 1002, 4),  # two of two: complete
            ("o2", 8, 1, 3, 1005, 1),  # one of three
            ("o3", 9, 2, 1, None, None)]  # no details yet (LEFT JOIN)
    manifest = manifest_from_rows(rows)

    assert manifest["complete"] == {"o1": {"customer_id": 7, "payment_method_id": 3, "num_products": 2,
                                           "products": [{"product_id": 1001, "quantity": 1},
                                                        {"product_id": 1002, "quantity": 4}]}}
    assert manifest["incomplete"] == {"o2": {"num_products": 3, "received": 1},
                                      "o3": {"num_products": 1, "received": 0}}
    assert manifest["counts"] == {"complete": 1, "incomplete": 2}
    assert manifest_from_rows([])["complete"] == {}


def test_the_alert_audit_finds_duplicates_missing_bulk_and_impossible_alerts():
    manifest = {"complete": {"big": {"products": [{"product_id": 1, "quantity": 9}, {"product_id": 2, "quantity": 5}]},
                             "small": {"products": [{"product_id": 1, "quantity": 1}]},
                             "wide": {"products": [{"product_id": p, "quantity": 1} for p in range(3)]}},
                "incomplete": {"slow": {}}, "cancelled": ["gone"]}
    rules = {"bulk_quantity": 12, "bulk_products": 3}
    exact = audit_alerts(manifest, [{"kind": "bulk", "order_id": "big"}, {"kind": "bulk", "order_id": "wide"},
                                    {"kind": "stalled", "order_id": "slow"},
                                    {"kind": "cancelled_after_details", "order_id": "gone"}], **rules)
    assert exact.exact, exact.summary()

    wrong = audit_alerts(manifest, [{"kind": "bulk", "order_id": "big"}, {"kind": "bulk", "order_id": "big"},
                                    {"kind": "bulk", "order_id": "small"},
                                    {"kind": "cancelled_after_details", "order_id": "slow"}], **rules)
    assert wrong.duplicates == {("bulk", "big"): 1}
    assert wrong.missing_bulk == ["wide"]
    assert wrong.unexpected == [("bulk", "small"), ("cancelled_after_details", "slow")]
    assert not wrong.exact


def test_an_order_final_without_its_customer_or_with_anothers_is_misenriched():
    right = {"order_id": "a", "customer_id": 7, "payment_method_id": 2, "customer": {"id": 7},
             "payment_method": {"id": 2}}
    assert misenriched([right, {**right, "order_id": "b", "customer": None},
                        {**right, "order_id": "c", "payment_method": {"id": 3}}]) == ["b", "c"]
