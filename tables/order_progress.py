"""The `order_progress` table: per-order state (header, received products, emitted flag).

Keyed by order id (str, JSON-encoded in the changelog exactly as the CDC record keys are,
so its partitions and Faust's web routing agree with the CDC topics). Values are
`tables.progress_codec` bytes. RocksDB-backed, with a changelog topic in Kafka.
"""

from __future__ import annotations

from config import settings
from streams.app import app

order_progress = app.Table(
    "order_progress",
    key_type=str,
    value_type=bytes,
    partitions=settings.topic_partitions,
    help="Per-order completion state: header, received products, emitted.",
    options={"block_cache_size": 32 << 20, "write_buffer_size": 8 << 20},
)
