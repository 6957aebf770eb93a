"""The fast lane's orchestration on a `file://` lake (no services, no JVM): who may hold the hot
tables, an archive that takes each record once, and a recovery that ends where a clean run ends."""

from __future__ import annotations

import threading

import pytest

from batch.fastlane import lease as lease_module
from batch.fastlane.lane import FastLane
from batch.fastlane.lease import Lease, LeaseHeld, Owner
from batch.paths import SILVER, archive_location
from tests.unit.batch.change_log import shop_change_log
from tests.unit.batch.test_lane_kills import ARCHIVE_MARK, assert_same_tables, lake_settings, run_lane, tables


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
