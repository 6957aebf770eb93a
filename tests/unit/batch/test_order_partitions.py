"""The fast lane's reads by order id, pruned to the partitions the orders' rows lie in
(batch.fastlane.order_partitions), on a `file://` lake: they read what an unpruned read reads,
from fewer files, and stay so through the lane's writes, another writer's and a compaction."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from batch.fastlane.delta import Lake
from batch.fastlane.order_partitions import MOST_CHUNKS, OrderPartitions

DAYS = [date(2026, 1, 1) + timedelta(days=n) for n in range(30)]


@pytest.fixture
def details(tmp_path, settings) -> tuple[Lake, str]:
    """A table of details, a partition per day: o0..o29 one detail each on its day, and o3 a
    second one still waiting for its order's date (the null partition)."""
    lake = Lake(settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"}))
    location = f"file://{tmp_path}/silver/order_details"
    rows = pl.DataFrame({"order_id": [*(f"o{n}" for n in range(30)), "o3"], "product_id": [1] * 30 + [2],
                         "order_date": [*DAYS, None]})
    lake.upsert(location, rows, ["order_id", "product_id"], partition_by=["order_date"])
    return lake, location


def files_read(lake: Lake, location: str, partitions: str | None) -> int:
    return len(lake.table(location).file_uris(file_pruning_predicate=partitions))


def read(lake: Lake, location: str, orders: list[str], partitions: OrderPartitions | None = None) -> pl.DataFrame:
    ids = pl.Series("order_id", orders)
    rows = lake.read(location, "order_id", ids) if partitions is None else partitions.read(ids)
    return rows.sort("order_id", "product_id")


def test_an_order_s_rows_are_read_from_the_partitions_they_lie_in_and_from_no_other(details):
    lake, location = details
    partitions = OrderPartitions(lake, location, "order_date")

    wanted = ["o3", "o7", "o-never-stored"]
    assert_frame_equal(read(lake, location, wanted, partitions), read(lake, location, wanted))
    assert read(lake, location, wanted, partitions).height == 3
    assert files_read(lake, location, partitions.where(pl.Series(wanted))) == 3  # o3's day and null, o7's day
    assert files_read(lake, location, partitions.where(pl.Series(["o-never-stored"]))) == 0
    assert files_read(lake, location, None) == 31


def test_the_lane_s_own_write_brings_the_partitions_along_without_reading_the_table_again(details):
    lake, location = details
    partitions = OrderPartitions(lake, location, "order_date")
    partitions.where(pl.Series(["o0"]))
    moved = pl.DataFrame({"order_id": ["o3", "o-new"], "product_id": [2, 1],
                          "order_date": [DAYS[20], date(2026, 3, 1)]})

    written = lake.upsert(location, moved, ["order_id", "product_id"])
    partitions.wrote(moved, written)

    assert partitions.version == lake.version(location)
    assert_frame_equal(read(lake, location, ["o3", "o-new"], partitions), read(lake, location, ["o3", "o-new"]))
    assert read(lake, location, ["o-new"], partitions)["order_date"].to_list() == [date(2026, 3, 1)]
    # o3's detail left the null partition; the pair stays (a superset), as no read of the table happened
    assert files_read(lake, location, partitions.where(pl.Series(["o3"]))) == 3


def test_a_version_another_writer_made_is_read_again(details, settings):
    lake, location = details
    partitions = OrderPartitions(lake, location, "order_date")
    partitions.where(pl.Series(["o0"]))
    other = pl.DataFrame({"order_id": ["o-elsewhere"], "product_id": [1], "order_date": [date(2026, 5, 1)]})
    Lake(lake.settings).upsert(location, other, ["order_id", "product_id"])

    assert read(lake, location, ["o-elsewhere"], partitions)["order_date"].to_list() == [date(2026, 5, 1)]
    assert partitions.version == lake.version(location)


def test_a_compaction_moves_no_row_so_the_partitions_are_kept_and_a_write_it_did_not_report_reads_them_again(details):
    lake, location = details
    partitions = OrderPartitions(lake, location, "order_date")
    moved = pl.DataFrame({"order_id": ["o3"], "product_id": [2], "order_date": [DAYS[20]]})
    partitions.where(pl.Series(["o0"]))
    partitions.wrote(moved, lake.upsert(location, moved, ["order_id", "product_id"]))
    before = lake.version(location)

    assert lake.compact(location, most_files=1) == (before, before + 1)
    partitions.rows_unchanged(before, before + 1)

    assert partitions.version == lake.version(location)
    partitions.where(pl.Series(["o3"]))
    assert partitions.pairs.height == 32  # kept, o3's old null pair with them: the table was not read again
    lake.upsert(location, moved.with_columns(product_id=pl.lit(3)), ["order_id", "product_id"])
    partitions.where(pl.Series(["o3"]))
    assert partitions.pairs.height == 31  # read again: where each row lies now


def test_a_commit_landing_after_the_pairs_were_checked_is_not_read_with_them(details):
    """The read is the version the pairs were checked at: the newest, pruned to older pairs,
    would miss a row another writer moved to a partition they do not name."""
    lake, location = details

    class RacedLake(Lake):
        def version(self, at: str) -> int | None:
            checked = super().version(at)
            moved = pl.DataFrame({"order_id": ["o5"], "product_id": [1], "order_date": [DAYS[20]]})
            Lake(self.settings).upsert(at, moved, ["order_id", "product_id"])  # lands after the check
            return checked

    raced = RacedLake(lake.settings)
    partitions = OrderPartitions(raced, location, "order_date")

    assert partitions.read(pl.Series("order_id", ["o5"]))["order_date"].to_list() == [DAYS[5]]
    assert partitions.read(pl.Series("order_id", ["o5"]))["order_date"].to_list() == [DAYS[20]]


def test_a_compaction_with_another_commit_among_its_own_reads_them_again_and_a_failed_load_is_not_kept(details):
    lake, location = details
    partitions = OrderPartitions(lake, location, "order_date")
    partitions.where(pl.Series(["o0"]))
    checked = partitions.version

    partitions.rows_unchanged(checked, checked + 2)
    assert partitions.version == checked

    Lake(lake.settings).upsert(location, pl.DataFrame({"order_id": ["o-x"], "product_id": [1],
                                                      "order_date": [DAYS[1]]}), ["order_id", "product_id"])
    class UnreachableLake(Lake):
        def read(self, *args, **kwargs):
            raise OSError("store unreachable")

    partitions.lake = UnreachableLake(lake.settings)
    with pytest.raises(OSError):
        partitions.where(pl.Series(["o-x"]))
    assert partitions.version == checked  # not marked read
    partitions.lake = lake
    assert read(lake, location, ["o-x"], partitions)["order_date"].to_list() == [DAYS[1]]


def test_a_table_not_partitioned_by_the_column_is_read_unpruned(tmp_path, settings):
    lake = Lake(settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"}))
    location = f"file://{tmp_path}/silver/orders"
    lake.upsert(location, pl.DataFrame({"order_id": ["o1", "o2"], "order_date": DAYS[:2]}), ["order_id"])
    partitions = OrderPartitions(lake, location, "order_date")

    assert partitions.where(pl.Series(["o1"])) is None
    assert lake.read(location, "order_id", pl.Series(["o1"]), partitions=None)["order_date"].to_list() == [DAYS[0]]


def test_a_write_to_days_its_orders_lie_in_adds_no_pair_and_many_writes_leave_the_pairs_in_few_pieces(details):
    lake, location = details
    partitions = OrderPartitions(lake, location, "order_date")
    partitions.where(pl.Series(["o0"]))
    held = partitions.pairs.height

    more = pl.DataFrame({"order_id": ["o1", "o2"], "product_id": [7, 7], "order_date": DAYS[1:3]})
    partitions.wrote(more, lake.upsert(location, more, ["order_id", "product_id"]))
    assert partitions.pairs.height == held

    for n in range(MOST_CHUNKS + 2):
        new = pl.DataFrame({"order_id": [f"n{n}"], "product_id": [1], "order_date": [DAYS[n % 30]]})
        partitions.wrote(new, lake.upsert(location, new, ["order_id", "product_id"]))
    assert partitions.pairs.height == held + MOST_CHUNKS + 2
    assert partitions.pairs.n_chunks() <= MOST_CHUNKS
    assert_frame_equal(read(lake, location, ["n0", "n65", "o1"], partitions), read(lake, location, ["n0", "n65", "o1"]))
