"""The `order_progress` table: per-order state (header, received products, emitted).

Keyed by order id (str, JSON-encoded in the changelog exactly as the CDC record keys are,
so its partitions and Faust's web routing agree with the CDC topics). Values are
`tables.order_state` bytes. RocksDB-backed, with a changelog topic in Kafka, read and
written through a write-back cache (`state_cache`, one per worker); `current_state` and
`stored_states` read it typed.
"""

from __future__ import annotations

from collections.abc import Iterator

from config import settings
from streams.app import app
from streams.topics import TOPIC_CONFIG
from streams.runtime.changelog_table import BatchWrittenTable
from streams.runtime.commit_protocol import CommitProtocol
from streams.runtime.state_cache import WriteBackCache
from tables import order_state
from tables.order_state import OrderState

# The state cache's changed orders are written once per flush (streams.runtime.commit_protocol).
FLUSH_INTERVAL_S = 0.25
# A partition's memtables: up to two of 8 MB, within the worker's RocksDB budget
# (streams.runtime.rocksdb_budget), which also holds the block cache.
ROCKSDB_OPTIONS = {"write_buffer_size": 8 << 20, "max_write_buffer_number": 2}


order_progress: BatchWrittenTable = app.tables.add(BatchWrittenTable(
    app,
    name="order_progress",
    key_type=str,
    value_type=bytes,
    partitions=settings.topic_partitions,
    beacon=app.tables.beacon,
    help="Per-order completion state: header, received products, emitted.",
    options=ROCKSDB_OPTIONS,
    extra_topic_configs=TOPIC_CONFIG,
))


def state_cache() -> WriteBackCache[OrderState]:
    """The write-back cache every read and write of order state goes through (read-your-writes):
    the table itself holds what was flushed, up to FLUSH_INTERVAL_S older. One per worker
    (agents.completion_worker)."""
    return WriteBackCache(order_progress, encode=order_state.encode, decode=order_state.decode, empty=OrderState)


def commit_protocol(states: WriteBackCache[OrderState]) -> CommitProtocol:
    """The worker's commit protocol over its state cache and this table: records committed only
    once the changelog holds what they changed. One per worker (agents.completion_worker)."""
    return CommitProtocol(app, states, order_progress, flush_interval_s=FLUSH_INTERVAL_S)


def current_state(states: WriteBackCache[OrderState], order_id: str) -> OrderState | None:
    """The order's newest state on this worker: the cache's, else the table's; None if unknown."""
    state = states.peek(order_id)
    if state is None:
        raw = order_progress.get(order_id)
        state = None if raw is None else order_state.decode(raw)
    return None if state == NOTHING_KNOWN else state  # dropped, or never heard of


NOTHING_KNOWN = OrderState()


def stored_states() -> Iterator[tuple[str, OrderState]]:
    """Every order the table holds on this worker, as flushed."""
    for order_id, raw in order_progress.items():
        yield order_id, order_state.decode(raw)
