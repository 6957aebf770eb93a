"""A shop's order traffic as a pure plan of single-row writes from a random seed, and its ground truth.

Each order is a short script: the order row, then its detail rows, each write its own
transaction. Scripts are interleaved across many orders in flight, so the CDC topics see
orders and details of different orders mixed, as they would from a real shop.

The chaos mix alters some scripts. Every alteration happens while the order is still
incomplete in the database (fewer detail rows than num_products), so "complete" is a
state an order enters at most once and never leaves; that is what makes "exactly one
`order_final` per complete order" a well-defined target:
- update:  num_products raised or lowered after some (not all) details are written;
- cancel:  the order and its written details deleted before it is complete;
- redo:    a written detail deleted and re-inserted (with a new quantity), then the rest;
- abandon: the remaining details are never written; the order stays incomplete.

The manifest is not taken from the scripts' intent: `Truth` replays the writes as the
database applies them, and the manifest is read off the final state.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

PRODUCT_IDS = range(1001, 1501)
STORE_IDS = range(1, 51)
PAYMENT_METHOD_IDS = range(1, 13)
# The legacy pipeline: 25,000 orders with about 47,000 detail rows, i.e. 1.88 products per order.
PRODUCTS_PER_ORDER = (1, 2, 3)
PRODUCTS_PER_ORDER_WEIGHTS = (0.35, 0.42, 0.23)


@dataclass(frozen=True)
class ChaosMix:
    """Share of orders given each alteration (the rest are plain)."""

    update: float = 0.06
    cancel: float = 0.04
    redo: float = 0.05
    abandon: float = 0.04

    @classmethod
    def off(cls) -> ChaosMix:
        return cls(0.0, 0.0, 0.0, 0.0)

    @classmethod
    def only(cls, kind: str) -> ChaosMix:
        """Every order altered the one way named."""
        return cls(**{**dict.fromkeys(("update", "cancel", "redo", "abandon"), 0.0), kind: 1.0})

    def __post_init__(self) -> None:
        shares = (self.update, self.cancel, self.redo, self.abandon)
        if any(share < 0 for share in shares) or sum(shares) > 1:
            raise ValueError(f"chaos shares must be >= 0 and sum to <= 1, got {shares}")

    def pick(self, rng: random.Random) -> str:
        draw = rng.random()
        for kind in ("update", "cancel", "redo", "abandon"):
            share = getattr(self, kind)
            if draw < share:
                return kind
            draw -= share
        return "plain"


# --- writes: each is one transaction against the source database ------------------------
@dataclass(frozen=True)
class InsertOrder:
    order_id: str
    customer_id: int
    store_id: int
    payment_method_id: int
    num_products: int


@dataclass(frozen=True)
class InsertDetail:
    order_id: str
    product_id: int
    quantity: int


@dataclass(frozen=True)
class DeleteDetail:
    order_id: str
    product_id: int


@dataclass(frozen=True)
class UpdateNumProducts:
    order_id: str
    num_products: int


@dataclass(frozen=True)
class CancelOrder:
    """Delete the order's details, then the order, in one transaction."""

    order_id: str


Write = InsertOrder | InsertDetail | DeleteDetail | UpdateNumProducts | CancelOrder


def order_script(rng: random.Random, customers: int, chaos: ChaosMix) -> list[Write]:
    """The writes of one order, altered as the chaos mix draws."""
    order_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    kind = chaos.pick(rng)
    wanted = rng.choices(PRODUCTS_PER_ORDER, PRODUCTS_PER_ORDER_WEIGHTS)[0]
    if kind == "redo":
        wanted = max(wanted, 2)  # a redo needs a written detail while another is missing
    products = rng.sample(PRODUCT_IDS, wanted)
    details = [InsertDetail(order_id, product, rng.randint(1, 5)) for product in products]

    first = wanted
    if kind == "update":
        first = max(1, wanted + rng.choice((-2, -1, 1, 2)))
        first = first if first != wanted else wanted + 1
    header = InsertOrder(order_id, rng.randint(1, customers), rng.choice(STORE_IDS),
                         rng.choice(PAYMENT_METHOD_IDS), first)
    # Details written before the alteration: fewer than the order needs at any time.
    before = rng.randint(0, min(first, wanted) - 1)
    if kind == "redo":
        before = rng.randint(1, wanted - 1)

    match kind:
        case "plain":
            return [header, *details]
        case "update":
            return [header, *details[:before], UpdateNumProducts(order_id, wanted), *details[before:]]
        case "cancel":
            return [header, *details[:before], CancelOrder(order_id)]
        case "abandon":
            return [header, *details[:before]]
        case "redo":
            again = rng.choice(details[:before])
            redone = InsertDetail(order_id, again.product_id, rng.randint(1, 5))
            return [header, *details[:before], DeleteDetail(order_id, again.product_id), redone,
                    *details[before:]]
    raise AssertionError(kind)


def interleave(scripts: Sequence[list[Write]], rng: random.Random, in_flight: int) -> Iterator[Write]:
    """Merge scripts into one stream, keeping each script's order, with up to `in_flight`
    orders open at once. A new order opens as soon as there is room."""
    pending = iter(scripts)
    open_scripts: list[list[Write]] = []
    exhausted = False
    while open_scripts or not exhausted:
        while not exhausted and len(open_scripts) < in_flight:
            script = next(pending, None)
            if script is None:
                exhausted = True
            else:
                open_scripts.append(list(reversed(script)))
        if not open_scripts:
            break
        slot = rng.randrange(len(open_scripts))
        yield open_scripts[slot].pop()
        if not open_scripts[slot]:
            open_scripts[slot] = open_scripts[-1]
            open_scripts.pop()


def plan(orders: int, *, seed: int, customers: int, chaos: ChaosMix, in_flight: int = 64) -> list[Write]:
    """The whole traffic: `orders` scripts, interleaved. Same arguments, same writes."""
    rng = random.Random(seed)
    scripts = [order_script(rng, customers, chaos) for _ in range(orders)]
    return list(interleave(scripts, rng, in_flight))


# --- ground truth -------------------------------------------------------------------------
@dataclass
class PlannedOrder:
    customer_id: int
    payment_method_id: int
    num_products: int
    products: dict[int, int] = field(default_factory=dict)  # product_id -> quantity


@dataclass
class Truth:
    """The database's final state, by replaying the writes as the database applies them."""

    orders: dict[str, PlannedOrder] = field(default_factory=dict)
    cancelled: set[str] = field(default_factory=set)
    writes: int = 0

    def apply(self, write: Write) -> None:
        self.writes += 1
        match write:
            case InsertOrder(order_id, customer_id, _, payment_method_id, num_products):
                self.orders[order_id] = PlannedOrder(customer_id, payment_method_id, num_products)
            case InsertDetail(order_id, product_id, quantity):
                self.orders[order_id].products[product_id] = quantity
            case DeleteDetail(order_id, product_id):
                del self.orders[order_id].products[product_id]
            case UpdateNumProducts(order_id, num_products):
                self.orders[order_id].num_products = num_products
            case CancelOrder(order_id):
                del self.orders[order_id]
                self.cancelled.add(order_id)

    def manifest(self) -> dict:
        complete, incomplete = {}, {}
        for order_id, order in sorted(self.orders.items()):
            if len(order.products) == order.num_products:
                complete[order_id] = {
                    "customer_id": order.customer_id,
                    "payment_method_id": order.payment_method_id,
                    "num_products": order.num_products,
                    "products": [{"product_id": p, "quantity": q} for p, q in sorted(order.products.items())],
                }
            else:
                incomplete[order_id] = {"num_products": order.num_products, "received": len(order.products)}
        return {
            "counts": {"complete": len(complete), "incomplete": len(incomplete),
                       "cancelled": len(self.cancelled), "writes": self.writes,
                       "detail_rows": sum(len(o.products) for o in self.orders.values())},
            "complete": complete,
            "incomplete": incomplete,
            "cancelled": sorted(self.cancelled),
        }
