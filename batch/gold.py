"""Gold: Silver's changes since the last run -> the star schema (then the marts: batch.marts).

Dimensions take changed rows (SCD type 1; a dimension row is never deleted, facts may point
at it), except customers, which keep their versions (SCD type 2: a change closes the
current version and opens a new one; a deletion closes it). Facts are recomputed for the
orders touched: changed orders, orders whose details changed, and orders still pointing at
an unknown member (so a late customer is picked up). An order cancelled at the source (kept
in Silver, marked deleted) has its fact with `status` cancelled; one gone from Silver (its
newest version quarantined) keeps its last fact, marked `is_deleted`. Run: `python -m batch gold [--full]`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch import lake
from batch.job import LayerJob
from batch.runs import LayerRun, log
from batch.marts import MartsJob
from batch.transforms import gold
from batch.transforms.common import missing_keys
from batch.silver import history_name
from batch.transforms.silver import ORDER_DETAILS, ORDERS, TABLES, SilverTable, latest_changes
from config import Settings

LAYER = "gold"
DIMENSIONS = {  # Gold dimension -> its key, the Silver table it is built from, and how
    "dim_customer": ("customer_key", "customers", gold.dim_customer),
    "dim_payment_method": ("payment_method_key", "payment_method", gold.dim_payment_method),
    "dim_product": ("product_key", "order_details", gold.dim_product),
    "dim_date": ("date_id", "orders", gold.dim_date),
}


class GoldJob(LayerJob):
    """One Gold run: reads Silver's changes once, writes dimensions, then facts."""

    layer = LAYER

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        self.tables, self.marks = tables, marks
        self.versions: dict[str, int] = {}
        self.changed: dict[str, DataFrame] = {}
        self.gone: dict[str, DataFrame] = {}  # keys deleted from Silver since the last run
        for table in TABLES:
            seen = marks.get(table.name)
            changes, self.versions[table.name] = lake.changes_since(
                self.spark, self.silver(table.name), None if seen is None else int(seen))
            latest = changes.withColumn("_changed_at", F.coalesce("changed_at", "_commit_timestamp"))
            if self.moved(table.name):  # else no rows: nothing to compute or store
                # A first read is Silver's snapshot, each key once.
                latest = (latest if seen is None else latest_changes(latest, table.keys)).localCheckpoint()
            self.split_changes(table, latest)
        self.rebuild_if_before_history()
        self.dimensions()
        self.facts()
        return {table: str(version) for table, version in self.versions.items()}

    def split_changes(self, table: SilverTable, latest: DataFrame) -> None:
        """Silver's newest changes as rows live now, and keys gone: deleted at the source
        (kept in Silver, marked) or gone from Silver (quarantined)."""
        gone = (F.col("_change_type") == "delete") | F.coalesce(F.col("is_deleted"), F.lit(False))
        self.changed[table.name] = latest.filter(~gone).select(*table.columns, "_changed_at")
        self.gone[table.name] = latest.filter(gone).select(*table.keys, "_changed_at")

    def silver(self, table: str) -> str:
        return lake.path(self.settings, "silver", table)

    def gold(self, table: str) -> str:
        return lake.path(self.settings, LAYER, table)

    def moved(self, *tables: str) -> bool:
        """Whether any of these Silver tables changed since the last run."""
        return any(str(self.versions[table]) != self.marks.get(table) for table in tables)

    def write(self, table: str, rows: DataFrame, keys: list[str], *, read: int,
              deletes: DataFrame | None = None, partition_by=()) -> None:
        with self.tables.table(table) as counts:
            counts.read = read
            counts.written = lake.upsert(self.spark, self.gold(table), rows, keys, deletes=deletes,
                                         partition_by=partition_by).rows

    def rebuild_if_before_history(self) -> None:
        """Gold written before customer versions (an int `customer_key`) cannot take them: it
        is derived data, so it is dropped and this run rebuilds it from all of Silver."""
        location = self.gold("dim_customer")
        if not lake.exists(self.spark, location) or "valid_from" in lake.read(self.spark, location).columns:
            return
        log.warning("gold predates customer history (SCD type 2): rebuilding it from Silver")
        for table in (*DIMENSIONS, "fact_orders", "fact_order_products"):
            lake.drop(self.spark, self.gold(table))
        self.marks = {}
        self.full = True
        for table in TABLES:
            changes, _ = lake.changes_since(self.spark, self.silver(table.name), None)
            self.split_changes(table, changes.withColumn("_changed_at", F.coalesce("changed_at", "_commit_timestamp")))

    def dimensions(self) -> None:
        for name, (key, source, build) in DIMENSIONS.items():
            if not self.moved(source):
                continue
            changed = self.changed[source]
            versioned = name == "dim_customer" and lake.exists(self.spark, self.gold(name))
            rows = self.customer_versions() if versioned else build(changed)
            self.write(name, rows, [key], read=changed.count())

    def customer_versions(self) -> DataFrame:
        changed, gone = self.changed["customers"], self.gone["customers"]
        ids = changed.select("customer_id").unionByName(gone.select("customer_id")).distinct()
        versions = lake.read(self.spark, self.gold("dim_customer")).join(F.broadcast(ids), "customer_id", "left_semi")
        return gold.customer_versions(changed, gone, versions)

    def touched_orders(self) -> DataFrame:
        """Order ids whose facts must be recomputed."""
        ids = (self.changed["orders"].select("order_id")
               .unionByName(self.gone["orders"].select("order_id"))
               .unionByName(self.changed["order_details"].select("order_id"))
               .unionByName(self.gone["order_details"].select("order_id")))
        facts = self.gold("fact_orders")
        if lake.exists(self.spark, facts):
            current = lake.read(self.spark, facts)
            unresolved = F.col("customer_key") == gold.UNKNOWN
            unresolved |= F.col("payment_method_key") == gold.UNKNOWN
            ids = ids.unionByName(current.filter(~F.col("is_deleted") & (F.lit(self.full) | unresolved))
                                  .select("order_id"))
        return ids.distinct().localCheckpoint()  # eager, and later plans skip its lineage

    def facts(self) -> None:
        if not self.moved(*self.versions):
            return
        touched = self.touched_orders()
        orders = lake.read(self.spark, self.silver(ORDERS.name)).join(touched, "order_id", "left_semi")
        details = (lake.read(self.spark, self.silver(ORDER_DETAILS.name)).filter(~F.col("is_deleted"))
                   .join(touched, "order_id", "left_semi").localCheckpoint())  # the facts and their products
        placed = (lake.read(self.spark, self.silver(history_name(ORDERS.name))).join(touched, "order_id", "left_semi")
                  .groupBy("order_id").agg(F.min("valid_from").alias("placed_at")))
        dimension = {name: lake.read(self.spark, self.gold(name)) for name in DIMENSIONS}
        # Only the customers these orders name: a broadcast semi-join instead of shuffling
        # the whole dimension (1,000,000 rows at seed size) for a few hundred orders.
        customers = dimension["dim_customer"].join(
            F.broadcast(orders.select("customer_id").distinct()), "customer_id", "left_semi")
        facts = gold.fact_orders(orders, details, customers, dimension["dim_payment_method"],
                                 dimension["dim_date"], placed).localCheckpoint()
        touched_count = touched.count()
        written = facts
        if lake.exists(self.spark, self.gold("fact_orders")):
            current = lake.read(self.spark, self.gold("fact_orders")).join(touched, "order_id", "left_semi")
            deletions = self.gone["orders"].select("order_id", "_changed_at")
            written = facts.unionByName(gold.cancelled_facts(current, facts, deletions), allowMissingColumns=True)
        self.write("fact_orders", written, ["order_id"], read=touched_count, partition_by=["order_date_id"])
        products = gold.fact_order_products(details, facts.filter(~F.col("is_deleted")), dimension["dim_product"])
        location = self.gold("fact_order_products")
        stale = None
        if lake.exists(self.spark, location):
            current = lake.read(self.spark, location).join(touched, "order_id", "left_semi")
            stale = missing_keys(current, products, ["order_id", "product_id"])
        self.write("fact_order_products", products, ["order_id", "product_id"],
                   read=touched_count, deletes=stale, partition_by=["order_date_id"])


def run(spark: SparkSession, settings: Settings, *, full: bool = False) -> LayerRun:
    """The star, then the marts built from it."""
    return GoldJob.once(spark, settings, full=full).then(MartsJob.once(spark, settings, full=full))
