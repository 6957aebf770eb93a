"""Silver in Polars: a table's row changes -> its newest valid rows and its quarantine, by the
rules batch.rules states for both engines. Pure; batch.transforms.silver is Spark's side of
the same rules, and tests/unit/batch/test_fast_lane.py holds the two engines' tables equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

import polars as pl

from batch.rules import (BROKEN_RULES, CHANGED_AT, CHANGED_AT_COLUMN, DELETED, FIRST_CHANGED_AT, KNOWN, NOW,
                         POSITION, RAW, SOURCE_POSITION, SilverTable, carried_columns, polars_sql,
                         source_row_columns)



def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Timestamps as the lake stores them (Delta's `timestamp`: UTC); SQL's casts drop the zone."""
    return frame.with_columns(pl.col(name).dt.replace_time_zone("UTC").dt.cast_time_unit("us")
                              for name, dtype in frame.schema.items()
                              if isinstance(dtype, pl.Datetime) and dtype.time_zone is None)


def _json(frame: pl.DataFrame, columns: Sequence[str]) -> pl.Expr:
    """The source row as JSON, timestamps as Spark's `to_json` writes them."""
    fields = [pl.col(name).dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").alias(name)
              if isinstance(frame.schema[name], pl.Datetime) else pl.col(name) for name in columns]
    return pl.struct(fields).struct.json_encode() if fields else pl.lit("{}")


def conform(changes: pl.DataFrame, table: SilverTable) -> pl.DataFrame:
    """Silver's columns from each change's row (the table's SQL), then any column the source
    added since (as it is), the lifecycle (`is_deleted`, `deleted_at`: the delete's commit,
    `changed_at`, `first_changed_at`: the change's own until `with_first_change` sees its
    key's others, `source_position`), and the source row kept as JSON."""
    source_columns = [name for name in changes.columns if not name.startswith("_")]
    deleted = pl.col(DELETED).fill_null(False)
    return _utc(changes.select(
        *(pl.sql_expr(polars_sql(expression)).alias(name) for name, expression in table.columns.items()),
        *carried_columns(source_columns, table),
        deleted.alias("is_deleted"),
        pl.when(deleted).then(pl.col(CHANGED_AT)).alias("deleted_at"),
        pl.col(CHANGED_AT).alias(CHANGED_AT_COLUMN),
        pl.col(CHANGED_AT).alias(FIRST_CHANGED_AT),
        pl.col(POSITION).alias(SOURCE_POSITION),
        _json(changes, source_row_columns(changes.columns, table)).alias(RAW)))


def with_first_change(candidates: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Each candidate's `first_changed_at` as the earliest among its key's candidates."""
    return candidates.with_columns(pl.col(FIRST_CHANGED_AT).min().over(keys))


def newest_per_key(rows: pl.DataFrame, keys: Sequence[str], position: str = SOURCE_POSITION) -> pl.DataFrame:
    """Each key's newest row, by source position."""
    return rows.sort(position, descending=True, nulls_last=True).unique(list(keys), keep="first",
                                                                        maintain_order=True)


def newer_than_stored(changes: pl.DataFrame, stored: pl.DataFrame | None, keys: Sequence[str]) -> pl.DataFrame:
    """The changes past the position the table already holds for their key: a replayed or
    late-read older change must not undo a newer one. A row's first commit stays the earlier
    of the stored one and the change's."""
    if stored is None:
        return changes
    earliest = FIRST_CHANGED_AT in stored.columns
    held = stored.select(*keys, pl.col(SOURCE_POSITION).alias("_held"),
                         *([pl.col(FIRST_CHANGED_AT).alias("_held_earliest")] if earliest else []))
    newer = (changes.join(held, on=list(keys), how="left", nulls_equal=True)
             .filter(pl.col("_held").is_null() | (pl.col(SOURCE_POSITION) > pl.col("_held"))))
    if earliest:
        newer = newer.with_columns(pl.min_horizontal(FIRST_CHANGED_AT, "_held_earliest").alias(FIRST_CHANGED_AT))
        newer = newer.drop("_held_earliest")
    return newer.drop("_held")


def with_earliest_first_change(changes: pl.DataFrame, quarantined: pl.DataFrame | None,
                               keys: Sequence[str]) -> pl.DataFrame:
    """A row's first commit also counts its key's versions in the quarantine: an order placed
    breaking a rule and corrected since was first committed when it was placed."""
    if quarantined is None or quarantined.is_empty() or FIRST_CHANGED_AT not in quarantined.columns:
        return changes
    earliest = quarantined.group_by(list(keys)).agg(pl.col(FIRST_CHANGED_AT).min().alias("_quarantined_earliest"))
    return (changes.join(earliest, on=list(keys), how="left", nulls_equal=True)
            .with_columns(pl.min_horizontal(FIRST_CHANGED_AT, "_quarantined_earliest").alias(FIRST_CHANGED_AT))
            .drop("_quarantined_earliest"))


def check(rows: pl.DataFrame, table: SilverTable, now: datetime,
          known: Mapping[str, pl.Series] | None = None) -> pl.DataFrame:
    """Add `_broken_rules`: the names of the rules a row breaks (a rule that is null breaks),
    the table's references among them (`known`: each referenced table's keys)."""
    known = known or {}
    verdicts = [pl.when(~pl.sql_expr(polars_sql(holds)).fill_null(False)).then(pl.lit(name))
                for name, holds in table.rules.items()]
    verdicts += [pl.when(~pl.col(reference.column).is_in(known.get(reference.table, pl.Series([], dtype=pl.Int32))
                                                         .implode()).fill_null(False)).then(pl.lit(rule))
                 for rule, reference in table.references.items()]
    judged = rows.with_columns(pl.lit(now).dt.replace_time_zone("UTC").alias(NOW) if now.tzinfo is None
                               else pl.lit(now).alias(NOW))
    return (judged.with_columns(pl.concat_list(verdicts).list.drop_nulls().alias(BROKEN_RULES)
                                if verdicts else pl.lit([], dtype=pl.List(pl.String)).alias(BROKEN_RULES))
            .drop(NOW))


def awaiting_references(quarantine: pl.DataFrame, table: SilverTable) -> pl.DataFrame:
    """Quarantined rows that broke only reference rules: the row they name may have arrived
    since, so they are checked again."""
    references = list(table.references)
    return (quarantine.filter(pl.col(BROKEN_RULES).list.eval(pl.element().is_in(references)).list.all())
            .drop(BROKEN_RULES))


def versions_after(held: pl.DataFrame | None, written: pl.DataFrame, deleted: pl.DataFrame | None,
                   keys: Sequence[str]) -> pl.DataFrame:
    """The versions (`keys`, `source_position`) a table holds of the keys a write decided, once
    it has written `written` over `held` and deleted the `deleted` keys."""
    versions = pl.concat([*([] if held is None else [held.select(*keys, SOURCE_POSITION)]),
                          written.select(*keys, SOURCE_POSITION)], how="vertical_relaxed")
    return versions if deleted is None else versions.join(deleted, on=list(keys), how="anti", nulls_equal=True)


def settled(quarantined: pl.DataFrame, stored: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """The quarantined versions (`keys`, `source_position`) their key no longer needs there: a
    quarantine holds each key's newest version while that version breaks a rule, so a version
    leaves it once a newer one of its key arrives, or once Silver (`stored`: its rows of these
    keys after the write) holds it or a newer one (let out: its customer arrived)."""
    versions = pl.concat([quarantined.select(*keys, SOURCE_POSITION, pl.lit(False).alias("_valid")),
                          stored.select(*keys, SOURCE_POSITION, pl.lit(True).alias("_valid"))], how="vertical_relaxed")
    newest = versions.sort(SOURCE_POSITION, "_valid", nulls_last=False).group_by(list(keys)).last()
    still_bad = newest.filter(~pl.col("_valid")).select(*keys, SOURCE_POSITION)
    return (quarantined.select(*keys, SOURCE_POSITION)
            .join(still_bad, on=[*keys, SOURCE_POSITION], how="anti", nulls_equal=True).unique())


def retimed(stored: pl.DataFrame, table: SilverTable) -> pl.DataFrame:
    """Stored rows whose looked-up columns (a detail's order time: `stored` carries it as looked
    up now) give other values than they hold, with the new ones: a detail stored before its
    order was known, or whose order's time moved since, takes its order's time."""
    derived = table.derived_from_looked_up
    refreshed = _utc(stored.with_columns(pl.sql_expr(polars_sql(expression)).alias(f"_new_{name}")
                                         for name, expression in derived.items()))
    differs = pl.any_horizontal(pl.col(name).ne_missing(pl.col(f"_new_{name}")) for name in derived)
    return (refreshed.filter(differs)
            .with_columns(pl.col(f"_new_{name}").alias(name) for name in derived)
            .drop(*(f"_new_{name}" for name in derived), *table.looked_up))


def valid(checked: pl.DataFrame) -> pl.DataFrame:
    """The rows breaking no rule: Silver's columns, the carried ones and the lifecycle."""
    return (checked.filter(pl.col(BROKEN_RULES).list.len() == 0)
            .select(name for name in checked.columns if not name.startswith("_")))


def quarantined(checked: pl.DataFrame) -> pl.DataFrame:
    return checked.filter(pl.col(BROKEN_RULES).list.len() > 0)


def changed_rows(candidates: pl.DataFrame, current: pl.DataFrame | None, keys: Sequence[str]) -> pl.DataFrame:
    """The candidate rows not already in `current` identical in every column, each with
    `_known`: whether `current` has a row of its key. A re-run that brings no news writes nothing."""
    if current is None or current.is_empty():
        return candidates.with_columns(pl.lit(False).alias(KNOWN))
    shared = [name for name in candidates.columns if name in current.columns]
    now = current.select(shared).cast({name: candidates.schema[name] for name in shared})
    if len(shared) < len(candidates.columns):  # a column the table lacks: every row of a key differs
        differing = candidates
    else:
        comparable = [name for name in shared if not isinstance(candidates.schema[name], pl.List)]
        differing = candidates.join(now.select(comparable), on=comparable, how="anti", nulls_equal=True)
    keys_held = now.select(*keys).unique().with_columns(pl.lit(True).alias(KNOWN))
    return (differing.join(keys_held, on=list(keys), how="left", nulls_equal=True)
            .with_columns(pl.col(KNOWN).fill_null(False)))
