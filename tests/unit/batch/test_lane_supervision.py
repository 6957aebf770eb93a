"""A fast lane that fails starts again in its process after a backoff, a crash loop is one line,
and the doctor reads the lane's lease: not running, crash-looping or trailing is a problem."""

from __future__ import annotations

import logging

import pytest

from batch.clocks import CRASH_LOOP_WINDOW_S, LEASE_S, RESTART_LONGEST_WAIT_S, TRAILING_AFTER_S
from batch.fastlane import run
from batch.fastlane.lease import Lease, read_state
from batch.fastlane.run import Restarts, supervise
from stack.doctor import fast_lane_check

NOW = 1_800_000_000.0


def test_each_failure_soon_after_another_doubles_the_wait_and_the_third_is_a_crash_loop():
    restarts = Restarts()
    waits = [restarts.failed(NOW + n, f"boom {n}") for n in range(3)]
    assert waits == [1.0, 2.0, 4.0]
    assert restarts.looping(NOW + 3)
    assert restarts.line(NOW + 3, 4.0).startswith("fast lane crash-looping: 3 failures in 3 s, the last: boom 2;")
    assert all(restarts.failed(NOW + 10 + n, "again") <= RESTART_LONGEST_WAIT_S for n in range(10))


def test_failures_long_apart_are_no_loop_and_wait_the_shortest():
    restarts = Restarts()
    for n in range(5):
        wait = restarts.failed(NOW + n * (CRASH_LOOP_WINDOW_S + 1), "once in a while")
        assert wait == 1.0 and not restarts.looping(NOW + n * (CRASH_LOOP_WINDOW_S + 1))
    assert restarts.line(NOW, 1.0).startswith("fast lane failed: once in a while;")


def test_a_lane_that_fails_is_started_again_as_a_new_lane_and_its_lease_tells_the_doctor(
        settings, tmp_path, monkeypatch, caplog):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    lanes, doctor_saw = [], []

    def run_once(runner, deferred_every_s):
        """The lane's start as Runner.run makes it (tables checked, lease taken), then a failure
        twice, then a clean stop: Kafka's loop is not what this test is about."""
        lanes.append(runner.lane)
        runner.lane.check_tables()
        runner.lease.acquire()
        if len(lanes) <= 2:
            raise RuntimeError(f"failure {len(lanes)}")
        doctor_saw.append(fast_lane_check(read_state(local), runner.lease.state["heartbeat"]))
        runner.lease.release()

    monkeypatch.setattr(run.Runner, "run", run_once)
    monkeypatch.setattr(run, "RESTART_FIRST_WAIT_S", 0.05)
    with caplog.at_level(logging.ERROR, logger="batch"):
        supervise(local, linger_s=0.1, deferred_every_s=None)

    assert len(lanes) == 3 and len({id(lane) for lane in lanes}) == 3  # a new lane at each start
    assert [r.message for r in caplog.records if r.message.startswith("fast lane failed:")] == [
        "fast lane failed: RuntimeError: failure 1; the lake keeps its last good version; starting again in 0 s",
        "fast lane failed: RuntimeError: failure 2; the lake keeps its last good version; starting again in 0 s"]
    assert doctor_saw[0].ok and "recovered from 2 failure(s)" in doctor_saw[0].detail


def running(**extra) -> dict:
    return {"owner": {"pid": 7, "host": "here"}, "heartbeat": NOW - 2, "applied": {}, "left": 0,
            "caught_up_at": NOW - 2, "failures": [], **extra}


@pytest.mark.parametrize(("state", "ok", "says"), [
    (None, True, "not started"),
    (running(), True, "running (pid 7 on here)"),
    (running(left=500, caught_up_at=NOW - 10), True, "500 records behind"),
    (running(left=500, caught_up_at=NOW - TRAILING_AFTER_S - 5), False, "trailing, 500 records behind"),
    (running(released=True, heartbeat=NOW - 300), False, "stopped 5 min ago"),
    (running(heartbeat=NOW - LEASE_S - 1), False, "without stopping"),
    (running(released=True, restart_at=NOW + 4, failures=[{"at": NOW - 1, "cause": "OSError: disk full"}]), False,
     "failed, starts again in 4 s; the last 1 s ago: OSError: disk full"),
    (running(released=True, restart_at=NOW - LEASE_S - 1, failures=[{"at": NOW - LEASE_S - 2, "cause": "x"}]), False,
     "stopped"),  # killed while it waited to start again
    (running(released=True, crash_loop=True, restart_at=NOW + 30,
             failures=[{"at": NOW - n, "cause": "ValueError: bad"} for n in (30, 20, 10)]), False,
     "crash-looping: 3 failures in 5 min, the last 10 s ago: ValueError: bad"),
])
def test_the_doctor_calls_a_lane_that_is_not_running_crash_loops_or_trails_a_problem(state, ok, says):
    check = fast_lane_check(state, NOW)
    assert (check.ok, says in check.detail) == (ok, True), check.detail
    assert check.ok or check.fix


def test_a_lane_whose_reads_come_back_short_counts_as_caught_up_though_records_keep_arriving(settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    lease = Lease(local)
    lease.caught_up_at = 0.0
    lease.renew(applied={}, left=120)  # a full read: more may be waiting
    assert read_state(local)["caught_up_at"] == 0.0
    lease.renew(applied={}, left=120, caught_up=True)  # a short read: it took all there was
    assert read_state(local)["caught_up_at"] > 0.0


def test_the_deferred_work_inherits_where_its_tools_and_cluster_settings_are_but_only_the_lake_s_secrets(settings):
    from config.settings import PROCESS_CREDENTIALS, SECRET_VARIABLES

    lane = {"PATH": "/opt/java/bin:/usr/bin", "JAVA_HOME": "/opt/java", "SPARK_CONF_DIR": "/run/orderpipe/spark-conf",
            "_SPARK_AUTH_SECRET": "cluster", "KAFKA_TOOLS_PASSWORD": "tools", "AWS_SECRET_ACCESS_KEY": "aws",
            "REDIS_URL": "redis://guard:pw@127.0.0.1:6379/2"}

    env = run.deferred_env(settings, lane)

    assert {name: env[name] for name in ("PATH", "JAVA_HOME", "SPARK_CONF_DIR")} == {
        name: lane[name] for name in ("PATH", "JAVA_HOME", "SPARK_CONF_DIR")}
    assert {"_SPARK_AUTH_SECRET", "KAFKA_TOOLS_PASSWORD", "AWS_SECRET_ACCESS_KEY", "REDIS_URL"}.isdisjoint(env)
    assert set(env) & SECRET_VARIABLES <= PROCESS_CREDENTIALS["lake"]
    assert env["READ_STACK_SECRETS"] == "false"
