"""Silver: the latest version of each row, typed and cleaned, checked against named rules.

Input is the table's row changes from the CDC archive (batch.transforms.changes: the source
columns, `_deleted`, `_position`, `_changed_at`). A deleted row stays, marked `is_deleted`;
a row breaking any rule goes to its table's quarantine with the names of the rules it broke;
nothing is dropped.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import datetime

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from batch.rules import (BROKEN_RULES, CHANGED_AT, CHANGED_AT_COLUMN, CUSTOMERS, DELETED, FIRST_CHANGED_AT,  # noqa: F401
                         LIFECYCLE_COLUMNS, NOW, ORDER_DETAILS, ORDERS, PAYMENT_METHOD, POSITION, RAW,
                         SOURCE_POSITION, TABLES, Reference, SilverTable, carried_columns, source_row_columns)
from batch.transforms.common import latest_per_key, null_safe_join


def latest_changes(changes: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """The newest change of each key in a Delta change feed (pre-images dropped)."""
    return latest_per_key(changes.filter(F.col("_change_type") != "update_preimage"), keys,
                          [F.col("_commit_version").desc()])


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
        F.to_json(F.struct(*source_row_columns(changes.columns, table))).alias(RAW))


def with_first_change(candidates: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """Each candidate's `first_changed_at` as the earliest among its key's candidates, so the
    newest version carries when the row was first committed (an order's placement) even when
    the batch holds several versions of it."""
    return candidates.withColumn(FIRST_CHANGED_AT, F.min(FIRST_CHANGED_AT).over(Window.partitionBy(*keys)))


def with_earliest_first_change(changes: DataFrame, quarantined: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """A row's first commit also counts its key's versions in the quarantine: an order placed
    breaking a rule and corrected since was first committed when it was placed."""
    earliest = quarantined.groupBy(*keys).agg(F.min(FIRST_CHANGED_AT).alias("_quarantined_earliest"))
    return (null_safe_join(changes, earliest, keys, "left")
            .withColumn(FIRST_CHANGED_AT, F.least(FIRST_CHANGED_AT, "_quarantined_earliest"))
            .drop("_quarantined_earliest"))


def settled(quarantined: DataFrame, stored: DataFrame, keys: tuple[str, ...]) -> DataFrame:
    """The quarantined versions (`keys`, `source_position`) their key no longer needs there: a
    quarantine holds each key's newest version while that version breaks a rule, so a version
    leaves it once a newer one of its key arrives, or once Silver (`stored`: its rows of these
    keys after the write) holds it or a newer one (let out: its customer arrived)."""
    versions = (quarantined.select(*keys, SOURCE_POSITION, F.lit(False).alias("_valid"))
                .unionByName(stored.select(*keys, SOURCE_POSITION, F.lit(True).alias("_valid"))))
    newest = latest_per_key(versions, keys, [F.col(SOURCE_POSITION).desc(), F.col("_valid").desc()])
    still_bad = newest.filter(~F.col("_valid")).select(*keys, SOURCE_POSITION)
    return null_safe_join(quarantined.select(*keys, SOURCE_POSITION).distinct(), still_bad, (*keys, SOURCE_POSITION),
                          "left_anti")


def retimed(stored: DataFrame, table: SilverTable) -> DataFrame:
    """Stored rows whose looked-up columns (a detail's order time: `stored` carries it as looked
    up now) give other values than they hold, with the new ones: a detail stored before its
    order was known, or whose order's time moved since, takes its order's time."""
    derived = table.derived_from_looked_up
    differs = [~F.col(name).eqNullSafe(F.expr(expression)) for name, expression in derived.items()]
    return (stored.filter(functools.reduce(lambda one, other: one | other, differs))
            .withColumns({name: F.expr(expression) for name, expression in derived.items()})
            .drop(*table.looked_up))


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
