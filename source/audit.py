"""Compare `order_final` with the generator's manifest: the pipeline's one promise, checked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
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
