"""A Faust table written a flush at a time, for the commit protocol (streams.runtime.commit_protocol).

Faust writes a table key by key: each assignment is a RocksDB put, a changelog record in
its producer buffer with its own future and callbacks, and at its acknowledgement a RocksDB
write of the persisted offset: in a backlog, the largest share of a worker's CPU. The
commit protocol hands over a whole flush per partition instead, and this table writes it as
RocksDB puts plus one producer batch (aiokafka `create_batch`/`send_batch`) per partition,
with one persisted-offset write per batch. RocksDB and the changelog get the same bytes,
encoded by the table's own serializers, exactly as recovery writes changelog records back.

Order: the commit protocol submits flushes one after another, and aiokafka keeps one batch in
flight per partition, so each key's writes reach the changelog in the order they were
made; recovery replays them in that order.

Persisted offsets ("local RocksDB holds the changelog up to here", where recovery resumes)
count only writes acknowledged while this worker owns the partition: a write acknowledged
after the partition moved may land after the new owner's writes, and counting it would
make a later recovery here skip them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import faust
import orjson
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP, FutureMessage
from rocksdict import WriteBatch

from streams.runtime.producer import raw_producer
from streams.runtime.rocksdb_budget import budgeted


class ChangelogBatchTooSmall(RuntimeError):
    """A single record does not fit in an empty producer batch."""


class BatchWrittenTable(faust.Table):
    """Keys are str (JSON-encoded, as Faust's "json" key serializer does) and values bytes
    (the "raw" serializer): encoded here directly, not through Faust's serializer registry,
    a few microseconds per key and value on the state cache's hot path."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if (self.key_type, self.key_serializer, self.value_type, self.value_serializer) != (str, "json", bytes, "raw"):
            raise ValueError(f"{self.name}: a BatchWrittenTable has str keys (json) and bytes values (raw)")
        self._owned: frozenset[int] = frozenset()
        self._owned_for: object = None

    def _new_store_by_url(self, url):
        """Faust's store, its RocksDBs opened on the worker's memory budget (rocksdb_budget)."""
        store = super()._new_store_by_url(url)
        if isinstance(store, RocksDBStore):
            store.rocksdb_options = budgeted(store.rocksdb_options)
        return store

    def encode_key(self, key: str) -> bytes:
        """The key's bytes in RocksDB and the changelog: JSON, as Faust's json serializer
        writes it (the same bytes for ASCII keys, such as order ids; others go through Faust)."""
        return orjson.dumps(key) if key.isascii() else self.data._encode_key(key)

    def owned_partitions(self) -> frozenset[int]:
        """The partitions this worker owns, computed once per assignment (the assignor
        replaces its assignment object at each one)."""
        assignment = self.app.assignor._assignment
        if assignment is not self._owned_for:
            self._owned_for = assignment
            self._owned = frozenset(tp.partition for tp in self.app.assignor.assigned_actives())
        return self._owned

    def get_local(self, partition: int, key: str) -> bytes | None:
        """The key's value in the partition's RocksDB: one read. (Faust's `table.get` reads
        twice, once to test the key and once to fetch it, each through its mapping layers.)"""
        store = self.data
        if isinstance(store, RocksDBStore):
            return store._db_for_partition(partition).get(self.encode_key(key))
        return store.data.get(key)  # the in-memory store (test_context)

    def put_local(self, partition: int, items: Iterable[tuple[str, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
        """Write (key, value) pairs to the partition's RocksDB, a None value deleting the key;
        the encoded pairs, for the changelog (where None is a tombstone)."""
        store, items = self.data, list(items)
        encoded = [(self.encode_key(key), value) for key, value in items]
        if isinstance(store, RocksDBStore):
            batch = WriteBatch(raw_mode=True)  # one write for the flush's keys, not one per key
            for key, value in encoded:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)
            store._db_for_partition(partition).write(batch)
        else:  # the in-memory store (test_context) holds keys and values as they are
            for key, value in items:
                if value is None:
                    store.data.pop(key, None)
                else:
                    store.data[key] = value
        return encoded

    def scan_local(self, partition: int, after: str | None, limit: int) -> list[tuple[str, bytes]]:
        """Up to `limit` (key, value) pairs of the partition's RocksDB in key order, from the
        first key after `after` (from the first key if None). Faust's own entry in the same
        database, its persisted changelog offset, is skipped (as Faust's own iteration does)."""
        store = self.data
        if not isinstance(store, RocksDBStore):  # the in-memory store (test_context)
            ordered = sorted((self.encode_key(key), key, value) for key, value in store.data.items())
            start = None if after is None else self.encode_key(after)
            return [(key, value) for encoded, key, value in ordered if start is None or encoded > start][:limit]
        cursor = store._db_for_partition(partition).iter()
        try:
            if after is None:
                cursor.seek_to_first()
            else:
                cursor.seek(self.encode_key(after))
                if cursor.valid() and cursor.key() == self.encode_key(after):
                    cursor.next()
            found = []
            while cursor.valid() and len(found) < limit:
                key = cursor.key()
                if key != store.offset_key:
                    found.append((orjson.loads(key), cursor.value()))
                cursor.next()
            return found
        finally:
            del cursor

    def stored_keys(self, partition: int) -> int:
        """About how many keys the partition's RocksDB holds (RocksDB's own estimate)."""
        store = self.data
        if not isinstance(store, RocksDBStore):
            return len(store.data)
        return store._db_for_partition(partition).property_int_value("rocksdb.estimate-num-keys") or 0

    def open_dbs(self) -> list:
        """The RocksDB of every partition open here (none for the in-memory store)."""
        store = self.data
        return list(store._dbs.values()) if isinstance(store, RocksDBStore) else []

    async def send_changelog_batches(self, partition: int,
                                     records: list[tuple[bytes, bytes | None]]) -> list[tuple[asyncio.Future, int]]:
        """Hand the records to the producer as batches for the changelog partition, in order;
        per batch, the future of its RecordMetadata (base offset) and its record count."""
        producer = raw_producer(self.app)
        topic = self.changelog_topic.get_topic_name()
        sent: list[tuple[asyncio.Future, int]] = []
        batch, count = producer.create_batch(), 0
        for key, value in records:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full
                sent.append((await producer.send_batch(batch, topic, partition=partition), count))
                batch, count = producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ChangelogBatchTooSmall(f"a {len(value or b'')}-byte changelog record does not fit in a batch")
            count += 1
        if count:
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
        return sent

    def persist_offset(self, partition: int, offset: int) -> None:
        """Local RocksDB holds the changelog partition up to `offset` (if still ours)."""
        if partition in self.owned_partitions():
            self.data.set_persisted_offset(TP(self.changelog_topic.get_topic_name(), partition), offset)

    def _on_changelog_sent(self, fut: FutureMessage) -> None:
        # Faust's own per-key writes (none in the product; kept to the same rule).
        if fut.result().partition in self.owned_partitions():
            super()._on_changelog_sent(fut)
