"""Silver's rules and columns, and the facts' status, stated once as SQL that both engines
evaluate: Spark (`F.expr`, batch.transforms) and Polars (`pl.sql_expr`, batch.fastlane).

The SQL is Spark's, in the part the two dialects share (`try_cast`, `nullif`, `trim`,
`RLIKE`, `INTERVAL '5 minutes'`); `polars_sql` makes the two spellings they do not share
Polars': a quoted name (backticks there, double quotes here) and a string literal's
backslashes (Spark unescapes them, Polars keeps them). Pure: no engine is imported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

BROKEN_RULES = "_broken_rules"
SOURCE_POSITION = "source_position"  # the change's place in the binlog (POSITION_FORMAT)
CHANGED_AT_COLUMN = "changed_at"     # when the source committed the row's newest change
FIRST_CHANGED_AT = "first_changed_at"  # when the source committed the row's first version
LIFECYCLE_COLUMNS = ("is_deleted", "deleted_at", CHANGED_AT_COLUMN, FIRST_CHANGED_AT, SOURCE_POSITION)
RAW = "_raw"
NOW = "_now"  # the job's start time, which rules may compare against

# A row change's columns beside the source's (batch.transforms.changes, batch.fastlane.changes)
POSITION = "_position"      # sortable text: binlog file number, position, row
CHANGED_AT = "_changed_at"  # when the source committed the change
OP = "_op"
DELETED = "_deleted"
POSITION_WIDTHS = (10, 20, 6)  # binlog file number, position, row: zero-padded, so text order is binlog order
POSITION_FORMAT = ":".join(f"%0{width}d" for width in POSITION_WIDTHS)
FIRST_LOAD_POSITION = POSITION_FORMAT % (0, 0, 0)  # before any binlog position: a JDBC snapshot's rows
ROW_OPS = ("c", "r", "u", "d")
UNKNOWN = -1  # Gold's unknown member: the key of a fact whose dimension row is not (yet) there
# A MERGE's source columns beside the rows: whether the row goes (DELETE), whether the table holds its key (KNOWN).
DELETE = "_delete"
KNOWN = "_known"
UNREADABLE = "not_debezium_json"  # a quarantine reason: the record is no row change
TRUNCATE = "truncate: not applied (python -m batch audit shows the drift)"
# Debezium's JSON in its two shapes (JsonConverter with `schemas.enable` wraps it in `payload`).
ENVELOPE_ROOTS = ("$", "$.payload")
REFUSAL = "refusal"  # the archive's column: why the lake refuses a record (batch.fastlane.archive), else null


def merge_condition(keys, nullable=()) -> str:
    """A MERGE's match of target `t` and source `s` rows: every key equal, a null equal to a null
    for the `nullable` keys (a quarantine's: its rows may lack a key). Plain `=` elsewhere, where
    the rules keep nulls out: delta-rs prunes a MERGE's files by `=` only."""
    return " AND ".join(f"(t.`{key}` IS NOT DISTINCT FROM s.`{key}`)" if key in nullable else f"t.`{key}` = s.`{key}`"
                        for key in keys)


# A date-time's epoch milliseconds both engines take: years 1 to 9999 (Spark's and Delta's range).
DATETIME_MS_RANGE = (-62_135_596_800_000, 253_402_300_799_999)


def envelope_paths(part: str) -> tuple[str, ...]:
    """JSON paths of an envelope's `part` (`after`, `source.snapshot`) in either shape, for
    `get_json_object` (Spark) and `str.json_path_match` (Polars), to coalesce."""
    return tuple(f"{root}.{part}" for root in ENVELOPE_ROOTS)


def quarantine_reason() -> str:
    """Why an archived record that is no row change goes to `cdc_quarantine`, over the archive's columns."""
    return (f"CASE WHEN {REFUSAL} IS NOT NULL THEN {REFUSAL} WHEN op = 't' THEN '{TRUNCATE}' "
            f"ELSE '{UNREADABLE}' END")
# DATETIME columns reach Kafka as epoch milliseconds (Debezium's io.debezium.time.Timestamp).
DATETIME_COLUMNS = {"orders": ("timestamp",), "customers": ("created_at",)}
# Debezium's `source.snapshot` on the records of a connector's initial snapshot (an ad-hoc
# incremental snapshot says `incremental`, and does not stand for the source's beginning).
INITIAL_SNAPSHOT = ("true", "first", "first_in_data_collection", "last_in_data_collection", "last")
# Bronze's JDBC copy partitions its rows by these; they are no source column.
SNAPSHOT_PARTITION_COLUMNS = ("year", "month", "day")


def position_text(file_number: int, pos: int, row: int = 0) -> str:
    """A place in the binlog as text whose order is the binlog's order."""
    return POSITION_FORMAT % (file_number, pos, row)


def polars_sql(expression: str) -> str:
    """A rule's SQL as Polars reads it (see the module's docstring)."""
    return expression.replace("`", '"').replace("\\\\", "\\")


def text(name: str) -> str:
    """Trimmed text, empty as null."""
    return f"nullif(trim(cast({name} AS string)), '')"


def present(*names: str) -> dict[str, str]:
    return {f"{name}_present": f"{name} IS NOT NULL" for name in names}


# Clocks of the shop and of this job may differ a little; beyond this, a time is "future".
NOT_FUTURE = f"<= {NOW} + INTERVAL '5 minutes'"


@dataclass(frozen=True)
class Reference:
    """A rule that a row's `column` names an existing row of the Silver table `table`."""

    column: str
    table: str
    key: str


@dataclass(frozen=True)
class SilverTable:
    """How one source table becomes a Silver table: SQL expressions, named."""

    name: str
    bronze_keys: tuple[str, ...]
    keys: tuple[str, ...]
    columns: Mapping[str, str]   # Silver column -> expression over the source row
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

    @property
    def derived_from_looked_up(self) -> dict[str, str]:
        """The Silver columns computed from a looked-up column, and how."""
        return {name: expression for name, expression in self.columns.items()
                if any(looked_up in expression for looked_up in self.looked_up)}


ORDERS = SilverTable(
    name="orders", bronze_keys=("id",), keys=("order_id",), partition_by=("order_date",),
    columns={
        "order_id": text("id"),
        "customer_id": "try_cast(customer_id AS int)",
        "store_id": "try_cast(store_id AS int)",
        "payment_method_id": "try_cast(payment_method_id AS int)",
        "num_products": "try_cast(num_products AS int)",
        "order_ts": "cast(`timestamp` AS timestamp)",
        "order_date": "cast(cast(`timestamp` AS timestamp) AS date)",
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
        "product_id": "try_cast(product_id AS int)",
        "quantity": "try_cast(quantity AS int)",
        "order_ts": "cast(order_timestamp AS timestamp)",
        "order_date": "cast(cast(order_timestamp AS timestamp) AS date)",
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
        "customer_id": "try_cast(id AS int)",
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
        "payment_method_id": "try_cast(id AS int)",
        "name": text("name"),
        "provider": text("provider"),
    },
    read_columns=("id", "name", "provider"),
    rules=present("payment_method_id", "name"))

TABLES = (CUSTOMERS, PAYMENT_METHOD, ORDERS, ORDER_DETAILS)


def source_row_columns(columns: list[str], table: SilverTable) -> list[str]:
    """The columns of a change that came from the source's row (not a looked-up one), as Silver
    keeps them in `raw`: a detail's order time is its order's, refreshed when that moves."""
    return [name for name in columns if not name.startswith("_") and name not in table.looked_up]


def carried_columns(source_columns: list[str], table: SilverTable) -> list[str]:
    """Source columns Silver does not read (added at the source since): carried as they are."""
    return [name for name in source_columns if name not in table.read_columns
            and name not in SNAPSHOT_PARTITION_COLUMNS and name not in table.columns]


def extra_columns(fields, known) -> list[str]:
    """Row-image fields the table's spec does not name (columns added at the source since),
    in name order: they are carried as text."""
    return sorted(set(fields) - set(known))


# Gold: an order's status from its Silver row and its detail count, in both engines.
ORDER_STATUS = ("CASE WHEN is_deleted THEN 'cancelled' WHEN detail_count = num_products THEN 'complete' "
                "ELSE 'incomplete' END")
