"""OrderProgress <-> compact JSON bytes, the value format of the `order_progress` table."""

from __future__ import annotations

import orjson

from agents.completion import OrderProgress, Product
from streams.codec import Position


def _pos(position: Position | None) -> list[int] | None:
    return None if position is None else [position.file_number, position.pos, position.row]


def _unpos(raw: list[int] | None) -> Position | None:
    return None if raw is None else Position(*raw)


def encode(state: OrderProgress) -> bytes:
    return orjson.dumps({
        "h": _pos(state.header_position), "x": state.deleted, "c": state.customer_id,
        "pm": state.payment_method_id, "n": state.num_products,
        "p": {str(pid): [p.quantity, *_pos(p.position)] for pid, p in state.products.items()},
        "r": {str(pid): _pos(position) for pid, position in state.removed.items()},
        "e": state.emitted, "t": state.last_committed_ms,
    })


def decode(raw: bytes) -> OrderProgress:
    d = orjson.loads(raw)
    return OrderProgress(
        header_position=_unpos(d["h"]), deleted=d["x"], customer_id=d["c"], payment_method_id=d["pm"],
        num_products=d["n"],
        products={int(pid): Product(q, Position(f, p, r)) for pid, (q, f, p, r) in d["p"].items()},
        removed={int(pid): Position(*position) for pid, position in d["r"].items()},
        emitted=d["e"], last_committed_ms=d["t"])


def as_json(order_id: str, state: OrderProgress) -> dict:
    """The web view of an order's state."""
    return {
        "order_id": order_id,
        "status": ("emitted" if state.emitted else "deleted" if state.deleted
                   else "complete" if state.complete else
                   "waiting_for_order" if state.header_position is None else "incomplete"),
        "customer_id": state.customer_id, "payment_method_id": state.payment_method_id,
        "num_products": state.num_products,
        "products": [{"product_id": pid, "quantity": p.quantity} for pid, p in sorted(state.products.items())],
    }
