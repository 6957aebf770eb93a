"""An order's completion state (`OrderState`), the value type of the `order_progress`
table, with its codec (compact JSON bytes in RocksDB and the changelog) and its web view.
Pure: agents.completion_rule's rule computes these values, tables.order_progress stores them."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

import orjson

from streams.codec import Position


class Product(NamedTuple):
    quantity: int
    position: Position


# Shared by every state without products or deletes: read-only, so sharing it is safe.
NONE_YET: Mapping = MappingProxyType({})


class OrderState(NamedTuple):
    """What one order's changes have told us so far. Immutable: the rule makes a new value for
    every change (`_replace`), and the state cache takes an unchanged value for the same object.
    A tuple, not a frozen dataclass: one is built per CDC record, and a frozen dataclass's
    `__init__` makes a guarded set per field."""

    header_position: Position | None = None  # last orders change applied (insert/update/delete)
    deleted: bool = False
    customer_id: int | None = None
    payment_method_id: int | None = None
    num_products: int | None = None
    products: Mapping[int, Product] = NONE_YET
    removed: Mapping[int, Position] = NONE_YET  # product -> its delete's position
    emitted: bool = False
    last_committed_ms: int = 0
    alerts: frozenset[str] = frozenset()  # the kinds raised and acknowledged (agents.alerts)
    emitted_at: int = 0  # a marker's: when it was made, in Unix seconds (its retention starts)

    @property
    def newest_detail(self) -> Position | None:
        return max((p.position for p in self.products.values()), default=None)

    @property
    def complete(self) -> bool:
        return (self.header_position is not None and not self.deleted
                and self.num_products is not None and len(self.products) == self.num_products)


# Once an order is in order_final (and its completion alerts on order_alerts) nothing that
# happens to it matters any more (the rule ignores every later change), so its state shrinks
# to a marker: a few bytes in RocksDB, the changelog and the cache, instead of every
# product's position. (An order owed a `bulk` alert keeps its state, emitted, until then.)
# A marker remembers when it was made: it is dropped STATE_RETENTION_S later (agents.retention).
MARKER_PREFIX = b'{"e":'
LEGACY_MARKER = b'{"e":true}'  # written before markers had a time: their retention starts when found


def marker(at_s: int) -> OrderState:
    return OrderState(emitted=True, emitted_at=at_s)


def is_marker(state: OrderState) -> bool:
    return state.emitted and state.header_position is None


def marker_time(raw: bytes) -> int | None:
    """A stored marker's time (0 for a legacy one) without decoding it; None for any other state."""
    if not raw.startswith(MARKER_PREFIX):
        return None
    return 0 if raw == LEGACY_MARKER else int(raw[len(MARKER_PREFIX):-1])


def _pos(position: Position | None) -> list[int] | None:
    return None if position is None else [position.file_number, position.pos, position.row]


def _unpos(raw: list[int] | None) -> Position | None:
    return None if raw is None else Position(*raw)


def encode(state: OrderState) -> bytes:
    if is_marker(state):
        return b'{"e":%d}' % state.emitted_at
    return orjson.dumps({
        "h": _pos(state.header_position), "x": state.deleted, "c": state.customer_id,
        "pm": state.payment_method_id, "n": state.num_products,
        "p": {str(pid): [p.quantity, *_pos(p.position)] for pid, p in state.products.items()},
        "r": {str(pid): _pos(position) for pid, position in state.removed.items()},
        "e": state.emitted, "t": state.last_committed_ms,
        **({"a": sorted(state.alerts)} if state.alerts else {}),
    })


def decode(raw: bytes) -> OrderState:
    made_at = marker_time(raw)
    if made_at is not None:
        return marker(made_at)
    d = orjson.loads(raw)
    return OrderState(
        header_position=_unpos(d["h"]), deleted=d["x"], customer_id=d["c"], payment_method_id=d["pm"],
        num_products=d["n"],
        products={int(pid): Product(q, Position(f, p, r)) for pid, (q, f, p, r) in d["p"].items()},
        removed={int(pid): Position(*position) for pid, position in d["r"].items()},
        emitted=d["e"], last_committed_ms=d["t"], alerts=frozenset(d.get("a", ())))


def status(state: OrderState) -> str:
    return ("emitted" if state.emitted else "deleted" if state.deleted else "complete" if state.complete
            else "waiting_for_order" if state.header_position is None else "incomplete")


# GET /orders?state=...: which statuses each listed state covers ("stalled": incomplete, and
# its stalled alert raised).
LISTED = {"complete": frozenset({"emitted", "complete"}),
          "incomplete": frozenset({"incomplete", "waiting_for_order"}),
          "stalled": frozenset({"incomplete", "waiting_for_order"})}


def listed_as(state: OrderState, wanted: str) -> bool:
    return status(state) in LISTED[wanted] and (wanted != "stalled" or "stalled" in state.alerts)


def mask_email(email: str) -> str:
    """`alice@example.com` -> `a***@example.com`: enough to recognise, not to write to."""
    local, at, domain = email.partition("@")
    return f"{local[:1]}***{at}{domain}" if at else "***"


def as_json(order_id: str, state: OrderState) -> dict:
    """The web view of an order's state."""
    return {
        "order_id": order_id,
        "status": status(state),
        "customer_id": state.customer_id, "payment_method_id": state.payment_method_id,
        "num_products": state.num_products,
        "products": [{"product_id": pid, "quantity": p.quantity} for pid, p in sorted(state.products.items())],
    }
