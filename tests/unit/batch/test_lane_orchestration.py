"""The fast lane's orchestration on a `file://` lake (no services, no JVM): who may hold the hot
tables, an archive that takes each record once, a recovery that ends where a clean run ends, and
facts resolved once the dimensions the deferred work builds hold their keys."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from batch.fastlane import lease as lease_module
from batch.fastlane.facts import RESOLVED_BY
from batch.fastlane.lane import FastLane, MicroBatch
from batch.fastlane.lease import Lease, LeaseHeld, Owner
from batch.paths import GOLD, SILVER, archive_location
from batch.rules import UNKNOWN
from tests.unit.batch.change_log import shop_change_log
from batch.paths import ARCHIVE_MARK
from tests.unit.batch.lakes import assert_same_tables, lake_settings, run_lane, tables


@pytest.fixture(scope="module")
def change_log(settings):
    return shop_change_log(settings)


def test_a_second_lane_is_refused_while_the_first_renews_its_lease(settings, tmp_path, monkeypatch):
    monkeypatch.setattr(lease_module, "LEASE_S", 0.5)
    local = lake_settings(settings, tmp_path)
    first, second = Lease(local), Lease(local)
    first.owner = Owner(pid=1, host="another-host")  # not this host's: its process cannot be looked up
    first.renew(applied={}, left=None)
    stop = threading.Event()

    def renewing() -> None:
        while not stop.wait(0.05):
            first.renew(applied={}, left=None)

    renewer = threading.Thread(target=renewing)
    renewer.start()
    try:
        with pytest.raises(LeaseHeld, match="another fast lane runs for this lake .pid 1 on another-host"):
            second.acquire(poll_s=0.1)
    finally:
        stop.set()
        renewer.join()

    second.acquire(poll_s=0.1)  # silent for longer than the lease: taken
    assert lease_module.read_state(local)["owner"]["pid"] == second.owner.pid


def test_a_lease_of_a_process_of_this_host_that_is_gone_is_taken_at_once(settings, tmp_path, monkeypatch):
    local = lake_settings(settings, tmp_path)
    killed = Lease(local)
    killed.owner = Owner(pid=2**22 + 1, host=killed.owner.host)  # above Linux's pid_max: no such process
    killed.renew(applied={"mysql.db.orders": {"0": 41}}, left=3)

    def waiting(seconds: float) -> None:
        raise AssertionError("waited for the lease of a process that is gone")

    monkeypatch.setattr(lease_module.time, "sleep", waiting)
    Lease(local).acquire()
    monkeypatch.undo()

    assert lease_module.read_state(local)["applied"] == {"mysql.db.orders": {"0": 41}}  # its progress kept


def test_the_same_records_applied_twice_are_archived_once_and_change_nothing(settings, change_log, tmp_path):
    local = lake_settings(settings, tmp_path)
    lane = FastLane(local)
    lane.check_tables()
    for records in change_log:
        lane.apply(records)
    once = tables(local)
    records = sum(len(batch) for batch in change_log)

    lane.apply([record for batch in change_log for record in batch])  # as after a restart that lost the offsets

    assert lane.lake.read(archive_location(local)).height == records
    assert_same_tables(tables(local), once)


def test_an_append_left_unapplied_then_recovered_ends_as_a_clean_run(settings, change_log, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    run_lane(lake_settings(settings, clean), change_log)
    stopped = FastLane(lake_settings(settings, killed))
    stopped.check_tables()
    run_lane(lake_settings(settings, killed), change_log[:1])
    stopped.append(change_log[1])  # archived, never applied: the lane stopped there

    started = FastLane(lake_settings(settings, killed))
    recovered = started.recover()
    mark = int(started.objects.read_marks(SILVER)[ARCHIVE_MARK])
    archive_version = started.lake.version(archive_location(started.settings))
    run_lane(lake_settings(settings, killed), change_log)  # reads on from the archive's offsets

    assert recovered is not None and recovered.records == len(change_log[1])
    assert mark == archive_version  # Silver's mark reached what the archive held
    assert started.recover() is None  # nothing left to recover
    assert_same_tables(tables(lake_settings(settings, killed)), tables(lake_settings(settings, clean)))


def test_facts_at_the_unknown_member_are_resolved_once_the_dimensions_hold_their_keys(settings, change_log, tmp_path):
    local = lake_settings(settings, tmp_path)
    run_lane(local, change_log)  # no dimension built yet: every key is the unknown member
    lane = FastLane(local)
    facts = lane.lake.read(lane.location(GOLD, "fact_orders"))
    keys = ["customer_key", "payment_method_key", "order_date_id"]
    assert facts.select((pl.col(name) == UNKNOWN).all() for name in keys).row(0) == (True, True, True)
    customers = sorted(facts["customer_id"].unique())
    methods = sorted(facts["payment_method_id"].unique())
    dates = sorted(facts["order_ts"].dt.strftime("%Y%m%d").cast(pl.Int32).unique())
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)
    built = {
        "dim_customer": pl.DataFrame({"customer_key": [UNKNOWN, *(100 + n for n in customers)],
                                      "customer_id": [UNKNOWN, *customers], "valid_from": [since] * (1 + len(customers)),
                                      "valid_to": [None] * (1 + len(customers))}),
        "dim_payment_method": pl.DataFrame({"payment_method_key": [UNKNOWN, *(200 + n for n in methods)],
                                            "payment_method_id": [UNKNOWN, *methods]}),
        "dim_date": pl.DataFrame({"date_id": [UNKNOWN, *dates]}),
    }
    for name, rows in built.items():
        lane.lake.upsert(lane.location(GOLD, name), rows.cast(RESOLVED_BY[name]), list(rows.columns[:1]))

    lane.resolve_unknown_keys(MicroBatch())

    resolved = lane.lake.read(lane.location(GOLD, "fact_orders")).sort("order_id")
    assert resolved.height == facts.height
    assert (resolved["customer_key"] == resolved["customer_id"] + 100).all()
    assert (resolved["payment_method_key"] == resolved["payment_method_id"] + 200).all()
    assert (resolved["order_date_id"] == resolved["order_ts"].dt.strftime("%Y%m%d").cast(pl.Int32)).all()
    untouched = [name for name in facts.columns if name not in keys]
    assert_frame_equal(resolved.select(untouched), facts.sort("order_id").select(untouched))
