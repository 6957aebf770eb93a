"""Gold: Silver's changes -> the star schema (then the marts: batch.layers.marts), in three jobs,
each with its own marks. While the fast lane runs it computes `fact_orders` itself (batch.fastlane.facts,
the same formula) and keeps `FactsJob`'s marks; the others run as Spark's deferred work.

- `FactsJob` (the hot path): `fact_orders` recomputed for the orders whose order or details
  changed in Silver since its marks. Its dimension keys come from `KnownDimensions`; a key
  the dimensions do not hold yet is the unknown member (-1) until `DimensionsJob` resolves it.
  An order cancelled at the source (kept in Silver, marked deleted) has its fact with
  `status` cancelled; one gone from Silver (its newest version quarantined) keeps its last
  fact, marked `is_deleted`.
- `DimensionsJob`: the dimensions from Silver's changes (SCD type 1, except customers, which
  keep their versions: SCD type 2; `dim_date` gains a row only when a new day appears), then
  the facts still pointing at an unknown member recomputed when a dimension gained rows.
- `ProductsJob`: `fact_order_products` for the orders whose fact or details changed since its
  marks.

A one-shot run (`python -m batch gold`, batch.flows) runs dimensions, facts, products, then the
marts, so no key waits. Every join with a stored table is pruned to the batch's keys first.
Run: `python -m batch gold [--full]`.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from batch.job import LayerJob
from batch.names import GOLD, gold_location, silver_location
from batch.runs import LayerRun
from batch.store import delta_log, reads, writes
from batch.store.marks import fast_lane
from batch.transforms import gold
from batch.transforms.common import missing_keys, of_keys
from batch.transforms.silver import FIRST_CHANGED_AT, ORDER_DETAILS, ORDERS, TABLES, SilverTable, latest_changes
from config import Settings

LAYER = GOLD
DIMENSIONS = {  # Gold dimension -> its key, the Silver table it is built from, and how
    "dim_customer": ("customer_key", "customers", gold.dim_customer),
    "dim_payment_method": ("payment_method_key", "payment_method", gold.dim_payment_method),
    "dim_product": ("product_key", "order_details", gold.dim_product),
    "dim_date": ("date_id", "orders", gold.dim_date),
}
FACT_DIMENSIONS = ("dim_customer", "dim_payment_method", "dim_date")  # the keys fact_orders resolves


class KnownDimensions:
    """The dimension rows fact_orders resolves its keys against, cached for the job's run."""

    RESOLVED_BY = {  # the columns of each dimension a fact's key is resolved by
        "dim_customer": "customer_key bigint, customer_id int, valid_from timestamp, valid_to timestamp",
        "dim_payment_method": "payment_method_key int, payment_method_id int",
        "dim_date": "date_id int",
    }

    def __init__(self, spark: SparkSession, settings: Settings) -> None:
        self.spark, self.settings = spark, settings
        self.cached = reads.CachedColumns(spark)

    def get(self, name: str) -> DataFrame:
        schema = self.RESOLVED_BY[name]
        rows = self.cached.read(gold_location(self.settings, name), [column.split()[0] for column in schema.split(", ")])
        # not built yet: no rows (facts resolve to the unknown member)
        return self.spark.createDataFrame([], schema) if rows is None else rows


class GoldJob(LayerJob):
    """What Gold's jobs share: Silver's changes since their marks, split into live rows and
    keys gone, and the facts of a set of orders."""

    layer = LAYER
    reads: tuple[SilverTable, ...] = TABLES

    @classmethod
    def inputs(cls, settings: Settings) -> dict[str, str]:
        return {table.name: silver_location(settings, table.name) for table in cls.reads}

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        self.tables, self.marks = tables, marks
        self.versions: dict[str, int] = {}
        self.changed: dict[str, DataFrame] = {}
        self.gone: dict[str, DataFrame] = {}  # keys deleted from Silver since the last run
        for table in self.reads:
            latest = self.newest_changes(table, marks.get(table.name))
            latest = latest.withColumn("_changed_at", F.coalesce("changed_at", "_commit_timestamp"))
            gone = (F.col("_change_type") == "delete") | F.coalesce(F.col("is_deleted"), F.lit(False))
            self.changed[table.name] = latest.filter(~gone).select(*table.columns, "_changed_at")
            self.gone[table.name] = latest.filter(gone).select(*table.keys, "_changed_at")
        if self.moved(*self.versions):
            self.apply()
        return {table: str(version) for table, version in self.versions.items()}

    def newest_changes(self, table: SilverTable, seen: str | None) -> DataFrame:
        """The Silver table's changes after version `seen`, each key's newest (its version
        now in `versions`)."""
        changes, self.versions[table.name] = reads.changes_since(
            self.spark, self.silver(table.name), None if seen is None else int(seen))
        if not self.moved(table.name):  # no rows: nothing to compute or store
            return changes
        # A first read is Silver's snapshot, each key once.
        return (changes if seen is None else latest_changes(changes, table.keys)).localCheckpoint()

    def apply(self) -> None:
        """Write this job's tables from `changed` and `gone`."""
        raise NotImplementedError

    def silver(self, table: str) -> str:
        return silver_location(self.settings, table)

    def gold(self, table: str) -> str:
        return gold_location(self.settings, table)

    def moved(self, *tables: str) -> bool:
        """Whether any of these Silver tables changed since the last run."""
        return any(str(self.versions[table]) != self.marks.get(table) for table in tables)

    def write(self, table: str, rows: DataFrame, keys: list[str], *, read: int,
              deletes: DataFrame | None = None, partition_by=(), current: DataFrame | None = None) -> int:
        """Upsert `rows` into the Gold table (`current`: its rows of their keys, if read
        already); the rows written."""
        with self.tables.table(table) as counts:
            counts.read = read
            counts.add(writes.upsert(self.spark, self.gold(table), rows, keys, deletes=deletes,
                                   partition_by=partition_by, current=current))
        return counts.written

    def order_ids(self) -> DataFrame:
        """The orders whose order or details changed in Silver since the marks."""
        return (self.changed["orders"].select("order_id")
                .unionByName(self.gone["orders"].select("order_id"))
                .unionByName(self.changed["order_details"].select("order_id"))
                .unionByName(self.gone["order_details"].select("order_id")))

    def write_facts(self, touched: DataFrame, dimensions: KnownDimensions) -> None:
        """fact_orders recomputed for the `touched` order ids (distinct, materialised)."""
        orders = of_keys(reads.read(self.spark, self.silver(ORDERS.name)), touched, ["order_id"])
        details = of_keys(reads.read(self.spark, self.silver(ORDER_DETAILS.name)).filter(~F.col("is_deleted")),
                          touched, ["order_id"])
        placed = orders.select("order_id", (F.col(FIRST_CHANGED_AT) if FIRST_CHANGED_AT in orders.columns
                                            else F.lit(None).cast("timestamp")).alias("placed_at"))
        # Only the customer versions these orders name, from the versions held in memory.
        customers = dimensions.get("dim_customer").join(
            F.broadcast(orders.select("customer_id").distinct()), "customer_id", "left_semi")
        facts = gold.fact_orders(orders, details, customers, dimensions.get("dim_payment_method"),
                                 dimensions.get("dim_date"), placed)
        written, current = facts, None
        if delta_log.exists(self.spark, self.gold("fact_orders")):
            # read once: for the cancelled facts, and for the write's comparison
            current = of_keys(reads.read(self.spark, self.gold("fact_orders")), touched, ["order_id"]).persist()
            deletions = self.gone["orders"].select("order_id", "_changed_at")
            written = facts.unionByName(gold.cancelled_facts(current, facts, deletions), allowMissingColumns=True)
        try:
            self.write("fact_orders", written, ["order_id"], read=touched.count(), partition_by=["order_date_id"],
                       current=current)
        finally:
            if current is not None:
                current.unpersist()


class FactsJob(GoldJob):
    """The hot path's Gold: fact_orders for the orders that changed."""

    reads = (ORDERS, ORDER_DETAILS)
    writes_hot_tables = True

    def __init__(self, spark: SparkSession, settings: Settings, *, full: bool = False) -> None:
        super().__init__(spark, settings, full=full)
        self.dimensions = KnownDimensions(spark, settings)

    def apply(self) -> None:
        self.write_facts(self.order_ids().distinct().localCheckpoint(), self.dimensions)


class DimensionsJob(GoldJob):
    """The dimensions, then the facts whose unknown keys a dimension's new rows may resolve."""

    marks_file = "_marks_dimensions"

    def apply(self) -> None:
        for name, (key, source, build) in DIMENSIONS.items():
            if not self.moved(source):
                continue
            changed = self.changed[source]
            versioned = name == "dim_customer" and delta_log.exists(self.spark, self.gold(name))
            rows = self.customer_versions() if versioned else build(changed)
            self.write(name, rows, [key], read=changed.count())
        # Whenever a fact's dimension had changes to apply, not only when this run wrote rows: a
        # run killed between the dimension's write and this step leaves its rows written already.
        # While the fast lane owns fact_orders, it resolves them itself once a dimension moved.
        sources_moved = self.moved(*(DIMENSIONS[name][1] for name in FACT_DIMENSIONS))
        owned = fast_lane(self.spark, self.settings) is not None
        if sources_moved and delta_log.exists(self.spark, self.gold("fact_orders")) and not owned:
            self.resolve_unknown_keys()

    def customer_versions(self) -> DataFrame:
        changed, gone = self.changed["customers"], self.gone["customers"]
        ids = changed.select("customer_id").unionByName(gone.select("customer_id"))
        versions = of_keys(reads.read(self.spark, self.gold("dim_customer")), ids, ["customer_id"])
        return gold.customer_versions(changed, gone, versions)

    def resolve_unknown_keys(self) -> None:
        """The facts pointing at an unknown member, recomputed (no change: no commit); a
        cancelled order's fact too, which keeps its keys."""
        unresolved = (F.col("customer_key") == gold.UNKNOWN) | (F.col("payment_method_key") == gold.UNKNOWN)
        unresolved |= F.col("order_date_id") == gold.UNKNOWN
        touched = (reads.read(self.spark, self.gold("fact_orders")).filter(unresolved)
                   .select("order_id").localCheckpoint())
        self.write_facts(touched, KnownDimensions(self.spark, self.settings))


class ProductsJob(GoldJob):
    """fact_order_products for the orders whose fact or details changed."""

    marks_file = "_marks_products"
    reads = (ORDER_DETAILS,)

    @classmethod
    def inputs(cls, settings: Settings) -> dict[str, str]:
        return {**super().inputs(settings), "fact_orders": gold_location(settings, "fact_orders")}

    def move(self, tables: LayerRun, marks: dict[str, str]) -> dict[str, str]:
        location = self.gold("fact_orders")
        if not delta_log.exists(self.spark, location):
            return {}
        seen = marks.get("fact_orders")
        self.facts_changed, version = reads.changes_since(self.spark, location, None if seen is None else int(seen))
        self.facts_moved = str(version) != seen
        return {**super().move(tables, marks), "fact_orders": str(version)}

    def moved(self, *tables: str) -> bool:
        return super().moved(*tables) or self.facts_moved

    def apply(self) -> None:
        touched = (self.facts_changed.select("order_id")
                   .unionByName(self.changed["order_details"].select("order_id"))
                   .unionByName(self.gone["order_details"].select("order_id"))
                   .distinct().localCheckpoint())
        facts = of_keys(reads.read(self.spark, self.gold("fact_orders")), touched, ["order_id"])
        details = of_keys(reads.read(self.spark, self.silver(ORDER_DETAILS.name)).filter(~F.col("is_deleted")),
                          touched, ["order_id"])
        products = gold.fact_order_products(details, facts.filter(~F.col("is_deleted")),
                                            reads.read(self.spark, self.gold("dim_product")))
        location = self.gold("fact_order_products")
        stale = None
        if delta_log.exists(self.spark, location):
            stale = missing_keys(of_keys(reads.read(self.spark, location), touched, ["order_id"]), products,
                                 ["order_id", "product_id"])
        self.write("fact_order_products", products, ["order_id", "product_id"],
                   read=touched.count(), deletes=stale, partition_by=["order_date_id"])
