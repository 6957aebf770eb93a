"""Gold: a star schema over Silver. Dimensions keyed by the source ids (customers by a key
per version, SCD type 2), facts whose every key is found in its dimension or is the
dimension's explicit unknown member (-1)."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from batch.rules import ORDER_STATUS, UNKNOWN
from batch.transforms.common import latest_per_key

CUSTOMER_ATTRIBUTES = ("name", "email", "phone", "city", "created_at")  # a change starts a new version


def with_unknown_member(dimension: DataFrame, key: str, label_columns: tuple[str, ...]) -> DataFrame:
    """The dimension plus the row facts point at when their key is not (yet) known."""
    unknown = {name: F.lit(None).cast(dtype) for name, dtype in dimension.dtypes}
    unknown[key] = F.lit(UNKNOWN).cast(dict(dimension.dtypes)[key])
    unknown.update({name: F.lit("Unknown") for name in label_columns})
    member = dimension.sparkSession.range(1).select(
        *[unknown[name].alias(name) for name in dimension.columns])
    return dimension.filter(F.col(key) != UNKNOWN).unionByName(member)


def customer_key(customer_id: Column, valid_from: Column) -> Column:
    """A version's key: stable across runs (a hash of what identifies the version), so a
    re-run writes the same rows."""
    return F.xxhash64(customer_id, valid_from)


def _open_versions(rows: DataFrame) -> DataFrame:
    return rows.select(customer_key(F.col("customer_id"), F.col("valid_from")).alias("customer_key"),
                       "customer_id", *CUSTOMER_ATTRIBUTES, "valid_from",
                       F.lit(None).cast("timestamp").alias("valid_to"), F.lit(True).alias("is_current"))


def dim_customer(customers: DataFrame) -> DataFrame:
    """First versions of customers never seen before, valid from their creation."""
    return with_unknown_member(_open_versions(customers.withColumn("valid_from", F.col("created_at"))),
                               "customer_key", ("name",))


def customer_versions(changed: DataFrame, deleted: DataFrame, versions: DataFrame) -> DataFrame:
    """SCD type 2: the dim_customer rows to write for Silver's changed customers and its
    deleted ones (both with `_changed_at`, when the lake saw the change), given the
    dimension's versions of those customers.

    A customer never seen gets its first version, valid from its `created_at`; one whose
    attributes changed has its current version closed at the change and a new one opened
    there; a deleted one has its current version closed. An unchanged one writes nothing."""
    versions = versions.filter(F.col("customer_key") != UNKNOWN)
    current = versions.filter("is_current")
    was = current.select("customer_id", *[F.col(name).alias(f"_was_{name}") for name in CUSTOMER_ATTRIBUTES],
                         F.col("valid_from").alias("_was_from"))
    ever = versions.select("customer_id").distinct().withColumn("_seen", F.lit(True))
    differs = reduce(lambda any_, name: any_ | ~F.col(name).eqNullSafe(F.col(f"_was_{name}")),
                     CUSTOMER_ATTRIBUTES, F.lit(False))
    # Never at or before the version's own start (two changes seen in one run, clocks).
    at = F.greatest(F.col("_changed_at"), F.col("_was_from") + F.expr("INTERVAL 1 MILLISECOND"))
    seen = changed.join(was, "customer_id", "left").join(ever, "customer_id", "left")
    moved = seen.filter(F.col("_was_from").isNull() | differs)
    opened = _open_versions(moved.withColumn(
        "valid_from", F.when(F.col("_seen").isNull(), F.col("created_at"))
        .otherwise(F.coalesce(at, F.col("_changed_at")))))
    ends = (moved.filter(F.col("_was_from").isNotNull()).select("customer_id", at.alias("_ends"))
            .unionByName(deleted.join(was, "customer_id").select("customer_id", at.alias("_ends"))))
    closed = (current.join(ends, "customer_id")
              .withColumn("valid_to", F.col("_ends")).withColumn("is_current", F.lit(False))
              .select(*opened.columns))
    return opened.unionByName(closed)


def dim_payment_method(payment_methods: DataFrame) -> DataFrame:
    return with_unknown_member(
        payment_methods.select(F.col("payment_method_id").alias("payment_method_key"),
                               "payment_method_id", "name", "provider"),
        "payment_method_key", ("name", "provider"))


def dim_product(details: DataFrame) -> DataFrame:
    """Products as the orders name them (the source has no product table)."""
    return with_unknown_member(
        details.select(F.col("product_id").alias("product_key"), "product_id",
                       F.concat(F.lit("Product "), F.col("product_id")).alias("name"))
        .dropDuplicates(["product_key"]),
        "product_key", ("name",))


def date_id(date: Column) -> Column:
    """YYYYMMDD as an int."""
    return F.date_format(date, "yyyyMMdd").cast("int")


def dim_date(orders: DataFrame) -> DataFrame:
    """One row per day an order was placed on."""
    day = F.col("date")
    dates = orders.select(F.col("order_date").alias("date")).filter(day.isNotNull()).distinct()
    return with_unknown_member(
        dates.select(date_id(day).alias("date_id"), "date", F.year(day).alias("year"),
                     F.quarter(day).alias("quarter"), F.month(day).alias("month"),
                     F.dayofmonth(day).alias("day"), F.date_format(day, "MMMM").alias("month_name"),
                     F.date_format(day, "EEEE").alias("day_name"),
                     F.dayofweek(day).isin(1, 7).alias("is_weekend")),
        "date_id", ("month_name", "day_name"))


def resolve_key(facts: DataFrame, dimension: DataFrame, *, on: str, natural: str, key: str,
                alias: str | None = None) -> DataFrame:
    """Set `alias` (default `key`): the dimension's `key` where its `natural` id equals the
    fact's `on` column, else UNKNOWN."""
    known = dimension.filter(F.col(key) != UNKNOWN).select(F.col(natural).alias("_natural"),
                                                           F.col(key).alias("_key"))
    return (facts.join(known, facts[on] == known["_natural"], "left")
            .withColumn(alias or key, F.coalesce(F.col("_key"), F.lit(UNKNOWN)))
            .drop("_natural", "_key"))


def resolve_customer_version(facts: DataFrame, customers: DataFrame) -> DataFrame:
    """Set `customer_key`: the version of the order's customer current at `order_ts` (its
    first version for an order older than it), else UNKNOWN (unknown customer, or one
    deleted before the order)."""
    versions = customers.filter(F.col("customer_key") != UNKNOWN).select(
        F.col("customer_id").alias("_customer"), F.col("customer_key").alias("_key"),
        F.col("valid_from").alias("_from"), F.col("valid_to").alias("_to"))
    matches = (F.col("customer_id") == F.col("_customer")) & (
        F.col("_to").isNull() | (F.col("order_ts") < F.col("_to")))
    return (latest_per_key(facts.join(versions, matches, "left"), ["order_id"], [F.col("_from").asc()])
            .withColumn("customer_key", F.coalesce(F.col("_key"), F.lit(UNKNOWN).cast("bigint")))
            .drop("_customer", "_key", "_from", "_to"))


def fact_orders(orders: DataFrame, details: DataFrame, customers: DataFrame,
                payment_methods: DataFrame, dates: DataFrame, placed: DataFrame) -> DataFrame:
    """One row per order (Silver's, cancelled ones too): its keys, size and lifecycle.

    `details` are the orders' live detail rows; `placed` (order_id, `placed_at`) is when the
    source committed each order's first version. `status` is `cancelled` (deleted at the
    source; `cancelled_at` its commit), `complete` (every detail row there; `completed_at` is
    the commit of the newest change among the order and its details) or `incomplete`."""
    sizes = details.groupBy("order_id").agg(F.count("*").alias("detail_count"),
                                             F.sum("quantity").cast("int").alias("total_quantity"),
                                             F.max("changed_at").alias("_details_changed_at"))
    is_complete = F.col("detail_count") == F.col("num_products")
    status = F.col("status")
    return (orders.join(sizes, "order_id", "left").join(placed, "order_id", "left")
            .withColumn("detail_count", F.coalesce("detail_count", F.lit(0)).cast("int"))
            .withColumn("status", F.expr(ORDER_STATUS))
            .withColumn("order_date_id", date_id(F.col("order_date")))
            .transform(resolve_customer_version, customers)
            .transform(resolve_key, payment_methods, on="payment_method_id",
                       natural="payment_method_id", key="payment_method_key")
            .transform(resolve_key, dates, on="order_date_id", natural="date_id", key="date_id",
                       alias="order_date_id")
            .select("order_id", "order_date_id", "customer_key",
                    "payment_method_key", "store_id", "customer_id", "payment_method_id",
                    "order_ts", "num_products", "detail_count",
                    F.coalesce("total_quantity", F.lit(0)).cast("int").alias("total_quantity"),
                    is_complete.alias("is_complete"), F.col("is_deleted"), F.col("deleted_at"),
                    status.alias("status"),
                    F.coalesce("placed_at", "changed_at").alias("placed_at"),
                    F.when(status == "complete", F.greatest("changed_at", "_details_changed_at"))
                    .alias("completed_at"),
                    F.col("deleted_at").alias("cancelled_at")))


def cancelled_facts(current: DataFrame, kept: DataFrame, deletions: DataFrame) -> DataFrame:
    """The facts in `current` whose order is no longer in `kept` (gone from Silver: its
    newest version was quarantined): their last row, marked deleted. `deleted_at` is when
    the lake saw it go (`deletions`: order_id, `_changed_at`), and stays as it was once set."""
    deleted_at = F.coalesce("deleted_at", "_changed_at", F.current_timestamp())
    return (current.join(kept.select("order_id"), "order_id", "left_anti")
            .join(deletions, "order_id", "left")
            .withColumns({"deleted_at": deleted_at, "is_deleted": F.lit(True),
                          "status": F.lit("cancelled"), "cancelled_at": deleted_at,
                          "completed_at": F.lit(None).cast("timestamp")})
            .select(*dict.fromkeys([*current.columns, "status", "cancelled_at", "completed_at"])))


def fact_order_products(details: DataFrame, facts: DataFrame, products: DataFrame) -> DataFrame:
    """One row per product of an order, with the order's keys (only orders in `facts`)."""
    order_keys = facts.select("order_id", "order_date_id", "customer_key", "payment_method_key")
    return (details.join(order_keys, "order_id")
            .transform(resolve_key, products, on="product_id", natural="product_id", key="product_key")
            .select("order_id", "product_key", "order_date_id", "customer_key",
                    "payment_method_key", "product_id", "quantity"))
