"""The legacy pipeline's real-time half, as its README describes it, for comparison (weaknesses kept).

    python -m bench.peers.legacy orders  --output-topic T --group G --prefix P
    python -m bench.peers.legacy details --output-topic T --group G --prefix P

Two plain Kafka consumers, one process each:
- `orders` (the legacy pipeline's order.py) caches each order row's customer, payment method and
  num_products in Redis under `order:{id}` with a 120 s TTL. A delete has no `after` row,
  so it is skipped, as the legacy parser skips it.
- `details` (the legacy pipeline's order_details.py) records each detail row's product and quantity
  under `order_products:{id}` (same TTL; the legacy README does not say where it counts products,
  Redis is where it keeps everything else), reads the cached order, and when the count of
  products equals num_products takes `SET order_trigger_lock:{id} NX EX 10` and produces the
  completed order. Deletes are skipped here too.

What this misses on purpose, because the legacy pipeline does: a detail read before its order (or
after the cache expired) finds no order and nothing ever re-checks it; a detail read
before a num_products update is judged against the old count; the 10 s lock lets a
replay send again. Redis keys carry `--prefix` so runs cannot see each other's keys.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

import orjson
import redis
import typer
from confluent_kafka import Consumer, Producer

from config import settings
from config.cli import run

CACHE_TTL_S = 120
LOCK_TTL_S = 10


def cached_order(after: dict) -> dict:
    """What order.py caches of an order row."""
    return {"customer_id": after["customer_id"], "payment_method_id": after["payment_method_id"],
            "num_products": after["num_products"]}


def completed_order(order_id: str, order: dict | None, products: dict[int, int]) -> dict | None:
    """The order_final value if the order is complete by what the caches hold, else None."""
    if order is None or len(products) != order["num_products"]:
        return None
    return {"order_id": order_id, **order,
            "products": [{"product_id": p, "quantity": q} for p, q in sorted(products.items())],
            "completed_at": datetime.now(timezone.utc).isoformat()}


def after_row(raw: bytes | None) -> dict | None:
    """The `after` image of a Debezium record; None for deletes and tombstones."""
    if raw is None:
        return None
    event = orjson.loads(raw)
    return event.get("payload", event).get("after")


def consumer(group: str, table: str) -> Consumer:
    client = Consumer({**settings.kafka_client_config(), "group.id": group,
                       "auto.offset.reset": "earliest", "enable.auto.commit": True})
    client.subscribe([settings.cdc_topic(table)])
    return client


def records(client: Consumer):
    while True:
        for message in client.consume(num_messages=500, timeout=0.5):
            if not message.error():
                yield message


cli = typer.Typer(add_completion=False, help=__doc__)
Group = Annotated[str, typer.Option(help="Consumer group prefix (each consumer adds its role).")]
Prefix = Annotated[str, typer.Option(help="Redis key prefix of this run.")]


@cli.command()
def orders(group: Group, prefix: Prefix) -> None:
    """order.py: cache order rows in Redis with a TTL."""
    cache = redis.Redis.from_url(settings.redis_operator_url)
    for message in records(consumer(f"{group}-orders", "orders")):
        after = after_row(message.value())
        if after is not None:
            cache.set(f"{prefix}order:{after['id']}", orjson.dumps(cached_order(after)), ex=CACHE_TTL_S)


@cli.command()
def details(output_topic: Annotated[str, typer.Option(help="Where completed orders go.")],
            group: Group, prefix: Prefix) -> None:
    """order_details.py: count products, check the cached order, lock, produce."""
    cache = redis.Redis.from_url(settings.redis_operator_url)
    producer = Producer(settings.kafka_client_config())
    for message in records(consumer(f"{group}-details", "order_details")):
        after = after_row(message.value())
        if after is None:
            continue
        order_id = after["order_id"]
        products_key = f"{prefix}order_products:{order_id}"
        with cache.pipeline(transaction=False) as pipe:
            pipe.hset(products_key, after["product_id"], after["quantity"])
            pipe.expire(products_key, CACHE_TTL_S)
            pipe.hgetall(products_key)
            pipe.get(f"{prefix}order:{order_id}")
            _, _, products, order = pipe.execute()
        value = completed_order(order_id, order and orjson.loads(order),
                                {int(p): int(q) for p, q in products.items()})
        if value is not None and cache.set(f"{prefix}order_trigger_lock:{order_id}", 1, nx=True, ex=LOCK_TTL_S):
            producer.produce(output_topic, key=order_id.encode(), value=orjson.dumps(value))
        producer.poll(0)


if __name__ == "__main__":
    run(cli)
