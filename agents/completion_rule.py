"""The order-completion rule: pure functions of an order's state and one change. No I/O.

An order is complete when its number of distinct detail rows equals num_products.

Idempotence. Each row (the order header, each detail product) remembers the binlog
position of the change last applied to it; a change at or before that position is a
re-delivery (Kafka Connect replays after a restart, a snapshot re-reads) and changes
nothing. Deletes leave their position behind, so a stale insert cannot resurrect a row.
Applying the same changes in any order, any number of times, gives the same state.

Order across topics. Orders and details arrive on two topics, so a detail can be seen
before an update of num_products that was committed earlier. Completeness counted then
would be wrong (an order raised from 2 to 3 products, seen with 2 details and the old
header). So a complete order is *settled*, safe to emit, only when nothing committed
before its newest detail can still be unseen on the orders topic: either every counted
detail is older than the header we hold (the database itself was complete at the
header's position), or the orders topic has been read past the newest detail's position
(`orders_frontier`). The stream's caller supplies the frontier.
"""

from __future__ import annotations

from enum import Enum

from streams.codec import DetailChange, OrderChange, Position
from tables.order_state import OrderState, Product


# The orders frontier when the orders topic has been read to its end: nothing committed
# earlier can still be unseen (see agents/completion_loop.py for when that holds).
CAUGHT_UP = Position(2**62, 0, 0)


class Verdict(Enum):
    INCOMPLETE = "incomplete"
    UNSETTLED = "unsettled"  # complete, but an earlier orders change may still be unseen
    EMIT = "emit"
    EMITTED = "emitted"
    DELETED = "deleted"


def apply_order(state: OrderState, change: OrderChange) -> OrderState:
    """The state after an orders change; unchanged if the change is a re-delivery."""
    if state.header_position is not None and change.position <= state.header_position:
        return state
    committed = max(state.last_committed_ms, change.committed_ms)
    if change.op == "d":
        return state._replace(header_position=change.position, deleted=True, customer_id=None,
                       payment_method_id=None, num_products=None, last_committed_ms=committed)
    return state._replace(header_position=change.position, deleted=False,
                   customer_id=change.customer_id, payment_method_id=change.payment_method_id,
                   num_products=change.num_products, last_committed_ms=committed)


def apply_detail(state: OrderState, change: DetailChange) -> OrderState:
    """The state after an order_details change; unchanged if the change is a re-delivery."""
    current = state.products.get(change.product_id)
    seen = max(filter(None, (current and current.position, state.removed.get(change.product_id))),
               default=None)
    if seen is not None and change.position <= seen:
        return state
    products, removed = dict(state.products), dict(state.removed)
    if change.op == "d":
        products.pop(change.product_id, None)
        removed[change.product_id] = change.position
    else:
        products[change.product_id] = Product(change.quantity, change.position)
        removed.pop(change.product_id, None)
    return state._replace(products=products, removed=removed,
                   last_committed_ms=max(state.last_committed_ms, change.committed_ms))


def verdict(state: OrderState, orders_frontier: Position | None) -> Verdict:
    """What to do with the order now, given how far the orders topic has been read."""
    if state.emitted:
        return Verdict.EMITTED
    if state.deleted:
        return Verdict.DELETED
    if not state.complete:
        return Verdict.INCOMPLETE
    newest = state.newest_detail
    if newest is None or newest <= state.header_position:
        return Verdict.EMIT
    if orders_frontier is not None and orders_frontier >= newest:
        return Verdict.EMIT
    return Verdict.UNSETTLED


def version(state: OrderState) -> tuple[Position | None, Position | None]:
    """The newest orders change and the newest order_details change the state has applied."""
    details = [product.position for product in state.products.values()] + list(state.removed.values())
    return state.header_position, max(details, default=None)


def noticed_version(sent: list) -> tuple[Position | None, Position | None]:
    """A version as a JSON notice carries it (positions as lists) back to positions."""
    return tuple(None if at is None else Position(*at) for at in sent)


def is_behind(state: OrderState, sent: tuple[Position | None, Position | None]) -> bool:
    """Whether the state lacks a change that the state `sent` (its version) had. Each topic's
    changes of an order are applied in order, so the newest one of each says what came before."""
    return any(wanted is not None and (held is None or held < wanted) for held, wanted in zip(version(state), sent))


def completed_order(order_id: str, state: OrderState, completed_at: str,
                    customer: object = None, payment_method: object = None) -> dict:
    """The `order_final` value (ARCHITECTURE contract) of a complete order; `customer` and
    `payment_method` are the reference rows as they are when it completes (None: unknown)."""
    return {
        "order_id": order_id,
        "customer_id": state.customer_id,
        "payment_method_id": state.payment_method_id,
        "num_products": state.num_products,
        "products": [{"product_id": product_id, "quantity": product.quantity}
                     for product_id, product in sorted(state.products.items())],
        "completed_at": completed_at,
        "source_ts_ms": state.last_committed_ms,
        "customer": customer,
        "payment_method": payment_method,
    }
