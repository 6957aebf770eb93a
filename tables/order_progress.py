"""The `order_progress` table: per-order state (header, received products, emitted).

Keyed by order id (str, JSON-encoded in the changelog exactly as the CDC record keys are,
so its partitions and Faust's web routing agree with the CDC topics). Values are
`tables.progress_codec` bytes. RocksDB-backed, with a changelog topic in Kafka, read and
written through the write-back cache `order_states`.
"""

from __future__ import annotations

from agents.completion import OrderProgress
from config import settings
from streams.app import app
from streams.changelog import BatchWrittenTable
from streams.state_cache import WriteBackCache
from tables import progress_codec

# The state cache writes each changed order once per flush (streams.state_cache).
FLUSH_INTERVAL_S = 0.25


order_progress: BatchWrittenTable = app.tables.add(BatchWrittenTable(
    app,
    name="order_progress",
    key_type=str,
    value_type=bytes,
    partitions=settings.topic_partitions,
    beacon=app.tables.beacon,
    help="Per-order completion state: header, received products, emitted.",
    options={"block_cache_size": 32 << 20, "write_buffer_size": 8 << 20},
))
# Every read and write of order state goes through this cache (read-your-writes): the table
# itself holds what was flushed, up to FLUSH_INTERVAL_S older.
order_states: WriteBackCache[OrderProgress] = WriteBackCache(
    order_progress, encode=progress_codec.encode, decode=progress_codec.decode, empty=OrderProgress,
    flush_interval_s=FLUSH_INTERVAL_S, on_write_failure=lambda: app.consumer.reread_uncommitted())
