"""The JDBC snapshot: MySQL -> `s3a://bronze/<table>` (orders and details partitioned
year/month/day of the order's time), in parallel partitioned reads.

The first run (or `--full`) reads every table whole. Later runs read orders and their details
from the stored watermark (the newest `orders.timestamp` seen) minus BATCH_LOOKBACK_MINUTES,
which catches rows committed late; reference tables only in the id buckets whose signature,
computed by the database, moved since the last run (batch.transforms.snapshot). Either way
only rows that differ are written, and rows gone from the source within the range read are
deleted. Run: `python -m batch snapshot [--full]`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import orjson
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.job import LayerJob
from batch.names import BRONZE, snapshot_location
from batch.runs import LayerRun
from batch.session import jdbc_options
from batch.store import delta_log, reads, writes
from batch.transforms.snapshot import (BUCKET_KEYS, DETAILS_QUERY, PARTITION_COLUMNS, bucket_predicates,
                                     bucket_signatures_query, changed_buckets, hash_predicates,
                                     with_date_partitions)
from batch.transforms.common import missing_keys, nullable
from config import Settings

LAYER = BRONZE
WATERMARK = "orders"  # the mark's name: newest orders.timestamp read
REFERENCE_TABLES = ("payment_method", "customers")  # keyed by `id`, compared by bucket signatures
# Marks are UTC wall-clock text, never Python datetimes (PySpark would shift those to the
# local time zone): the same instant in Spark's session time zone, MySQL's and the mark.
MOMENT_SPARK = "yyyy-MM-dd HH:mm:ss.SSSSSS"
MOMENT_PYTHON = "%Y-%m-%d %H:%M:%S.%f"
MOMENT_MYSQL = "%Y-%m-%d %H:%i:%s.%f"


def moment(mark: str, *, minus: timedelta) -> str:
    return (datetime.strptime(mark, MOMENT_PYTHON) - minus).strftime(MOMENT_PYTHON)


def read_table(spark: SparkSession, settings: Settings, table: str, *,
               predicates: list[str] | None = None) -> DataFrame:
    options = jdbc_options(settings, table)
    if predicates is None:
        return spark.read.format("jdbc").options(**options).load()
    return spark.read.jdbc(options.pop("url"), options.pop("dbtable"), predicates=predicates,
                           properties=options)


def read_by_range(spark: SparkSession, settings: Settings, table: str, column: str,
                  partitions: int) -> DataFrame:
    """The whole table in `partitions` reads over equal ranges of a numeric `column`."""
    bounds = read_table(spark, settings, f"(SELECT MIN({column}) lo, MAX({column}) hi FROM {table}) b").first()
    reader = spark.read.format("jdbc").options(**jdbc_options(settings, table))
    if bounds["lo"] is not None:
        reader = (reader.option("partitionColumn", column).option("lowerBound", bounds["lo"])
                  .option("upperBound", bounds["hi"]).option("numPartitions", partitions))
    return reader.load()


class SnapshotJob(LayerJob):
    layer = LAYER

    def land(self, tables: LayerRun, table: str, rows: DataFrame, keys: list[str], *,
             scope: Column | None = None, partition_by=()) -> DataFrame:
        """Write `rows` (the source's rows within `scope`, all when None) to Bronze: changed
        rows merged, rows of the scope the source no longer has deleted."""
        location = snapshot_location(self.settings, table)
        with tables.table(table) as counts:
            rows = rows.transform(nullable).cache()
            counts.read = rows.count()
            deletes = None
            if delta_log.exists(self.spark, location):
                current = reads.read(self.spark, location)
                deletes = missing_keys(current if scope is None else current.filter(scope), rows, keys)
            counts.written = writes.upsert(self.spark, location, rows, keys, deletes=deletes,
                                         partition_by=partition_by).rows
        return rows

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        spark, settings = self.spark, self.settings
        partitions = max(2, spark.sparkContext.defaultParallelism)
        mark = marks.get(WATERMARK)
        since = moment(mark, minus=timedelta(minutes=settings.batch_lookback_minutes)) if mark else None
        # The database's clock before reading: the mark never passes it, so an order dated in
        # the future cannot push the watermark past orders written after it.
        clock = read_table(spark, settings,
                           f"(SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '{MOMENT_MYSQL}') now) c").first()["now"]
        # The reference tables' signatures are a few seconds of database time in which Spark
        # would idle: they are read on a second thread while orders and details land.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bronze-reference") as pool:
            references = pool.submit(self.land_references, tables, marks, partitions)
            orders = self.land_orders(tables, since, partitions)
            signatures = references.result()
        newest = orders.agg(F.date_format(F.max("timestamp"), MOMENT_SPARK)).first()[0]
        if newest is None:
            return signatures
        newest = min(newest, clock)  # fixed format: text order is time order
        return {**signatures, **({WATERMARK: newest} if mark is None or newest > mark else {})}

    def land_orders(self, tables: LayerRun, since: str | None, partitions: int) -> DataFrame:
        """Orders and their details from `since` (all when None); the orders read."""
        spark, settings = self.spark, self.settings
        in_scope = (lambda column: F.col(column) >= F.lit(since).cast("timestamp")) if since else (lambda _: None)
        orders = self.land(
            tables, "orders",
            read_table(spark, settings, "orders", predicates=hash_predicates("id", partitions, "timestamp", since))
            .transform(with_date_partitions, "timestamp"),
            ["id"], scope=in_scope("timestamp"), partition_by=PARTITION_COLUMNS)
        self.land(tables, "order_details",
                  read_table(spark, settings, DETAILS_QUERY,
                             predicates=hash_predicates("order_id", partitions, "order_timestamp", since))
                  .transform(with_date_partitions, "order_timestamp"),
                  ["order_id", "product_id"], scope=in_scope("order_timestamp"), partition_by=PARTITION_COLUMNS)
        return orders

    def land_references(self, tables: LayerRun, marks: dict[str, str], partitions: int) -> dict[str, str]:
        return {table: self.land_reference(tables, table, marks.get(table), partitions) for table in REFERENCE_TABLES}

    def land_reference(self, tables: LayerRun, table: str, mark: str | None, partitions: int) -> str:
        """A reference table: read whole on a first (or --full) run, later only the id buckets
        whose signature moved; its signatures now, the table's mark."""
        spark, settings = self.spark, self.settings
        columns = read_table(spark, settings, f"(SELECT * FROM `{table}` LIMIT 0) AS z").columns
        now = {str(row["bucket"]): f"{row['n']}:{row['sig']}"
               for row in read_table(spark, settings, bucket_signatures_query(table, "id", columns)).collect()}
        if mark is None:
            self.land(tables, table, read_by_range(spark, settings, table, "id", partitions), ["id"])
        else:
            buckets = changed_buckets(orjson.loads(mark), now)
            if buckets:
                self.land(tables, table, read_table(spark, settings, table,
                                                    predicates=bucket_predicates("id", buckets, partitions)),
                          ["id"], scope=(F.col("id") / BUCKET_KEYS).cast("long").isin(buckets))  # as DIV does
            else:
                with tables.table(table):
                    pass  # nothing moved: nothing read, nothing written
        return orjson.dumps(now).decode()
