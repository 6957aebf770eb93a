"""Silver: the latest version of each row, typed and cleaned, checked against named rules.

Input is Bronze's change feed (`_change_type`, `_commit_version`). A row breaking any rule
goes to its table's quarantine with the names of the rules it broke; nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from batch.transforms.bronze import PARTITION_COLUMNS
from batch.transforms.common import latest_per_key

BROKEN_RULES = "_broken_rules"
SOURCE_VERSION = "_source_version"
RAW = "_raw"
NOW = "_now"  # the job's start time, which rules may compare against


def text(name: str) -> str:
    """Trimmed text, empty as null."""
    return f"nullif(trim(cast({name} AS string)), '')"


def present(*names: str) -> dict[str, str]:
    return {f"{name}_present": f"{name} IS NOT NULL" for name in names}


# Clocks of the shop and of this job may differ a little; beyond this, a time is "future".
NOT_FUTURE = f"<= {NOW} + INTERVAL 5 MINUTES"


@dataclass(frozen=True)
class Reference:
    """A rule that a row's `column` names an existing row of the Silver table `table`."""

    column: str
    table: str
    key: str


@dataclass(frozen=True)
class SilverTable:
    """How one Bronze table becomes a Silver table: SQL expressions, named."""

    name: str
    bronze_keys: tuple[str, ...]
    keys: tuple[str, ...]
    columns: Mapping[str, str]   # Silver column -> expression over the Bronze row
    rules: Mapping[str, str]     # rule name -> condition a valid Silver row meets
    partition_by: tuple[str, ...] = ()
    references: Mapping[str, Reference] = field(default_factory=dict)  # rule name -> reference
    read_columns: tuple[str, ...] = ()  # the Bronze columns `columns` read; any other is carried as it is


ORDERS = SilverTable(
    name="orders", bronze_keys=("id",), keys=("order_id",), partition_by=("order_date",),
    columns={
        "order_id": text("id"),
        "customer_id": "cast(customer_id AS int)",
        "store_id": "cast(store_id AS int)",
        "payment_method_id": "cast(payment_method_id AS int)",
        "num_products": "cast(num_products AS int)",
        "order_ts": "cast(`timestamp` AS timestamp)",
        "order_date": "to_date(cast(`timestamp` AS timestamp))",
    },
    read_columns=("id", "customer_id", "store_id", "payment_method_id", "num_products", "timestamp"),
    rules={
        **present("order_id", "customer_id", "store_id", "payment_method_id", "order_ts"),
        "num_products_positive": "num_products > 0",
        "order_ts_not_future": f"order_ts {NOT_FUTURE}",
    },
    # An order of a customer Silver does not know is quarantined; once the customer arrives,
    # `python -m batch.silver --full` checks it again.
    references={"customer_known": Reference("customer_id", "customers", "customer_id")})

ORDER_DETAILS = SilverTable(
    name="order_details", bronze_keys=("order_id", "product_id"), keys=("order_id", "product_id"),
    partition_by=("order_date",),
    columns={
        "order_id": text("order_id"),
        "product_id": "cast(product_id AS int)",
        "quantity": "cast(quantity AS int)",
        "order_ts": "cast(order_timestamp AS timestamp)",
        "order_date": "to_date(cast(order_timestamp AS timestamp))",
    },
    read_columns=("order_id", "product_id", "quantity", "order_timestamp"),
    rules={
        **present("order_id", "product_id", "quantity"),
        "quantity_positive": "quantity > 0",
    })

CUSTOMERS = SilverTable(
    name="customers", bronze_keys=("id",), keys=("customer_id",),
    columns={
        "customer_id": "cast(id AS int)",
        "name": text("name"),
        "email": f"lower({text('email')})",
        "phone": text("phone"),
        "city": text("city"),
        "created_at": "cast(created_at AS timestamp)",
    },
    read_columns=("id", "name", "email", "phone", "city", "created_at"),
    rules={
        **present("customer_id", "name"),
        "email_valid": r"email RLIKE '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'",
        "created_at_not_future": f"created_at IS NULL OR created_at {NOT_FUTURE}",
    })

PAYMENT_METHOD = SilverTable(
    name="payment_method", bronze_keys=("id",), keys=("payment_method_id",),
    columns={
        "payment_method_id": "cast(id AS int)",
        "name": text("name"),
        "provider": text("provider"),
    },
    read_columns=("id", "name", "provider"),
    rules=present("payment_method_id", "name"))

TABLES = (CUSTOMERS, PAYMENT_METHOD, ORDERS, ORDER_DETAILS)


def latest_changes(changes: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """The newest change of each key in a Delta change feed (pre-images dropped)."""
    return latest_per_key(changes.filter(F.col("_change_type") != "update_preimage"), keys,
                          [F.col("_commit_version").desc()])


def deleted_keys(latest: DataFrame, table: SilverTable) -> DataFrame:
    """Silver keys whose newest change is a delete."""
    return (latest.filter(F.col("_change_type") == "delete")
            .select(*[F.expr(table.columns[key]).alias(key) for key in table.keys]))


def carried_columns(bronze_columns: list[str], table: SilverTable) -> list[str]:
    """Bronze columns Silver does not read (added at the source since): carried as they are."""
    return [name for name in bronze_columns if name not in table.read_columns
            and name not in PARTITION_COLUMNS and name not in table.columns]


def conform(latest: DataFrame, table: SilverTable) -> DataFrame:
    """Silver's columns from the Bronze rows still present, then any column the source added
    since (as it is), with the Bronze row kept as JSON and the version it came from."""
    bronze_columns = [name for name in latest.columns if not name.startswith("_")]
    return (latest.filter(F.col("_change_type") != "delete")
            .select(*[F.expr(expression).alias(name) for name, expression in table.columns.items()],
                    *carried_columns(bronze_columns, table),
                    F.to_json(F.struct(*bronze_columns)).alias(RAW),
                    F.col("_commit_version").alias(SOURCE_VERSION)))


def check(rows: DataFrame, rules: Mapping[str, str], now: datetime) -> DataFrame:
    """Add `_broken_rules`: the names of the rules a row breaks (a rule that is null breaks)."""
    verdicts = [F.when(~F.coalesce(F.expr(holds), F.lit(False)), F.lit(name))
                for name, holds in rules.items()]
    return (rows.withColumn(NOW, F.lit(now))
            .withColumn(BROKEN_RULES, F.filter(F.array(*verdicts), lambda name: name.isNotNull()))
            .drop(NOW))


def _found(rule: str) -> str:
    return f"_{rule}"


def with_references(rows: DataFrame, table: SilverTable, known: Mapping[str, DataFrame]) -> DataFrame:
    """Add a boolean `_<rule>` per reference: is the row's value a key of the referenced table?"""
    for rule, reference in table.references.items():
        flag = _found(rule)
        # Only the keys these rows name: a broadcast semi-join over the referenced table
        # instead of shuffling all of its keys (1,000,000 customers) for a few hundred rows.
        named = F.broadcast(rows.select(F.col(reference.column).alias(flag)).distinct())
        keys = known[reference.table].select(F.col(reference.key).alias(flag)).join(named, flag, "left_semi")
        rows = (rows.join(keys, rows[reference.column] == keys[flag], "left")
                .withColumn(flag, F.col(flag).isNotNull()))
    return rows


def check_table(rows: DataFrame, table: SilverTable, now: datetime,
                known: Mapping[str, DataFrame] | None = None) -> DataFrame:
    """`check` with the table's rules and its references (`known`: Silver tables by name)."""
    rules = {**table.rules, **{rule: _found(rule) for rule in table.references}}
    referenced = with_references(rows, table, known or {})
    return check(referenced, rules, now).drop(*map(_found, table.references))


def valid(checked: DataFrame, table: SilverTable) -> DataFrame:
    """The rows breaking no rule: Silver's columns and the carried ones."""
    return (checked.filter(F.size(BROKEN_RULES) == 0)
            .select(*[name for name in checked.columns if not name.startswith("_")]))


def quarantined(checked: DataFrame) -> DataFrame:
    return checked.filter(F.size(BROKEN_RULES) > 0)
