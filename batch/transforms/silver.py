"""Silver: the latest version of each row, typed and cleaned, checked against named rules.

Input is the table's row changes from the CDC archive (batch.transforms.changes: the source
columns, `_deleted`, `_position`, `_changed_at`). A deleted row stays, marked `is_deleted`;
a row breaking any rule goes to its table's quarantine with the names of the rules it broke;
nothing is dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from batch.transforms.changes import CHANGED_AT, DELETED, POSITION
from batch.transforms.common import latest_per_key
from batch.transforms.snapshot import PARTITION_COLUMNS

BROKEN_RULES = "_broken_rules"
SOURCE_POSITION = "source_position"  # the change's place in the binlog (changes.position)
CHANGED_AT_COLUMN = "changed_at"     # when the source committed the row's newest change
FIRST_CHANGED_AT = "first_changed_at"  # when the source committed the row's first version
LIFECYCLE_COLUMNS = ("is_deleted", "deleted_at", CHANGED_AT_COLUMN, FIRST_CHANGED_AT, SOURCE_POSITION)
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
    read_columns: tuple[str, ...] = ()  # the source columns `columns` read; any other is carried as it is
    looked_up: tuple[str, ...] = ()  # read columns the row image lacks, joined in by the job
    keeps_history: bool = False  # every version also kept in `<name>_history`

    @property
    def image_columns(self) -> tuple[str, ...]:
        """The columns read from the change's row image."""
        return tuple(name for name in self.read_columns if name not in self.looked_up)


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
    keeps_history=True,
    rules={
        **present("order_id", "customer_id", "store_id", "payment_method_id", "order_ts"),
        "num_products_positive": "num_products > 0",
        "order_ts_not_future": f"order_ts {NOT_FUTURE}",
    },
    # An order of a customer Silver does not know is quarantined, and checked again by the
    # runs after (awaiting_references) until the customer has arrived.
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
    # A detail's change carries no time: its order's, from Silver's orders (null until known).
    looked_up=("order_timestamp",), keeps_history=True,
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


def carried_columns(source_columns: list[str], table: SilverTable) -> list[str]:
    """Source columns Silver does not read (added at the source since): carried as they are."""
    return [name for name in source_columns if name not in table.read_columns
            and name not in PARTITION_COLUMNS and name not in table.columns]


def conform(changes: DataFrame, table: SilverTable) -> DataFrame:
    """Silver's columns from each change's row, then any column the source added since (as
    it is), the lifecycle (`is_deleted`, `deleted_at`: the delete's commit, `changed_at`,
    `first_changed_at`: the change's own until `with_first_change` sees its key's others,
    `source_position`), and the source row kept as JSON."""
    source_columns = [name for name in changes.columns if not name.startswith("_")]
    deleted = F.coalesce(F.col(DELETED), F.lit(False))
    return changes.select(
        *[F.expr(expression).alias(name) for name, expression in table.columns.items()],
        *carried_columns(source_columns, table),
        deleted.alias("is_deleted"),
        F.when(deleted, F.col(CHANGED_AT)).alias("deleted_at"),
        F.col(CHANGED_AT).alias(CHANGED_AT_COLUMN),
        F.col(CHANGED_AT).alias(FIRST_CHANGED_AT),
        F.col(POSITION).alias(SOURCE_POSITION),
        F.to_json(F.struct(*source_columns)).alias(RAW))


def with_first_change(candidates: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Each candidate's `first_changed_at` as the earliest among its key's candidates, so the
    newest version carries when the row was first committed (an order's placement) even when
    the batch holds several versions of it."""
    return candidates.withColumn(FIRST_CHANGED_AT, F.min(FIRST_CHANGED_AT).over(Window.partitionBy(*keys)))


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


def awaiting_references(quarantine: DataFrame, table: SilverTable) -> DataFrame:
    """Quarantined rows that broke only reference rules: the row they name may have arrived
    since (a CDC topic is not ordered against another), so they are checked again."""
    only_references = F.forall(BROKEN_RULES, lambda rule: rule.isin(*table.references))
    return quarantine.filter(only_references).drop(BROKEN_RULES)


def valid(checked: DataFrame, table: SilverTable) -> DataFrame:
    """The rows breaking no rule: Silver's columns, the carried ones and the lifecycle."""
    return (checked.filter(F.size(BROKEN_RULES) == 0)
            .select(*[name for name in checked.columns if not name.startswith("_")]))


def quarantined(checked: DataFrame) -> DataFrame:
    return checked.filter(F.size(BROKEN_RULES) > 0)


def history(versions: DataFrame, table: SilverTable) -> DataFrame:
    """Every version of each row (conformed changes, all of a key's known versions): valid
    from its change's commit until the next change of the same key (`valid_to`, null while
    current)."""
    following = Window.partitionBy(*table.keys).orderBy(SOURCE_POSITION)
    return versions.withColumns({"valid_from": F.col(CHANGED_AT_COLUMN),
                                 "valid_to": F.lead(CHANGED_AT_COLUMN).over(following)})
