"""The fast lane: each micro-batch of CDC records archived, applied to Silver's tables and to
Gold's `fact_orders`, in a few Delta commits and no JVM.

Exactly once, and exact after a kill anywhere:
- the archive's append carries a Delta transaction id per topic-partition (its last offset),
  and the consumer starts each partition after it, so every (topic, partition, offset) is
  archived once (a record the archive holds already is left out of an append);
- Silver's and Gold's writes are MERGEs where the newest source position wins and facts are
  recomputed from Silver, so applying a change again changes nothing; their marks (Silver's:
  the archive's version applied, the format batch.store.marks reads, shared with the Spark jobs) are written
  after the data, and a start first applies what the archive holds beyond Silver's mark;
- each step takes its work from the records it applies (the keys they name), never from what an
  earlier step changed this time: after a kill between Silver's commit and Gold's, Silver has
  nothing left to change when the records are applied again, and Gold must still see their keys.
  `kill_points` names every boundary between two commits; the fault tests kill the lane at each.

It owns the hot tables while it runs (batch.fastlane.lease); the Spark jobs read them through
their change feed.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from batch.clocks import COMPACT_AFTER_FILES
from batch.fastlane import facts as facts_formula
from batch import kill_points
from batch.fastlane import silver
from batch.fastlane.archive import Archived, Record, archive, rearchive, row_changes, unreadable
from batch.fastlane.delta import Lake, Objects
from batch.fastlane.order_partitions import OrderPartitions
from batch.fastlane.source import Partition
from batch.paths import ARCHIVE_MARK, CDC_QUARANTINE, GOLD, SILVER, archive_location, path, quarantine_name
from batch.rules import (CUSTOMERS, INITIAL_SNAPSHOT, ORDER_DETAILS, ORDERS, SOURCE_POSITION, TABLES,
                         SilverTable, envelope_paths, extra_columns)
from batch.runs import Written, log
from config import Settings

APP_PREFIX = "fast-lane"
ORDER_TIMES = {"order_id": pl.String, "order_ts": pl.Datetime("us", "UTC")}  # what a detail looks up
FACTS_PARTITION = "order_date_id"


def app_id(topic: str, partition: int) -> str:
    """The Delta transaction id of a topic-partition's records in the archive."""
    return f"{APP_PREFIX}:{topic}:{partition}"


@dataclass
class MicroBatch:
    """What applying one micro-batch took."""

    records: int = 0
    commits: int = 0
    archive_s: float = 0.0
    silver_s: float = 0.0
    gold_s: float = 0.0
    table_s: dict[str, float] = field(default_factory=dict)  # "silver.orders" -> its seconds
    quarantined: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return self.archive_s + self.silver_s + self.gold_s

    def line(self, number: int, left: int | None) -> str:
        waiting = "" if left is None else f", {left:,} left in the topics"
        return (f"micro-batch {number}: {self.records:,} records applied{waiting}; {self.commits} Delta commits, "
                f"{self.seconds:.2f} s (archive {self.archive_s:.2f} s, silver {self.silver_s:.2f} s, "
                f"gold {self.gold_s:.2f} s)")


def reaches_back(archived: Archived) -> bool:
    """Whether records hold the source from its beginning: some of the connector's initial
    snapshot, and every partition from offset 0."""
    snapshot = archived.rows.select(
        pl.coalesce(pl.col("value").str.json_path_match(path) for path in envelope_paths("source.snapshot"))
        .is_in(INITIAL_SNAPSHOT).any()
    ).item()
    whole = archived.rows.group_by("topic", "partition").agg(pl.col("offset").min()).filter(pl.col("offset") > 0)
    return bool(snapshot) and whole.is_empty()


def hot_tables(settings: Settings) -> list[str]:
    """The tables the fast lane writes, and owns while it runs."""
    silver_tables = [path(settings, SILVER, name) for table in TABLES for name in (table.name, quarantine_name(table.name))]
    return [archive_location(settings), *silver_tables, path(settings, SILVER, CDC_QUARANTINE),
            path(settings, GOLD, "fact_orders")]


class FastLane:
    """The hot path's writer: `apply` a micro-batch of records, `recover` what the archive holds
    beyond Silver's mark."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lake, self.objects = Lake(settings), Objects(settings)
        self.archive_location = archive_location(settings)
        self.held: dict[str, tuple[int, object]] = {}  # location -> (version, what is held of it)
        self.orders_written = pl.DataFrame(schema=ORDER_TIMES)  # Silver's orders as this micro-batch wrote them
        self.settling: dict[str, pl.DataFrame] = {}  # table -> its quarantine's versions to take out
        self.kill_points = kill_points.KillPoints(settings.lake_kill_at)
        by_order_date = [(self.location(SILVER, table.name), table.partition_by[0])
                         for table in (ORDERS, ORDER_DETAILS)]
        self.order_partitions = {location: OrderPartitions(self.lake, location, column) for location, column in
                                 [*by_order_date, (self.location(GOLD, "fact_orders"), FACTS_PARTITION)]}

    def location(self, layer: str, table: str) -> str:
        return path(self.settings, layer, table)

    def of_orders(self, location: str, order_ids: pl.Series,
                  columns: Sequence[str] | None = None) -> pl.DataFrame | None:
        """The rows of `order_ids`' orders in a table partitioned by their dates, read from the
        partitions they lie in."""
        return self.order_partitions[location].read(order_ids, columns)

    def upsert(self, location: str, rows: pl.DataFrame, keys: Sequence[str], *, partition_by: Sequence[str],
               deletes: pl.DataFrame | None = None, current: pl.DataFrame | None = None) -> Written:
        """`Lake.upsert`, bringing along the order partitions of a table partitioned by its orders' dates."""
        written = self.lake.upsert(location, rows, keys, deletes=deletes, partition_by=partition_by, current=current)
        if location in self.order_partitions:
            self.order_partitions[location].wrote(rows, written)
        return written

    def check_tables(self) -> None:
        for location in hot_tables(self.settings):
            self.lake.check_writable(location)

    def next_offsets(self, partitions: Sequence[Partition]) -> dict[Partition, int | None]:
        """Where each partition's reading resumes: after the archive's newest record of it."""
        found = {}
        for topic, partition in partitions:
            done = self.lake.transaction_version(self.archive_location, app_id(topic, partition))
            found[(topic, partition)] = None if done is None else done + 1
        return found

    def recover(self) -> MicroBatch | None:
        """Apply what the archive holds beyond Silver's mark (a lane stopped between its append
        and its marks, or an archive written by `python -m batch archive`)."""
        now = self.lake.version(self.archive_location)
        if now is None:
            return None
        mark = self.objects.read_marks(SILVER).get(ARCHIVE_MARK)
        seen = -1 if mark is None else int(mark)
        if seen >= now:
            return None
        table = self.lake.table(self.archive_location)
        feed = pa.RecordBatchReader.from_stream(table.load_cdf(starting_version=seen + 1, ending_version=now))
        rows = pl.from_arrow(feed.read_all())
        rows = rows.filter(pl.col("_change_type") == "insert").drop("_change_type", "_commit_version",
                                                                     "_commit_timestamp")
        log.info("fast lane: applying archive versions %d-%d (%s records) before reading on", seen + 1, now,
                 f"{rows.height:,}")
        batch = MicroBatch(records=rows.height)
        self.refine(batch, rearchive(rows), now)
        return batch

    def apply(self, records: list[Record]) -> MicroBatch:
        """One micro-batch: archived, then applied to Silver and Gold's facts."""
        batch = MicroBatch(records=len(records))
        started = time.monotonic()
        with self.lake.one_look():
            archived, version = self.append(records)
            batch.commits += 1
            self.kill_points.reached(kill_points.ARCHIVE)
            batch.archive_s = time.monotonic() - started
            self.refine(batch, archived, version)
        return batch

    def append(self, records: list[Record]) -> tuple[Archived, int]:
        """The records the archive does not hold yet appended to it, in one commit carrying each
        topic-partition's last offset as its transaction id; them and the archive's version."""
        archived = self.not_archived(archive(records, datetime.now(timezone.utc)))
        ends = archived.rows.group_by("topic", "partition").agg(pl.col("offset").max())
        transactions = {app_id(topic, partition): offset for topic, partition, offset in ends.iter_rows()}
        version = self.lake.append(self.archive_location, archived.rows, partition_by=["topic"],
                                   transactions=transactions)
        return archived, version

    def not_archived(self, archived: Archived) -> Archived:
        """The records past each partition's newest offset in the archive."""
        done = {(topic, partition): self.lake.transaction_version(self.archive_location, app_id(topic, partition))
                for topic, partition in archived.rows.select("topic", "partition").unique().iter_rows()}
        held = [(topic, partition, offset) for (topic, partition), offset in done.items() if offset is not None]
        if not held:
            return archived
        floor = pl.DataFrame(held, schema={"topic": pl.String, "partition": pl.Int32, "_done": pl.Int64},
                             orient="row")
        keep = (archived.rows.with_row_index("_i").join(floor, on=["topic", "partition"], how="left")
                .filter(pl.col("_done").is_null() | (pl.col("offset") > pl.col("_done")))["_i"].to_list())
        return Archived(archived.rows[keep], [archived.images[i] for i in keep])

    def refine(self, batch: MicroBatch, archived: Archived, archive_version: int) -> None:
        """Silver's tables from the archived records, then Gold's facts, then the marks."""
        started = time.monotonic()
        now = datetime.now(timezone.utc)
        topics = set(archived.rows["topic"].unique().to_list())
        if self.lake.version(self.location(SILVER, ORDERS.name)) is None and not reaches_back(archived):
            raise RuntimeError("the CDC topics do not reach back to the source's beginning (no connector snapshot, or "
                               "Kafka's retention cut them): run `python -m batch` once, which starts Silver from a "
                               "JDBC snapshot of MySQL, then the fast lane")
        self.quarantine_unreadable(batch, archived)
        self.orders_written = pl.DataFrame(schema=ORDER_TIMES)
        self.settling = {}
        touched: dict[str, pl.DataFrame] = {}
        for table in TABLES:
            topic = self.settings.cdc_topic(table.name)
            referenced = {self.settings.cdc_topic(reference.table) for reference in table.references.values()}
            if topic in topics or referenced & topics or self.lake.version(self.location(SILVER, table.name)) is None:
                table_started = time.monotonic()
                touched[table.name] = self.refine_table(batch, table, archived.of_topic(topic), now, touched)
                batch.table_s[f"{SILVER}.{table.name}"] = time.monotonic() - table_started
        batch.silver_s = time.monotonic() - started
        started = time.monotonic()
        orders = [keys.select("order_id") for name, keys in touched.items()
                  if name in (ORDERS.name, ORDER_DETAILS.name)]
        order_ids = pl.concat(orders)["order_id"].unique() if orders else pl.Series("order_id", [], pl.String)
        self.write_facts(batch, order_ids, now)
        batch.table_s[f"{GOLD}.fact_orders"] = time.monotonic() - started
        self.kill_points.reached(kill_points.GOLD)
        self.settle(batch)
        batch.gold_s = time.monotonic() - started
        self.objects.write_marks(SILVER, {ARCHIVE_MARK: str(archive_version)})
        self.kill_points.reached(kill_points.SILVER_MARKS)
        silver_versions = {name: str(self.lake.version(self.location(SILVER, name)))
                           for name in (ORDERS.name, ORDER_DETAILS.name)}
        self.objects.write_marks(GOLD, silver_versions)
        self.kill_points.reached(kill_points.GOLD_MARKS)

    def quarantine_unreadable(self, batch: MicroBatch, archived: Archived) -> None:
        location = self.location(SILVER, CDC_QUARANTINE)
        rows = unreadable(archived)
        if rows.height or self.lake.version(location) is None:
            batch.quarantined += rows.height
            batch.commits += self.lake.upsert(location, rows, ["topic", "partition", "offset"]).commits
        self.kill_points.reached(kill_points.CDC_QUARANTINE)

    def refine_table(self, batch: MicroBatch, table: SilverTable, archived: Archived, now: datetime,
                     named_before: dict[str, pl.DataFrame]) -> pl.DataFrame:
        """Apply the table's changes among `archived` to Silver and its quarantine; the keys the
        records name, the quarantined rows naming a key the records of a referenced table name
        (`named_before`: those tables' keys, refined first), and the keys written."""
        location = self.location(SILVER, table.name)
        columns = [*table.image_columns, *extra_columns(archived.fields(), table.image_columns)]
        changes = row_changes(archived, table.name, columns, table.bronze_keys)
        if table.looked_up:
            changes = self.order_times(changes)
        candidates = silver.conform(changes, table)
        named = candidates.select(table.keys)
        quarantine_location = self.location(SILVER, quarantine_name(table.name))
        quarantine = self.lake.read(quarantine_location) if table.references else None
        if quarantine is not None and not quarantine.is_empty():
            # every quarantined row that may now pass, not only those of this batch's keys
            awaiting = silver.awaiting_references(quarantine, table)
            candidates = pl.concat([candidates, awaiting], how="diagonal_relaxed")
            named = pl.concat([named, *(
                awaiting.filter(pl.col(reference.column).is_in(arrived[reference.key].implode())).select(table.keys)
                for reference in table.references.values()
                if (arrived := named_before.get(reference.table)) is not None and not arrived.is_empty())],
                how="vertical_relaxed")
        newest = silver.newest_per_key(silver.with_first_change(candidates, table.keys), table.keys)
        held, of_orders_named = self.held_rows(table, newest, named_before.get(ORDERS.name))
        quarantined = self.quarantined(table, newest, quarantine)
        newest = silver.newer_than_stored(newest, held, table.keys)
        newest = silver.with_earliest_first_change(newest, quarantined, table.keys)
        known = {reference.table: self.keys_of(reference.table, reference.key)
                 for reference in table.references.values()}
        checked = silver.check(newest, table, now, known)
        good, bad = silver.valid(checked), silver.quarantined(checked)
        if checked.height != good.height + bad.height:
            raise RuntimeError(f"silver.{table.name}: {checked.height} rows in but {good.height} valid + "
                               f"{bad.height} quarantined; refusing to write")
        leaving = None
        if bad.height and held is not None:
            leaving = held.select(table.keys).join(bad.select(table.keys), on=list(table.keys), how="semi")
        stored_after = silver.versions_after(held, good, leaving, table.keys)
        if table.looked_up and held is not None:
            retimed, their_rows = self.retimed(table, good, of_orders_named)
            good = pl.concat([good, retimed], how="diagonal_relaxed")
            held = pl.concat([held, their_rows], how="diagonal_relaxed")
        written = self.upsert(location, good, table.keys, deletes=leaving, partition_by=table.partition_by,
                              current=held)
        batch.commits += written.commits
        self.kill_points.reached(kill_points.silver(table.name))
        self.keep_keys(location, table.keys, good, leaving, written)
        if table is ORDERS:
            self.orders_written = good.select("order_id", "order_ts").cast(ORDER_TIMES)
        batch.quarantined += bad.height
        self.write_quarantine(batch, table, bad, quarantined, stored_after)
        self.kill_points.reached(kill_points.silver(quarantine_name(table.name)))
        moved = [good.select(table.keys)] if written.rows else []
        return pl.concat([named, *moved, *([] if leaving is None else [leaving])], how="vertical_relaxed").unique()

    def quarantined(self, table: SilverTable, rows: pl.DataFrame, quarantine: pl.DataFrame | None) -> pl.DataFrame | None:
        """The quarantine's versions of `rows`' keys (from `quarantine`, if read whole already)."""
        if quarantine is not None:
            return quarantine.join(rows.select(table.keys), on=list(table.keys), how="semi", nulls_equal=True)
        location = self.location(SILVER, quarantine_name(table.name))
        stored = self.lake.table(location)
        return self.lake.of_keys(location, rows, table.keys) if stored is not None and stored.file_uris() else None

    def write_quarantine(self, batch: MicroBatch, table: SilverTable, bad: pl.DataFrame,
                         quarantined: pl.DataFrame | None, stored_after: pl.DataFrame) -> None:
        """The rows breaking a rule into the table's quarantine; the versions it held of the keys
        decided (`quarantined`) that it holds no longer (silver.settled) are left for `settle`,
        once Gold is written: an order let out of the quarantine reaches Gold from there, as
        often as the micro-batch is applied."""
        location = self.location(SILVER, quarantine_name(table.name))
        version_keys = [*table.keys, SOURCE_POSITION]
        if quarantined is not None and not quarantined.is_empty():
            versions = pl.concat([quarantined.select(version_keys), bad.select(version_keys)], how="vertical_relaxed")
            settled = silver.settled(versions, stored_after, table.keys)
            bad = bad.join(settled, on=version_keys, how="anti", nulls_equal=True)
            self.settling[table.name] = quarantined.select(version_keys).join(settled, on=version_keys, how="semi",
                                                                              nulls_equal=True)
        if bad.height or self.lake.version(location) is None:
            batch.commits += self.lake.upsert(location, bad, version_keys, nullable_keys=table.keys).commits

    def settle(self, batch: MicroBatch) -> None:
        """Take out of each quarantine the versions it no longer holds (write_quarantine)."""
        for table in TABLES:
            gone = self.settling.get(table.name)
            if gone is not None and gone.height:
                location = self.location(SILVER, quarantine_name(table.name))
                batch.commits += self.lake.upsert(location, gone.clear(), list(gone.columns), deletes=gone,
                                                  nullable_keys=table.keys).commits
            self.kill_points.reached(kill_points.settled(quarantine_name(table.name)))

    def held_rows(self, table: SilverTable, newest: pl.DataFrame,
                  orders_named: pl.DataFrame | None) -> tuple[pl.DataFrame | None, pl.DataFrame | None]:
        """Silver's rows of `newest`'s keys; for a table whose rows look up their order's time,
        also, in the same read, the rows of the orders this micro-batch named."""
        location = self.location(SILVER, table.name)
        partitions = self.order_partitions.get(location)
        if not table.looked_up or orders_named is None or orders_named.is_empty():
            if partitions is None:
                return self.lake.of_keys(location, newest, table.keys), None
            return partitions.of_keys(newest, table.keys), None
        by_order = self.of_orders(location, pl.concat([newest["order_id"], orders_named["order_id"]]))
        if by_order is None:
            return None, None
        wanted = newest.select(table.keys).unique().cast(dict(by_order.select(table.keys).schema))
        return (by_order.join(wanted, on=list(table.keys), how="semi", nulls_equal=True),
                by_order.filter(pl.col("order_id").is_in(orders_named["order_id"].implode())))

    def retimed(self, table: SilverTable, good: pl.DataFrame,
                of_orders_named: pl.DataFrame | None) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Silver's details whose order time moved, refreshed (silver.retimed), and the rows they
        replace: those of the orders this micro-batch named (`of_orders_named`, read with the
        batch's own), and those still waiting for their order (no order time, so no order date:
        one partition), left out where `good` writes the key anyway."""
        waiting = self.lake.read(self.location(SILVER, table.name), where=pc.field("order_date").is_null(),
                                 partitions="`order_date` IS NULL")
        stored = pl.concat([*([] if of_orders_named is None else [of_orders_named]), waiting], how="diagonal_relaxed")
        stored = (stored.unique(list(table.keys), keep="first")
                  .join(good.select(table.keys), on=list(table.keys), how="anti", nulls_equal=True))
        retimed = silver.retimed(self.order_times(stored), table)
        return retimed, stored.join(retimed.select(table.keys), on=list(table.keys), how="semi", nulls_equal=True)

    def order_times(self, changes: pl.DataFrame) -> pl.DataFrame:
        """A detail's order time, from Silver's orders (null until its order is known): those
        this micro-batch wrote as it wrote them, the others read."""
        ids = changes["order_id"].str.strip_chars()
        others = ids.filter(~ids.is_in(self.orders_written["order_id"].implode()))
        stored = self.of_orders(self.location(SILVER, ORDERS.name), others, columns=list(ORDER_TIMES))
        times = pl.concat([self.orders_written, *([] if stored is None else [stored.cast(ORDER_TIMES)])]).rename(
            {"order_id": "_order", "order_ts": "order_timestamp"})
        return (changes.with_columns(pl.col("order_id").str.strip_chars().alias("_order"))
                .join(times, on="_order", how="left").drop("_order"))

    def keys_of(self, table: str, key: str) -> pl.Series:
        """A Silver table's keys, held in memory and read again when its version moves."""
        location = self.location(SILVER, table)
        now = self.lake.version(location)
        held = self.held.get(location)
        if held is None or held[0] != now:
            rows = self.lake.read(location, columns=[key])
            keys = rows[key] if rows is not None else pl.Series(key, [], pl.Int32)
            held = self.held[location] = (now, keys)
        return held[1]

    def keep_keys(self, location: str, keys: Sequence[str], rows: pl.DataFrame, deleted: pl.DataFrame | None,
                  written: Written) -> None:
        """The held keys of a table this lane has just written, brought to the write's version
        from what it wrote instead of read again whole (the lane is the table's only writer)."""
        held = self.held.get(location)
        if held is None or len(keys) != 1 or written.version is None or held[0] != written.version - written.commits:
            return
        kept, key = held[1], keys[0]
        if deleted is not None:
            kept = kept.filter(~kept.is_in(deleted[key].cast(kept.dtype).implode()))
        added = rows[key].cast(kept.dtype).unique()
        self.held[location] = (written.version, pl.concat([kept, added.filter(~added.is_in(kept.implode()))]))

    def dimensions(self) -> facts_formula.Dimensions:
        """The dimension rows facts resolve against, each held until its version moves."""
        found = []
        for name, schema in facts_formula.RESOLVED_BY.items():
            location = self.location(GOLD, name)
            now = self.lake.version(location)
            held = self.held.get(location)
            if held is None or held[0] != now:
                rows = self.lake.read(location, columns=list(schema))
                rows = rows.cast(schema) if rows is not None else pl.DataFrame(schema=schema)
                held = self.held[location] = (now, rows)
            found.append(held[1])
        return facts_formula.Dimensions(*found)

    def write_facts(self, batch: MicroBatch, order_ids: pl.Series, now: datetime) -> Written | None:
        """fact_orders recomputed for `order_ids`."""
        location = self.location(GOLD, "fact_orders")
        if order_ids.is_empty() and self.lake.version(location) is not None:
            return None
        orders = self.of_orders(self.location(SILVER, ORDERS.name), order_ids)
        details = self.of_orders(self.location(SILVER, ORDER_DETAILS.name), order_ids)
        if orders is None or details is None:
            return None
        facts = facts_formula.fact_orders(orders, details.filter(~pl.col("is_deleted")), self.dimensions())
        current = self.of_orders(location, order_ids)
        if current is not None:
            gone = facts_formula.cancelled_facts(current, facts, now)
            facts = pl.concat([facts, gone.cast(dict(facts.schema))]) if gone.height else facts
        written = self.upsert(location, facts, ["order_id"], partition_by=[FACTS_PARTITION], current=current)
        batch.commits += written.commits
        return written

    def resolve_unknown_keys(self, batch: MicroBatch) -> None:
        """The facts still pointing at an unknown member, recomputed once a dimension moved."""
        location = self.location(GOLD, "fact_orders")
        facts = self.lake.read(location, columns=["order_id", "customer_key", "payment_method_key", "order_date_id"])
        if facts is None:
            return
        unknown = facts.filter((pl.col("customer_key") == facts_formula.UNKNOWN)
                               | (pl.col("payment_method_key") == facts_formula.UNKNOWN)
                               | (pl.col("order_date_id") == facts_formula.UNKNOWN))["order_id"]
        if not unknown.is_empty():
            self.write_facts(batch, unknown, datetime.now(timezone.utc))

    def dimension_versions(self) -> tuple[int | None, ...]:
        return tuple(self.lake.version(self.location(GOLD, name)) for name in facts_formula.RESOLVED_BY)

    def compact(self) -> list[str]:
        """The hot tables every micro-batch reads, compacted when they hold many files."""
        compacted = []
        for location in [*self.order_partitions, self.location(SILVER, CUSTOMERS.name)]:
            versions = self.lake.compact(location, COMPACT_AFTER_FILES)
            if versions is not None:
                compacted.append(location)
                if location in self.order_partitions:
                    self.order_partitions[location].rows_unchanged(*versions)
        return compacted


