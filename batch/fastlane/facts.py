"""Gold's `fact_orders` in Polars, for the orders a micro-batch touched: the formula of
batch.transforms.gold.fact_orders (its status from batch.rules.ORDER_STATUS), its keys
resolved against the dimension rows held in memory. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import polars as pl

from batch.rules import FIRST_CHANGED_AT, ORDER_STATUS, UNKNOWN, polars_sql

UTC_MICROS = pl.Datetime("us", "UTC")
FACT_COLUMNS = ("order_id", "order_date_id", "customer_key", "payment_method_key", "store_id", "customer_id",
                "payment_method_id", "order_ts", "num_products", "detail_count", "total_quantity", "is_complete",
                "is_deleted", "deleted_at", "status", "placed_at", "completed_at", "cancelled_at")
# The columns of each dimension a fact's key is resolved by.
RESOLVED_BY = {
    "dim_customer": {"customer_key": pl.Int64, "customer_id": pl.Int32, "valid_from": UTC_MICROS,
                     "valid_to": UTC_MICROS},
    "dim_payment_method": {"payment_method_key": pl.Int32, "payment_method_id": pl.Int32},
    "dim_date": {"date_id": pl.Int32},
}


@dataclass(frozen=True)
class Dimensions:
    """The dimension rows facts resolve their keys against (each RESOLVED_BY's columns; no
    rows before the dimension is built: every key is then the unknown member)."""

    customers: pl.DataFrame
    payment_methods: pl.DataFrame
    dates: pl.DataFrame

    @classmethod
    def empty(cls) -> Dimensions:
        return cls(*(pl.DataFrame(schema=schema) for schema in RESOLVED_BY.values()))


def _customer_keys(facts: pl.DataFrame, customers: pl.DataFrame) -> pl.DataFrame:
    """Each order's customer version current at `order_ts` (its first version for an order older
    than it), else UNKNOWN (an unknown customer, or one deleted before the order)."""
    versions = customers.filter(pl.col("customer_key") != UNKNOWN).select(
        pl.col("customer_id"), pl.col("customer_key").alias("_key"), pl.col("valid_from").alias("_from"),
        pl.col("valid_to").alias("_to"))
    matched = (facts.select("order_id", "customer_id", "order_ts")
               .join(versions, on="customer_id", how="inner")
               .filter(pl.col("_to").is_null() | (pl.col("order_ts") < pl.col("_to")).fill_null(False))
               .sort("_from").unique("order_id", keep="first").select("order_id", "_key"))
    return (facts.join(matched, on="order_id", how="left")
            .with_columns(pl.col("_key").fill_null(UNKNOWN).cast(pl.Int64).alias("customer_key")).drop("_key"))


def _resolved(facts: pl.DataFrame, dimension: pl.DataFrame, *, on: str, natural: str, key: str,
              alias: str | None = None) -> pl.DataFrame:
    """Set `alias` (default `key`): the dimension's `key` where its `natural` id equals the
    fact's `on` column, else UNKNOWN."""
    known = (dimension.filter(pl.col(key) != UNKNOWN)
             .select(pl.col(natural).alias("_natural"), pl.col(key).alias("_key")).unique("_natural"))
    joined = facts.join(known, left_on=on, right_on="_natural", how="left", coalesce=False)
    return (joined.with_columns(pl.col("_key").fill_null(UNKNOWN).cast(dimension.schema[key]).alias(alias or key))
            .drop("_natural", "_key", strict=False))


def fact_orders(orders: pl.DataFrame, details: pl.DataFrame, dimensions: Dimensions) -> pl.DataFrame:
    """One row per order of `orders` (Silver's rows, cancelled ones too): its keys, size and
    lifecycle. `details`: the orders' live detail rows."""
    sizes = details.group_by("order_id").agg(pl.len().cast(pl.Int32).alias("detail_count"),
                                              pl.col("quantity").sum().cast(pl.Int32).alias("total_quantity"),
                                              pl.col("changed_at").max().alias("_details_changed_at"))
    placed = pl.col(FIRST_CHANGED_AT) if FIRST_CHANGED_AT in orders.columns else pl.lit(None, UTC_MICROS)
    facts = (orders.join(sizes, on="order_id", how="left")
             .with_columns(pl.col("detail_count").fill_null(0), pl.col("total_quantity").fill_null(0),
                           pl.col("order_date").dt.strftime("%Y%m%d").cast(pl.Int32).alias("order_date_id"),
                           placed.alias("_placed_at")))
    facts = facts.with_columns((pl.col("detail_count") == pl.col("num_products")).alias("is_complete"),
                               pl.sql_expr(polars_sql(ORDER_STATUS)).alias("status"))
    facts = (_customer_keys(facts, dimensions.customers)
             .pipe(_resolved, dimensions.payment_methods, on="payment_method_id", natural="payment_method_id",
                   key="payment_method_key")
             .pipe(_resolved, dimensions.dates, on="order_date_id", natural="date_id", key="date_id",
                   alias="order_date_id"))
    return facts.select(
        *FACT_COLUMNS[:14],
        pl.col("status"),
        pl.coalesce("_placed_at", "changed_at").alias("placed_at"),
        pl.when(pl.col("status") == "complete")
        .then(pl.max_horizontal("changed_at", "_details_changed_at")).alias("completed_at"),
        pl.col("deleted_at").alias("cancelled_at"))


def cancelled_facts(current: pl.DataFrame, kept: pl.DataFrame, left_at: datetime) -> pl.DataFrame:
    """The facts in `current` whose order is no longer in `kept` (gone from Silver: its newest
    version was quarantined): their last row, marked deleted (`deleted_at` stays as it was once
    set, else `left_at`)."""
    deleted_at = pl.coalesce(pl.col("deleted_at"), pl.lit(left_at).cast(UTC_MICROS))
    return (current.join(kept.select("order_id"), on="order_id", how="anti")
            .with_columns(deleted_at.alias("deleted_at"), pl.lit(True).alias("is_deleted"),
                          pl.lit("cancelled").alias("status"), deleted_at.alias("cancelled_at"),
                          pl.lit(None, UTC_MICROS).alias("completed_at"))
            .select(FACT_COLUMNS))
