"""Compare `order_final` with what should be there: the pipeline's one promise, checked.

The truth comes from the generator's manifest, or from the source database itself
(`manifest_from_rows`: an order is complete when its distinct detail rows number
`num_products`, the stream's rule), so any database can be audited.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Audit:
    expected: int
    received: int
    duplicates: dict[str, int]  # order id -> extra copies
    missing: list[str]  # complete in the manifest, absent from order_final
    unexpected: list[str]  # in order_final, not complete in the manifest
    wrong_contents: list[str]  # present once, but products or header differ

    @property
    def exact(self) -> bool:
        return not (self.duplicates or self.missing or self.unexpected or self.wrong_contents)

    def faults(self) -> dict[str, int]:
        """How many orders fail each check, only the checks that fail: {"wrong contents": 3}."""
        counts = {"missing": len(self.missing), "duplicates": sum(self.duplicates.values()),
                  "wrong contents": len(self.wrong_contents), "unexpected": len(self.unexpected)}
        return {check: count for check, count in counts.items() if count}

    def summary(self) -> str:
        return (f"expected {self.expected}, received {self.received}, duplicates {sum(self.duplicates.values())}, "
                f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
                f"wrong contents {len(self.wrong_contents)}")


def audit(manifest: dict, emitted: Iterable[dict]) -> Audit:
    """`emitted`: the decoded values of order_final messages (only this run's orders, or all)."""
    complete: dict = manifest["complete"]
    emitted = list(emitted)
    counts = Counter(value["order_id"] for value in emitted)
    first = {}
    for value in emitted:
        first.setdefault(value["order_id"], value)
    wrong = sorted(order_id for order_id, value in first.items() if order_id in complete and (
        value["products"] != complete[order_id]["products"]
        or value["num_products"] != complete[order_id]["num_products"]
        or value["customer_id"] != complete[order_id]["customer_id"]
        or value["payment_method_id"] != complete[order_id]["payment_method_id"]))
    return Audit(
        expected=len(complete), received=len(emitted),
        duplicates={order_id: n - 1 for order_id, n in counts.items() if n > 1},
        missing=sorted(set(complete) - set(counts)),
        unexpected=sorted(set(counts) - set(complete)),
        wrong_contents=wrong)


@dataclass(frozen=True)
class AlertAudit:
    """order_alerts against the manifest: each alert once, every bulk order's there, none for
    an order that cannot have it (bulk for a small order, a cancellation of an order that
    was not cancelled)."""

    received: int
    duplicates: dict[tuple[str, str], int]  # (kind, order id) -> extra copies
    missing_bulk: list[str]
    unexpected: list[tuple[str, str]]

    @property
    def exact(self) -> bool:
        return not (self.duplicates or self.missing_bulk or self.unexpected)

    def summary(self) -> str:
        return (f"alerts received {self.received}, duplicates {sum(self.duplicates.values())}, "
                f"bulk missing {len(self.missing_bulk)}, unexpected {len(self.unexpected)}")


def bulk_orders(manifest: dict, *, bulk_quantity: int, bulk_products: int) -> set[str]:
    """The complete orders of the manifest that owe a `bulk` alert."""
    return {order_id for order_id, order in manifest["complete"].items()
            if sum(p["quantity"] for p in order["products"]) >= bulk_quantity or len(order["products"]) >= bulk_products}


def audit_alerts(manifest: dict, alerts: Iterable[dict], *, bulk_quantity: int, bulk_products: int) -> AlertAudit:
    """`alerts`: the decoded values of order_alerts messages of this run's orders."""
    complete = manifest["complete"]
    bulk = bulk_orders(manifest, bulk_quantity=bulk_quantity, bulk_products=bulk_products)
    every_order = {*complete, *manifest["incomplete"], *manifest["cancelled"]}
    allowed = ({("bulk", order_id) for order_id in bulk}
               | {("cancelled_after_details", order_id) for order_id in manifest["cancelled"]}
               | {("stalled", order_id) for order_id in every_order})  # an order may stall, then complete
    counts = Counter((alert["kind"], alert["order_id"]) for alert in alerts)
    return AlertAudit(
        received=sum(counts.values()),
        duplicates={alert: n - 1 for alert, n in counts.items() if n > 1},
        missing_bulk=sorted(bulk - {order_id for kind, order_id in counts if kind == "bulk"}),
        unexpected=sorted(alert for alert in counts if alert not in allowed))


def misenriched(emitted: Iterable[dict]) -> list[str]:
    """Orders whose order_final lacks its customer or payment method, or carries another's."""
    return sorted(value["order_id"] for value in emitted
                  if (value.get("customer") or {}).get("id") != value["customer_id"]
                  or (value.get("payment_method") or {}).get("id") != value["payment_method_id"])


SOURCE_ROWS = """
    SELECT o.id, o.customer_id, o.payment_method_id, o.num_products, d.product_id, d.quantity
    FROM orders o LEFT JOIN order_details d ON d.order_id = o.id
    ORDER BY o.id, d.product_id"""


def manifest_from_rows(rows: Iterable[tuple]) -> dict:
    """A manifest (the generator's shape) from SOURCE_ROWS: (order id, customer id, payment
    method id, num_products, product id or None, quantity or None), sorted by order id."""
    complete, incomplete = {}, {}
    for order_id, customer_id, payment_method_id, num_products, products in _orders(rows):
        if len(products) == num_products:
            complete[order_id] = {"customer_id": customer_id, "payment_method_id": payment_method_id,
                                  "num_products": num_products,
                                  "products": [{"product_id": p, "quantity": q} for p, q in products]}
        else:
            incomplete[order_id] = {"num_products": num_products, "received": len(products)}
    return {"counts": {"complete": len(complete), "incomplete": len(incomplete)},
            "complete": complete, "incomplete": incomplete}


def _orders(rows: Iterable[tuple]) -> Iterator[tuple[str, int, int, int, list[tuple[int, int]]]]:
    current, products = None, []
    for order_id, customer_id, payment_method_id, num_products, product_id, quantity in rows:
        if current is not None and current[0] != order_id:
            yield *current, products
            products = []
        current = (order_id, customer_id, payment_method_id, num_products)
        if product_id is not None:
            products.append((product_id, quantity))
    if current is not None:
        yield *current, products
