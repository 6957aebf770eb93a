"""Marts: what people look at, from Gold's facts and dimensions. Pure DataFrame -> DataFrame.

Days are the orders' days (`order_date_id`). A cancelled order (`is_deleted`) counts as
placed and cancelled in `mart_daily_orders` and nowhere else.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from batch.transforms.gold import UNKNOWN

TOP_PRODUCTS = 10  # per day
RECENT_DAYS = 30   # a customer whose last order is this close to the newest is recent
FREQUENT_ORDERS = 3


def day(date_id: Column) -> Column:
    """A YYYYMMDD date id as a date (null for the unknown day)."""
    return F.to_date(F.when(date_id != UNKNOWN, date_id).cast("string"), "yyyyMMdd")


def placed(facts: DataFrame) -> DataFrame:
    """Orders not cancelled."""
    return facts.filter(~F.col("is_deleted"))


def daily_orders(facts: DataFrame) -> DataFrame:
    """Per day: orders placed, completed (every detail arrived), cancelled, the completion
    rate (completed / placed), items in the orders kept, and distinct customers."""
    kept = ~F.col("is_deleted")
    return (facts.groupBy(day(F.col("order_date_id")).alias("date"))
            .agg(F.count("*").alias("orders"),
                 F.count_if(F.col("is_complete") & kept).alias("completed"),
                 F.count_if(F.col("is_deleted")).alias("cancelled"),
                 F.coalesce(F.sum(F.when(kept, F.col("total_quantity"))), F.lit(0)).cast("long").alias("items"),
                 F.countDistinct("customer_id").alias("customers"))
            .withColumn("completion_rate", F.round(F.col("completed") / F.col("orders"), 4))
            .select("date", "orders", "completed", "cancelled", "completion_rate", "items", "customers"))


def payment_mix(facts: DataFrame, payment_methods: DataFrame) -> DataFrame:
    """Per day and payment method: orders kept, and their share of the day's."""
    names = payment_methods.select("payment_method_key", F.col("name").alias("payment_method"), "provider")
    the_day = Window.partitionBy("date")
    return (placed(facts).groupBy(day(F.col("order_date_id")).alias("date"), "payment_method_key")
            .agg(F.count("*").alias("orders"))
            .withColumn("share", F.round(F.col("orders") / F.sum("orders").over(the_day), 4))
            .join(names, "payment_method_key", "left")
            .select("date", "payment_method_key", "payment_method", "provider", "orders", "share"))


def top_products(facts: DataFrame, order_products: DataFrame, products: DataFrame,
                 top: int = TOP_PRODUCTS) -> DataFrame:
    """Per day: the `top` products by quantity in orders kept (ties: more orders, then the
    lower product key), with their rank."""
    kept_orders = placed(facts).select("order_id")
    names = products.select("product_key", F.col("name").alias("product"))
    ranking = Window.partitionBy("date").orderBy(F.desc("quantity"), F.desc("orders"), "product_key")
    return (order_products.join(kept_orders, "order_id", "left_semi")
            .groupBy(day(F.col("order_date_id")).alias("date"), "product_key")
            .agg(F.sum("quantity").cast("long").alias("quantity"), F.countDistinct("order_id").alias("orders"))
            .withColumn("rank", F.row_number().over(ranking))
            .filter(F.col("rank") <= top)
            .join(names, "product_key", "left")
            .select("date", "rank", "product_key", "product", "quantity", "orders"))


def segment(recency_days: Column, orders: Column) -> Column:
    """Recency x frequency, as the marketing team reads it."""
    recent = recency_days <= RECENT_DAYS
    return (F.when(recent & (orders >= FREQUENT_ORDERS), "champion")
            .when(recent & (orders == 1), "new")
            .when(recent, "active")
            .when(orders >= FREQUENT_ORDERS, "at risk")
            .otherwise("lapsed"))


def customer_segments(facts: DataFrame, customers: DataFrame) -> DataFrame:
    """Per customer with orders kept: first and last order, orders, items, days since the last
    order (counted back from the newest order in the facts), segment, and current city."""
    kept = placed(facts).filter(F.col("customer_id").isNotNull())
    newest = kept.agg(F.max("order_ts").alias("_newest"))
    cities = customers.filter(F.col("is_current")).select("customer_id", "city")
    return (kept.groupBy("customer_id")
            .agg(F.min("order_ts").alias("first_order"), F.max("order_ts").alias("last_order"),
                 F.count("*").alias("orders"), F.coalesce(F.sum("total_quantity"), F.lit(0)).cast("long").alias("items"))
            .crossJoin(F.broadcast(newest))
            .withColumn("recency_days", F.datediff(F.col("_newest"), F.col("last_order")))
            .withColumn("segment", segment(F.col("recency_days"), F.col("orders")))
            .join(cities, "customer_id", "left")
            .select("customer_id", "first_order", "last_order", "orders", "items", "recency_days",
                    "segment", "city"))
