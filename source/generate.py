"""Run a traffic plan against the source database, as a shop would write it.

Each write is its own transaction (a cancel's two deletes share one). `rate` limits how many orders start per second (0: as
fast as the database takes them). The ground truth is replayed from the writes that
committed, so a run cut short still leaves a truthful manifest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from mysql.connector.abstracts import MySQLConnectionAbstract as Connection
from tqdm import tqdm

from source.traffic import (CancelOrder, DeleteDetail, InsertDetail, InsertOrder, Truth,
                            UpdateNumProducts, Write)


@dataclass(frozen=True)
class RunStats:
    writes: int
    orders: int
    seconds: float

    @property
    def orders_per_s(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0


def execute(cursor, write: Write) -> None:
    match write:
        case InsertOrder(order_id, customer_id, store_id, payment_method_id, num_products):
            cursor.execute("INSERT INTO orders (id, customer_id, store_id, payment_method_id, num_products,"
                           " `timestamp`) VALUES (%s, %s, %s, %s, %s, NOW(3))",
                           (order_id, customer_id, store_id, payment_method_id, num_products))
        case InsertDetail(order_id, product_id, quantity):
            cursor.execute("INSERT INTO order_details (order_id, product_id, quantity) VALUES (%s, %s, %s)",
                           (order_id, product_id, quantity))
        case DeleteDetail(order_id, product_id):
            cursor.execute("DELETE FROM order_details WHERE order_id = %s AND product_id = %s",
                           (order_id, product_id))
        case UpdateNumProducts(order_id, num_products):
            cursor.execute("UPDATE orders SET num_products = %s WHERE id = %s", (num_products, order_id))
        case CancelOrder(order_id):
            cursor.execute("START TRANSACTION")
            cursor.execute("DELETE FROM order_details WHERE order_id = %s", (order_id,))
            cursor.execute("DELETE FROM orders WHERE id = %s", (order_id,))
            cursor.execute("COMMIT")


def run(connection: Connection, writes: Iterable[Write], *, total_orders: int, rate: float,
        truth: Truth, progress: bool = True, on_commit: Callable[[Write], None] | None = None) -> RunStats:
    """Execute `writes` in order, one transaction each, recording each commit in `truth`."""
    # Autocommit: a single-statement write is its own transaction in one round trip.
    connection.autocommit = True
    cursor = connection.cursor()
    started = time.monotonic()
    orders = 0
    with tqdm(total=total_orders, unit="orders", desc="orders", disable=not progress) as bar:
        for write in writes:
            if isinstance(write, InsertOrder):
                if rate > 0 and (wait := started + orders / rate - time.monotonic()) > 0:
                    time.sleep(wait)
                orders += 1
                bar.update()
            execute(cursor, write)
            truth.apply(write)
            if on_commit is not None:
                on_commit(write)
    return RunStats(truth.writes, orders, time.monotonic() - started)


def write_manifest(path: Path, truth: Truth, meta: dict) -> dict:
    manifest = {**meta, **truth.manifest()}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest, indent=1))
    return manifest
