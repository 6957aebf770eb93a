"""Transforms every layer uses: which rows changed, and the latest version of each key."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from batch.rules import KNOWN


def _null_safe_equal(columns: Sequence[str], prefix: str) -> Column:
    return reduce(lambda both, name: both & F.col(name).eqNullSafe(F.col(f"{prefix}{name}")),
                  columns, F.lit(True))


def changed_rows(candidates: DataFrame, current: DataFrame, keys: Sequence[str]) -> DataFrame:
    """The candidate rows not already present, identical in every column, in `current`, each
    with `_known`: whether `current` has a row of its key (an update rather than an insert).

    Comparing null-safely on all columns makes a re-run that brings no news write nothing.
    One join by key answers both questions, so a write reads its target once.
    """
    columns = candidates.columns
    was = current.select(*[F.col(name).alias(f"_was_{name}") for name in columns], F.lit(True).alias(KNOWN))
    known = F.coalesce(F.col(KNOWN), F.lit(False))
    return (candidates.join(was, _null_safe_equal(keys, "_was_"), "left")
            .filter(~(known & _null_safe_equal(columns, "_was_")))
            .select(*columns, known.alias(KNOWN)))


def of_keys(table: DataFrame, rows: DataFrame, keys: Sequence[str]) -> DataFrame:
    """The rows of `table` whose key (null-safe) is among `rows`' keys: a broadcast semi-join,
    so a join with a whole target costs what the batch's keys cost, not what the table holds.
    (Repeated keys are left in: the broadcast's hash table takes them, a `distinct` would cost
    a shuffle.)"""
    wanted = F.broadcast(rows.select(*[F.col(name).alias(f"_of_{name}") for name in keys]))
    return table.join(wanted, _null_safe_equal(keys, "_of_"), "left_semi")


def null_safe_join(left: DataFrame, right: DataFrame, keys: Sequence[str], how: str) -> DataFrame:
    """`left` joined to `right` on `keys`, null matching null; the keys once, `left`'s."""
    renamed = right.withColumnsRenamed({name: f"_right_{name}" for name in keys})
    joined = left.join(renamed, _null_safe_equal(keys, "_right_"), how)
    return joined if how in ("left_semi", "left_anti") else joined.drop(*(f"_right_{name}" for name in keys))


def missing_keys(current: DataFrame, candidates: DataFrame, keys: Sequence[str]) -> DataFrame:
    """The keys of `current` that `candidates` no longer has: rows deleted at the source."""
    return current.select(*keys).join(candidates.select(*keys), on=list(keys), how="left_anti")


def latest_per_key(rows: DataFrame, keys: Sequence[str], newest_first: Sequence[Column]) -> DataFrame:
    """One row per key: the first by `newest_first`."""
    rank = Window.partitionBy(*keys).orderBy(*newest_first)
    return (rows.withColumn("_rank", F.row_number().over(rank))
            .filter(F.col("_rank") == 1).drop("_rank"))


def nullable(rows: DataFrame) -> DataFrame:
    """Every column nullable. A lake table keeps the nullability it was created with, so a
    NOT NULL the source once had would make a later NULL fail the write instead of reaching
    Silver's rules."""
    return rows.select(*[F.when(F.col(name).isNotNull(), F.col(name)).alias(name) for name in rows.columns])
