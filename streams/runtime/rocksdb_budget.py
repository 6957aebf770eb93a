"""One RocksDB memory budget per worker: every RocksDB the worker opens (each `order_progress`
partition it owns, and its reference data) shares one block cache and one memtable limit.

Faust opens a RocksDB per table partition, each with a block cache and memtables of its own,
so a worker's memory would grow with every partition it took over. Shared, the budget holds
whatever the worker owns: RocksDB flushes the largest memtable when all of them together
near `MEMTABLE_BYTES` (a WriteBufferManager that never stalls writers), and the block cache
evicts across all of them. The bounds are RocksDB's: a memtable being flushed and the index
and filter blocks of open files (`table_readers`) come on top.
"""

from __future__ import annotations

from collections.abc import Iterable

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

BLOCK_CACHE_BYTES = 32 << 20
MEMTABLE_BYTES = 32 << 20

BLOCK_CACHE = rocksdict.Cache(BLOCK_CACHE_BYTES)
MEMTABLES = rocksdict.WriteBufferManager(MEMTABLE_BYTES, False)


class BudgetedOptions(RocksDBOptions):
    """Faust's RocksDB options (for rocksdict), with the worker's shared block cache and
    memtable limit in place of a cache and limit per database."""

    def as_options(self) -> rocksdict.Options:
        options = super().as_options()
        table = rocksdict.BlockBasedOptions()
        table.set_bloom_filter(self.bloom_filter_size, block_based=True)
        table.set_block_cache(BLOCK_CACHE)
        table.set_index_type(rocksdict.BlockBasedIndexType.binary_search())
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(MEMTABLES)
        return options


def budgeted(options: RocksDBOptions) -> BudgetedOptions:
    """The same options (as Faust built them for a table) on the worker's budget."""
    return BudgetedOptions(max_open_files=options.max_open_files, write_buffer_size=options.write_buffer_size,
                           max_write_buffer_number=options.max_write_buffer_number,
                           target_file_size_base=options.target_file_size_base,
                           bloom_filter_size=options.bloom_filter_size, ttl=options.ttl)


def budget_usage(dbs: Iterable[rocksdict.Rdict]) -> dict[str, int]:
    """Bytes RocksDB holds in memory, by its own account, for the open databases `dbs`: the
    shared block cache and memtable limit with what they hold, and the index and filter blocks
    of open files (`table_readers`)."""
    table_readers = sum(db.property_int_value("rocksdb.estimate-table-readers-mem") or 0 for db in dbs)
    return {"block_cache": BLOCK_CACHE.get_usage(), "block_cache_capacity": BLOCK_CACHE_BYTES,
            "memtables": MEMTABLES.get_usage(), "memtable_limit": MEMTABLE_BYTES, "table_readers": table_readers}
