"""The worker's RocksDB memory budget: one block cache and one memtable limit for every
RocksDB it opens (real RocksDB files in a temporary directory, no services)."""

from __future__ import annotations

from faust.stores.rocksdb import RocksDBOptions

from streams.runtime.rocksdb_budget import (BLOCK_CACHE, MEMTABLES, BudgetedOptions, budget_usage,
                                            budgeted)
from tables.order_progress import ROCKSDB_OPTIONS, order_progress


def test_every_database_opened_on_the_budget_shares_its_block_cache_and_memtable_limit(tmp_path):
    options = BudgetedOptions(write_buffer_size=8 << 20)
    dbs = [options.open(tmp_path / name) for name in ("a", "b")]
    try:
        memtables_before = MEMTABLES.get_usage()
        for db in dbs:
            for n in range(5_000):
                db[b"key%d" % n] = b"v" * 200
        memtables_written = MEMTABLES.get_usage()
        for db in dbs:
            db.flush()
            for n in range(0, 5_000, 100):
                assert db[b"key%d" % n] == b"v" * 200
        shown = [db.property_int_value("rocksdb.block-cache-usage") for db in dbs]
        usage = budget_usage(dbs)
    finally:
        for db in dbs:
            db.close()

    assert memtables_written > memtables_before + 1_000_000, (memtables_before, memtables_written)
    assert shown[0] == shown[1] == BLOCK_CACHE.get_usage() > 0, shown  # one cache, not one each
    assert usage["block_cache"] == shown[0] and usage["table_readers"] > 0, usage


def test_a_table_s_options_keep_their_sizes_on_the_budget():
    faust_built = RocksDBOptions(**ROCKSDB_OPTIONS, ttl=60)

    options = budgeted(faust_built)

    assert isinstance(options, BudgetedOptions)
    assert (options.write_buffer_size, options.max_write_buffer_number, options.ttl) == (8 << 20, 2, 60)


def test_the_order_table_opens_its_partitions_on_the_budget(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the app's datadir is relative

    store = order_progress._new_store()

    assert isinstance(store.rocksdb_options, BudgetedOptions)
