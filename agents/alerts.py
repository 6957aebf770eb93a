"""Alerts on `order_alerts`: which an order's state calls for, and what each says. Pure.

- `bulk`: a complete order with at least `bulk_quantity` items in all, or `bulk_products`
  products; raised with its order_final (the order is recorded emitted only once both are
  acknowledged, agents.emission.exactly_once).
- `cancelled_after_details`: an order deleted after some of its details had arrived.
- `stalled`: an order still incomplete `stall_after_s` after the worker last saw it change
  (agents.alert_watch keeps the times); raised once; a later completion still emits normally.
Each goes out exactly once per order, claimed in Redis like order_final (agents.emission.exactly_once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from tables.order_state import OrderState

BULK, STALLED, CANCELLED_AFTER_DETAILS = "bulk", "stalled", "cancelled_after_details"
KINDS = (BULK, STALLED, CANCELLED_AFTER_DETAILS)


class Alert(NamedTuple):
    """One alert of one order: what order_alerts carries once, and the guard claims."""

    kind: str
    order_id: str

    def __str__(self) -> str:  # its name in notices and in the Redis guard's key (agents.emission.guard)
        return f"{self.kind}:{self.order_id}"

    @classmethod
    def parse(cls, text: str) -> Alert:
        kind, order_id = text.split(":", 1)
        return cls(kind, order_id)


@dataclass(frozen=True)
class AlertRules:
    bulk_quantity: int
    bulk_products: int
    stall_after_s: float


def total_quantity(state: OrderState) -> int:
    return sum(product.quantity for product in state.products.values())


def on_completion(state: OrderState, rules: AlertRules) -> list[str]:
    """The alerts a complete order raises as it goes out."""
    if BULK in state.alerts:
        return []
    if total_quantity(state) >= rules.bulk_quantity or len(state.products) >= rules.bulk_products:
        return [BULK]
    return []


def on_deletion(state: OrderState) -> list[str]:
    """The alerts a deleted order raises: details had arrived before (or after) its delete."""
    if state.deleted and (state.products or state.removed) and CANCELLED_AFTER_DETAILS not in state.alerts:
        return [CANCELLED_AFTER_DETAILS]
    return []


def owed_alerts(state: OrderState, rules: AlertRules) -> list[str]:
    """The alerts a settled order still owes: a cancellation's, or a bulk order's whose
    order_final went out (recovery finds those between the two acknowledgements)."""
    if state.deleted:
        return on_deletion(state)
    return on_completion(state, rules) if state.emitted else []


def is_stalled(state: OrderState) -> bool:
    """Started and still waiting for something (the agent asks once the order has been quiet
    long enough)."""
    started = state.header_position is not None or bool(state.products)
    return started and not (state.emitted or state.deleted or state.complete or STALLED in state.alerts)


def alert_value(kind: str, order_id: str, state: OrderState, at: str) -> dict:
    """The `order_alerts` value: kind, order id, when, and the figures behind it."""
    figures = {"customer_id": state.customer_id, "num_products": state.num_products,
               "products_received": len(state.products), "total_quantity": total_quantity(state)}
    if kind == CANCELLED_AFTER_DETAILS:
        figures["details_seen"] = len(set(state.products) | set(state.removed))
    if kind == STALLED:
        figures["last_change_ms"] = state.last_committed_ms
    return {"kind": kind, "order_id": order_id, "at": at, **figures}
