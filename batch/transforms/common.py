"""Transforms every layer uses: which rows changed, and the latest version of each key."""

from __future__ import annotations

from collections.abc import Sequence
from functools import reduce

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F


def _same_row(left: DataFrame, right: DataFrame, columns: Sequence[str]) -> Column:
    return reduce(lambda both, name: both & left[name].eqNullSafe(right[name]),
                  columns, F.lit(True))


def changed_rows(candidates: DataFrame, current: DataFrame) -> DataFrame:
    """The candidate rows not already present, identical in every column, in `current`.

    Comparing null-safely on all columns makes a re-run that brings no news write nothing.
    """
    columns = candidates.columns
    return candidates.join(current.select(*columns), on=_same_row(candidates, current, columns),
                           how="left_anti")


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
