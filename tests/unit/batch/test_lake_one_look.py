"""The fast lane's `Lake` looking at each table's log once in a micro-batch (`Lake.one_look`),
on a `file://` lake (no services)."""

from __future__ import annotations

import polars as pl
import pytest

from batch.fastlane.delta import Lake


@pytest.fixture
def orders(tmp_path, settings) -> tuple[Lake, str]:
    lake = Lake(settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"}))
    location = f"file://{tmp_path}/silver/orders"
    lake.upsert(location, pl.DataFrame({"order_id": ["o1"], "amount": [1]}), ["order_id"])
    return lake, location


def ids(lake: Lake, location: str) -> list[str]:
    return sorted(lake.read(location)["order_id"])


def test_within_one_look_another_writer_s_commit_is_seen_only_after_it(orders):
    lake, location = orders
    other = Lake(lake.settings)

    with lake.one_look():
        looked = lake.version(location)
        other.upsert(location, pl.DataFrame({"order_id": ["o2"], "amount": [2]}), ["order_id"])
        assert lake.version(location) == looked
        assert ids(lake, location) == ["o1"]

    assert lake.version(location) == looked + 1
    assert ids(lake, location) == ["o1", "o2"]


def test_within_one_look_the_lake_s_own_commits_are_seen_as_they_land(orders):
    lake, location = orders

    with lake.one_look():
        looked = lake.version(location)
        written = lake.upsert(location, pl.DataFrame({"order_id": ["o1"], "amount": [10]}), ["order_id"])
        assert written.version == lake.version(location) == looked + 1
        assert lake.read(location)["amount"].to_list() == [10]


def test_a_read_pinned_to_an_older_version_leaves_the_next_use_at_the_newest(orders):
    lake, location = orders
    first = lake.version(location)
    lake.upsert(location, pl.DataFrame({"order_id": ["o2"], "amount": [2]}), ["order_id"])

    with lake.one_look():
        newest = lake.version(location)
        assert sorted(lake.read(location, version=first)["order_id"]) == ["o1"]
        assert lake.version(location) == newest == first + 1
        assert ids(lake, location) == ["o1", "o2"]
