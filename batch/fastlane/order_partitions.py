"""Which partitions of a table partitioned by its orders' dates an order's rows may lie in.

Silver's `orders` and `order_details` (by `order_date`) and Gold's `fact_orders` (by
`order_date_id`) are read by order id every micro-batch. The ids are random UUIDs, which no
parquet file's statistics exclude, so a read filtered on them alone opens every file of the
table, and a shop's lake holds a partition per day. The lane holds, per table, the pairs
(order, partition) its rows lie in, the order as a 64-bit hash of its id (8 bytes a row, not
36 characters), read whole once and then brought to each of the lane's own writes from what
it wrote. A pair is taken out only by reading the table again (a row moved or deleted leaves
its old pair): the pairs are a superset of where the rows lie, so a read pruned to them misses
no row, and two orders sharing a hash only add a partition to read. A version of the table the
lane did not write (a Spark run, a compaction it did not report) makes it read them again. A
table not partitioned by the column is read unpruned.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from batch.fastlane.delta import Lake, partition_in
from batch.runs import Written

ORDER = "order_id"
MOST_CHUNKS = 64  # the pairs, appended to at each write, made contiguous again past so many pieces


def order_hashes(order_ids: pl.Series) -> pl.Series:
    return order_ids.cast(pl.String).hash().alias("order")


class OrderPartitions:
    """The partitions of the table at `location` (partitioned by `column`) each order's rows may
    lie in, at the table's version `version`, and the table's rows read from them."""

    def __init__(self, lake: Lake, location: str, column: str) -> None:
        self.lake, self.location, self.column = lake, location, column
        self.version: int | None = None
        self.pairs = pl.DataFrame()
        self.partitioned = False  # whether the table is partitioned by `column`

    def where(self, order_ids: pl.Series) -> str | None:
        """The partitions every stored row of `order_ids` lies in, as a SQL condition on the
        partition column (`Lake.read`'s `partitions`); None when the table does not exist yet
        or is not partitioned by it."""
        now = self.lake.version(self.location)
        if now is None:
            return None
        if now != self.version:
            self.load(now)
        if not self.partitioned:
            return None
        wanted = order_hashes(order_ids.unique())
        values = self.pairs.filter(pl.col("order").is_in(wanted.implode()))[self.column].unique().sort()
        return partition_in(self.column, values, table=None)

    def read(self, order_ids: pl.Series, columns: Sequence[str] | None = None) -> pl.DataFrame | None:
        """The rows of `order_ids`' orders, read from the partitions they lie in at the version
        the pairs are at (a commit landing since is read with the next call)."""
        partitions = self.where(order_ids)
        return self.lake.read(self.location, ORDER, order_ids, columns=columns, partitions=partitions,
                              version=self.version)

    def of_keys(self, rows: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame | None:
        """The rows whose key (`keys`, the order's id among them) is among `rows`', read as `read`."""
        partitions = self.where(rows[ORDER])
        return self.lake.of_keys(self.location, rows, keys, partitions=partitions, version=self.version)

    def load(self, version: int) -> None:
        self.partitioned = self.column in self.lake.table(self.location, version).metadata().partition_columns
        self.pairs = pairs_of(self.lake.read(self.location, columns=[ORDER, self.column], version=version),
                              self.column) if self.partitioned else pl.DataFrame()
        self.version = version

    def wrote(self, rows: pl.DataFrame, written: Written) -> None:
        """Bring the pairs to the lane's write of `rows` (their orders and partition values),
        when they were at the version the write started from; otherwise the next use reads them."""
        if not self.partitioned or written.version is None or not written.commits:
            return
        if self.version != written.version - written.commits:
            return
        added = pairs_of(rows, self.column).cast(dict(self.pairs.schema))
        # matched against the pairs of the written orders only: a join with all of them would
        # hash every pair the lake holds at each write
        held = self.pairs.filter(pl.col("order").is_in(added["order"].implode()))
        self.pairs = pl.concat([self.pairs, added.join(held, on=list(added.columns), how="anti", nulls_equal=True)])
        if self.pairs.n_chunks() > MOST_CHUNKS:
            self.pairs = self.pairs.rechunk()
        self.version = written.version

    def rows_unchanged(self, before: int, after: int) -> None:
        """The table went from `before` to `after` by one commit that moved no row to another
        partition (a compaction); more commits in between were not all its own."""
        if self.version == before and after - before <= 1:
            self.version = after


def pairs_of(rows: pl.DataFrame, column: str) -> pl.DataFrame:
    return rows.select(order_hashes(rows[ORDER]), pl.col(column)).unique()
