"""Gold: a star schema over Silver. Dimensions keyed by the source ids, facts whose every
key is found in its dimension or is the dimension's explicit unknown member (-1)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UNKNOWN = -1


def with_unknown_member(dimension: DataFrame, key: str, label_columns: tuple[str, ...]) -> DataFrame:
    """The dimension plus the row facts point at when their key is not (yet) known."""
    unknown = {name: F.lit(None).cast(dtype) for name, dtype in dimension.dtypes}
    unknown[key] = F.lit(UNKNOWN).cast(dict(dimension.dtypes)[key])
    unknown.update({name: F.lit("Unknown") for name in label_columns})
    member = dimension.sparkSession.range(1).select(
        *[unknown[name].alias(name) for name in dimension.columns])
    return dimension.filter(F.col(key) != UNKNOWN).unionByName(member)


def dim_customer(customers: DataFrame) -> DataFrame:
    return with_unknown_member(
        customers.select(F.col("customer_id").alias("customer_key"), "customer_id", "name",
                         "email", "phone", "city", "created_at"),
        "customer_key", ("name",))


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


def fact_orders(orders: DataFrame, details: DataFrame, customers: DataFrame,
                payment_methods: DataFrame, dates: DataFrame) -> DataFrame:
    """One row per order: its keys, size, and whether every detail row has arrived."""
    sizes = details.groupBy("order_id").agg(F.count("*").alias("detail_count"),
                                             F.sum("quantity").cast("int").alias("total_quantity"))
    return (orders.join(sizes, "order_id", "left")
            .withColumn("order_date_id", date_id(F.col("order_date")))
            .transform(resolve_key, customers, on="customer_id", natural="customer_id",
                       key="customer_key")
            .transform(resolve_key, payment_methods, on="payment_method_id",
                       natural="payment_method_id", key="payment_method_key")
            .transform(resolve_key, dates, on="order_date_id", natural="date_id", key="date_id",
                       alias="order_date_id")
            .select("order_id", "order_date_id", "customer_key",
                    "payment_method_key", "store_id", "customer_id", "payment_method_id",
                    "order_ts", "num_products",
                    F.coalesce("detail_count", F.lit(0)).cast("int").alias("detail_count"),
                    F.coalesce("total_quantity", F.lit(0)).cast("int").alias("total_quantity"),
                    (F.coalesce("detail_count", F.lit(0)) == F.col("num_products")).alias("is_complete")))


def fact_order_products(details: DataFrame, facts: DataFrame, products: DataFrame) -> DataFrame:
    """One row per product of an order, with the order's keys (only orders in `facts`)."""
    order_keys = facts.select("order_id", "order_date_id", "customer_key", "payment_method_key")
    return (details.join(order_keys, "order_id")
            .transform(resolve_key, products, on="product_id", natural="product_id", key="product_key")
            .select("order_id", "product_key", "order_date_id", "customer_key",
                    "payment_method_key", "product_id", "quantity"))
