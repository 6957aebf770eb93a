"""A small change log as Debezium writes it to the four CDC topics, in micro-batches, with what a
live shop sends: the connector's snapshot of the reference tables, orders completed, orders left
incomplete, details before their order, a raised `num_products`, a cancelled order, a customer
who arrives after their orders, rows that break a rule (corrected later, broken again, or for
good), an order whose time moves after its details arrived, a record Kafka Connect repeats at
another offset, a tombstone, records that are no row change, and both JSON shapes (with and
without `schemas.enable`)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta, timezone

from batch.fastlane.archive import Record
from config import Settings

COMMITTED = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)
PRODUCTS = (11, 12, 13, 14)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class ChangeLog:
    """Records appended topic by topic, each partition's offsets counted from 0, each change at the
    next binlog position; `cut()` closes a micro-batch."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.offsets: dict[str, int] = defaultdict(int)
        self.position = 1000
        self.batches: list[list[Record]] = [[]]

    def topic(self, table: str) -> str:
        return self.settings.cdc_topic(table)

    def raw(self, table: str, key: bytes | None, value: bytes | None) -> None:
        topic = self.topic(table)
        offset = self.offsets[topic]
        self.offsets[topic] += 1
        self.batches[-1].append(Record(topic, 0, offset, key, value, ms(COMMITTED) + offset))

    def change(self, table: str, op: str, image: dict, *, snapshot: str | None = None, wrapped: bool = False,
               at: int | None = None) -> int:
        """A row change at the next binlog position (or at `at`, for a repeated record)."""
        if at is None:
            self.position += 100
        pos = self.position if at is None else at
        source = {"file": "mysql-bin.000003", "pos": pos, "row": 0, "ts_ms": ms(COMMITTED) + pos,
                  **({"snapshot": snapshot} if snapshot else {})}
        payload = {"before": image if op == "d" else None, "after": None if op == "d" else image,
                   "source": source, "op": op, "ts_ms": ms(COMMITTED) + pos + 5}
        key_name = "order_id" if table == "order_details" else "id"
        key = json.dumps({key_name: image[key_name]}).encode()
        self.raw(table, key, json.dumps({"schema": {}, "payload": payload} if wrapped else payload).encode())
        return pos

    def cut(self) -> None:
        self.batches.append([])


def order(order_id: str, *, customer_id: int = 1, num_products: int = 2, payment_method_id: int = 1,
          moved: timedelta = timedelta()) -> dict:
    return {"id": order_id, "customer_id": customer_id, "store_id": 3, "payment_method_id": payment_method_id,
            "num_products": num_products, "timestamp": ms(COMMITTED + moved)}


def detail(order_id: str, product_id: int, quantity: int = 1) -> dict:
    return {"order_id": order_id, "product_id": product_id, "quantity": quantity}


def customer(customer_id: int) -> dict:
    return {"id": customer_id, "name": f"Customer {customer_id}", "email": f"c{customer_id}@example.com",
            "phone": "+1-555-0000000", "city": "Lisbon", "created_at": ms(COMMITTED)}


def shop_change_log(settings: Settings, orders_per_batch: int = 12) -> list[list[Record]]:
    """Four micro-batches of a shop's changes (see the module's docstring)."""
    log = ChangeLog(settings)
    for method in (1, 2, 3):
        log.change("payment_method", "r", {"id": method, "name": f"Method {method}", "provider": "Visa"},
                   snapshot="true" if method < 3 else "last")
    for number in (1, 2, 3):
        log.change("customers", "r", customer(number), snapshot="true" if number < 3 else "last")
    replayed: tuple[str, dict, int] | None = None
    for batch in range(4):
        for n in range(orders_per_batch):
            order_id = f"o{batch}-{n:03d}"
            products = PRODUCTS[: 1 + n % 3]
            wrapped = n % 2 == 1
            if n % 5 == 0:  # the details before their order
                for product in products:
                    log.change("order_details", "c", detail(order_id, product), wrapped=wrapped)
            log.change("orders", "c", order(order_id, customer_id=1 + n % 3, num_products=len(products)),
                       wrapped=wrapped)
            arrived = products if n % 5 == 0 else products[: len(products) - (n % 4 == 3)]  # some stay incomplete
            if n % 5 != 0:
                for product in arrived:
                    pos = log.change("order_details", "c", detail(order_id, product, quantity=1 + n % 2),
                                     wrapped=wrapped)
                    replayed = ("order_details", detail(order_id, product, quantity=1 + n % 2), pos)
        previous = f"o{batch - 1}-001" if batch else None
        if previous:  # a raised num_products, and an order cancelled: deleted with its details, then a tombstone
            log.change("orders", "u", order(previous, customer_id=2, num_products=3))
            cancelled = f"o{batch - 1}-002"
            for product in PRODUCTS[:3]:
                log.change("order_details", "d", detail(cancelled, product, quantity=1))
            log.change("orders", "d", order(cancelled, customer_id=3, num_products=3))
            log.raw("orders", json.dumps({"id": cancelled}).encode(), None)
        if batch == 1:  # a payment method renamed; orders of a customer not known yet, who arrives next
            log.change("payment_method", "u", {"id": 2, "name": "Method 2, renamed", "provider": "Visa"})
            log.change("customers", "u", {**customer(2), "city": "Porto"})
            log.change("orders", "c", order("late-customer", customer_id=9, num_products=1))
            log.change("order_details", "c", detail("late-customer", 11))
            log.raw("orders", b'{"id": "x"}', b"\xffnot json at all")
            log.change("orders", "c", order("fixed-later", num_products=0))  # breaks num_products_positive
            log.change("order_details", "c", detail("fixed-later", 11))
            log.change("orders", "c", {**order("broken-twice"), "store_id": None})
            log.change("order_details", "c", detail("o1-004", 14, quantity=0))  # breaks quantity_positive
        if batch == 2:
            log.change("orders", "u", order("fixed-later", num_products=1))
            log.change("orders", "u", order("broken-twice", num_products=0))
            log.change("orders", "u", order("o1-006", num_products=1, moved=timedelta(days=-1)))  # details follow
            log.change("customers", "c", customer(9))
            log.change("payment_method", "c", {"id": 4, "name": "Method 4", "provider": "Klarna"})
            table, image, pos = replayed
            log.change(table, "c", image, at=pos)  # Kafka Connect's replay after a restart: same position
        log.cut()
    return [records for records in log.batches if records]
