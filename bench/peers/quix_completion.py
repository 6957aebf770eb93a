"""Our completion rule on Quix Streams, for comparison: python -m bench.peers.quix_completion ...

Same decision as ours (agents.completion_rule's pure functions on streams.codec's changes); the
rest is Quix's way of doing it:
- both CDC topics are read as two dataframes and `concat`enated. Their records are keyed by
  the bare order id and the topics are co-partitioned, so one order's changes share one
  state (Quix's RocksDB store, changelog in Kafka) under that key.
- Cross-topic order comes from Quix's time alignment (on once topics are concatenated): the
  partitions of one number are read in timestamp order (LogAppendTime here). Per-key state
  cannot see other orders, so there is no frontier to wait on: the rule is asked with the
  orders topic taken as caught up at every event. That trusts append times to follow commit
  order across the two topics, which ours does not (it compares binlog positions).
- Before producing, `SET NX` on `{prefix}order_trigger_lock:{order_id}` (no TTL): a replay
  after a crash finds the key and sends nothing. `--no-claim` leaves it out (Quix alone).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import redis
import typer

from agents.completion_rule import CAUGHT_UP, Verdict, apply_detail, apply_order, completed_order, verdict
from config import settings
from config.cli import run
from streams.codec import DetailChange, OrderChange, decode_detail, decode_order
from tables import order_state
from tables.order_state import OrderState

STATE_KEY = "progress"


def step(raw_state: bytes | None, change: OrderChange | DetailChange) -> tuple[bytes, dict | None]:
    """The order's state after `change`, and the order_final value if it is to be emitted now."""
    state = order_state.decode(raw_state) if raw_state is not None else OrderState()
    state = apply_order(state, change) if isinstance(change, OrderChange) else apply_detail(state, change)
    emitted = None
    if verdict(state, CAUGHT_UP) is Verdict.EMIT:
        state = state._replace(emitted=True)
        emitted = completed_order(change.order_id, state, datetime.now(timezone.utc).isoformat())
    return order_state.encode(state), emitted


def main(
    output_topic: Annotated[str, typer.Option(help="Where completed orders go.")],
    group: Annotated[str, typer.Option(help="Consumer group (and Quix state/changelog names).")],
    prefix: Annotated[str, typer.Option(help="Redis key prefix of this run.")],
    state_dir: Annotated[Path, typer.Option(help="Quix's RocksDB folder (one per process).")],
    claim: Annotated[bool, typer.Option(help="Claim each order in Redis (SET NX) before producing it.")] = True,
) -> None:
    """Run the completion logic as a Quix Streams application until SIGTERM."""
    # Imported here so that `step` (unit-tested) does not need the optional `bench` extra.
    from quixstreams import Application
    from quixstreams.kafka.configuration import ConnectionConfig

    broker = ConnectionConfig.from_librdkafka_dict(settings.kafka_client_config("stream"))
    app = Application(broker_address=broker, consumer_group=group,
                      auto_offset_reset="earliest", state_dir=state_dir, loglevel="WARNING")
    guard = redis.Redis.from_url(settings.redis_operator_url)

    def cdc(table: str):
        return app.dataframe(app.topic(settings.cdc_topic(table), key_deserializer="bytes",
                                       value_deserializer="bytes"))

    def progress(change, state):
        raw, emitted = step(state.get_bytes(STATE_KEY), change)
        state.set_bytes(STATE_KEY, raw)
        return emitted

    def first_claim(value: dict) -> bool:
        return bool(guard.set(f"{prefix}order_trigger_lock:{value['order_id']}", 1, nx=True))

    orders = cdc("orders").apply(lambda value: decode_order(None, value))
    details = cdc("order_details").apply(lambda value: decode_detail(None, value))
    changes = orders.concat(details).filter(lambda change: isinstance(change, (OrderChange, DetailChange)))
    completed = changes.apply(progress, stateful=True).filter(lambda value: value is not None)
    if claim:
        completed = completed.filter(first_claim)
    completed.to_topic(
        app.topic(output_topic, key_serializer="str", value_serializer="json"),
        key=lambda value: value["order_id"])
    app.run()


if __name__ == "__main__":
    run(main)
