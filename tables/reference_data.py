"""Reference data: customers and payment methods as their CDC topics last said, for
enriching `order_final` (agents.emission.exactly_once).

Every worker keeps all of it, in a RocksDB of its own beside the tables (1,000,000 customers
are about 100 MB on disk), read from the CDC topics by `streams.runtime.reference_reader`. Not a
Faust table: docs/stream.md ("Enrichment") says why. Values are stored as the JSON object
order_final carries (`{"id", "name", "email", "city"}`), so an emission embeds the bytes as
they are (`orjson.Fragment`) instead of decoding them.

Order: each row's changes come in one partition, in commit order (Debezium keys them by
id), and are applied in that order; the last one wins. A Kafka Connect replay re-sends
older changes before the newer ones again, so a replayed row is briefly older, never lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import orjson
from rocksdict import WriteBatch

from config import settings
from streams.app import app
from streams import topics
from streams.codec import ReferenceRow, Tombstone, Truncate, decode_reference
from streams.runtime.reference_reader import TopicReader
from streams.runtime.rocksdb_budget import BudgetedOptions

log = logging.getLogger(__name__)

# Memtables are flushed at 8 MB: a first read of 1,000,000 customers would otherwise sit in
# memory (RSS) until the default 64 MB write buffers fill. On the worker's RocksDB budget.
OPTIONS = BudgetedOptions(write_buffer_size=8 << 20)
PREFIX = {"customers": b"c:", "payment_method": b"p:"}
OFFSETS = b"\x00offsets"  # sorts first; never a row key


class ReferenceData:
    """The reference rows of one worker, and how far their topics have been read."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = OPTIONS.open(path)
        stored = self.db.get(OFFSETS)
        self._offsets: dict[str, int] = orjson.loads(stored) if stored else {}

    def next_offsets(self) -> Mapping[tuple[str, int], int]:
        """Per (topic, partition): the offset to read next (absent: from the beginning)."""
        return {(topic, int(partition)): offset for topic, partition_offsets in self._offsets.items()
                for partition, offset in partition_offsets.items()}

    def apply(self, rows: Iterable[ReferenceRow], read: Mapping[tuple[str, int], int]) -> None:
        """Write the rows and the offsets read next, in one RocksDB write: a crash keeps both
        or neither, so a restart reads again exactly what was not written."""
        batch = WriteBatch(raw_mode=True)
        for row in rows:
            key = PREFIX[row.table] + str(row.row_id).encode()
            if row.fields is None:
                batch.delete(key)
            else:
                batch.put(key, orjson.dumps({"id": row.row_id, **row.fields}))
        for (topic, partition), offset in read.items():
            self._offsets.setdefault(topic, {})[str(partition)] = offset
        batch.put(OFFSETS, orjson.dumps(self._offsets))
        self.db.write(batch)

    def customer(self, customer_id: int | None) -> orjson.Fragment | None:
        return self._get(b"c:", customer_id)

    def payment_method(self, payment_method_id: int | None) -> orjson.Fragment | None:
        return self._get(b"p:", payment_method_id)

    def _get(self, prefix: bytes, row_id: int | None) -> orjson.Fragment | None:
        if row_id is None:
            return None
        raw = self.db.get(prefix + str(row_id).encode())
        return None if raw is None else orjson.Fragment(raw)

    def customer_row(self, customer_id: int | None) -> dict | None:
        """The customer as a dict (for views; emissions embed the bytes)."""
        raw = None if customer_id is None else self.db.get(b"c:" + str(customer_id).encode())
        return None if raw is None else orjson.loads(raw)

    def count(self, table: str) -> int:
        """Rows held of `table` (a scan: for tests and tools, not the hot path)."""
        prefix = PREFIX[table]
        iterator = self.db.iter()
        iterator.seek(prefix)
        n = 0
        while iterator.valid() and iterator.key().startswith(prefix):
            n += 1
            iterator.next()
        return n

    def open_dbs(self) -> list:
        return [self.db]

    def close(self) -> None:
        self.db.close()


TABLE_OF_TOPIC = {settings.cdc_topic(table): table for table in PREFIX}


def decode(topic: str, key: bytes | None, value: bytes | None) -> ReferenceRow | None:
    """A reference record as the row to write; None for what changes no row (tombstones follow
    deletes; a TRUNCATE keeps the rows: orders in flight still name them)."""
    change = decode_reference(TABLE_OF_TOPIC[topic], key, value)
    if isinstance(change, Truncate):
        log.warning("TRUNCATE of %s at %s ignored: reference rows are kept", change.table, change.position)
    return None if isinstance(change, (Tombstone, Truncate)) else change


def reference_reader() -> TopicReader:
    """This worker's reader of the reference topics into its own store (one per worker,
    agents.completion_worker; agents.upkeep keeps it current)."""
    return TopicReader(list(TABLE_OF_TOPIC), decode=decode, dead_letter=topics.dead_letter,
                       open_store=lambda: ReferenceData(Path(app.conf.tabledir) / "reference_data"))


def enrichment(store: ReferenceData | None, customer_id: int | None,
               payment_method_id: int | None) -> tuple[orjson.Fragment | None, ...]:
    """The order's customer and payment method as order_final carries them; None if unknown."""
    if store is None:  # not read yet (Faust's test_context runs no reader)
        return None, None
    return store.customer(customer_id), store.payment_method(payment_method_id)
