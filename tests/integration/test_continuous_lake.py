"""`python -m batch --continuous` on the real stack: the fast lane (Kafka -> archive -> Silver ->
Gold's facts in each micro-batch, no JVM) and Spark's deferred work beside it. Every day: a
first start applies what is in the topics, the deferred work follows, and SIGINT stops it
cleanly, the lake holding only its own credentials. On its turn (`lake_long`): SIGKILLed in the middle of a micro-batch and started
again, it leaves every table exact, and every table as a one-shot Spark run of the same
change log builds it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid

import polars as pl
import pytest

from batch import flows, paths
from batch.fastlane.delta import Lake
from batch.names import archive_location
from batch.tools.lake_reader import LakeReader, expected_statuses
from config.settings import REPO_ROOT
from source import database
from stack.scratch import cdc_caught_up, scratch_lake
from stack.services import minio_client
from tests.integration.lake_progress import archive_version, in_flight, silver_mark
from tests.integration.scratch_stream import scratch_stream, write_orders
from tests.integration.secrets_seen import foreign, stack_secrets, without_secrets
from tests.integration.waiting import wait_for
from tests.unit.batch.lakes import assert_same_tables, comparable


def continuous_lake(settings, log_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "batch", "--continuous", "--every", "1s", "--deferred-every", "5s"],
                            cwd=REPO_ROOT,
                            env={**without_secrets(os.environ), **settings.as_env("lake")}, stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def test_a_continuous_lake_applies_the_topics_then_its_deferred_work_and_stops_on_sigint(settings, tmp_path):
    bucket = f"t{uuid.uuid4().hex[:12]}"
    log_path = tmp_path / "lake.log"
    minio = minio_client(settings, "root")
    with scratch_lake(settings, bucket) as lake_settings, \
            scratch_stream(lake_settings, bucket, workers=0) as (scratch, _):
        written = write_orders(scratch, 150, rate=0)
        expected = expected_statuses(written)
        job = continuous_lake(scratch, log_path)
        try:
            assert wait_for(lambda: silver_mark(minio, bucket) is not None or job.poll() is not None, 300), \
                log_path.read_text()[-3000:]
            applied = wait_for(lambda: job.poll() is not None or LakeReader(scratch).fact_statuses(set(expected))
                               == expected, 300, every_s=3)
            assert applied and job.poll() is None, log_path.read_text()[-3000:]
            # history, dimensions, products and marts follow on their own clock (--deferred-every)
            deferred = wait_for(lambda: job.poll() is not None or LakeReader(scratch).deferred_current(), 300, every_s=3)
            assert deferred and job.poll() is None, log_path.read_text()[-3000:]
            # the lake, its Spark JVM and its deferred work hold the lake's credentials and no others
            assert foreign(job.pid, "lake", stack_secrets(scratch)) == set()
            job.send_signal(signal.SIGINT)  # the micro-batch under way ends first
            assert job.wait(timeout=180) == 0, log_path.read_text()[-3000:]
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.pid, signal.SIGKILL)  # what is left of a job that failed: its JVM too
            job.wait()

        silver_orders = Lake(scratch, "root").read(paths.path(scratch, "silver", "orders"))
        connection = database.connect(scratch)
        assert (~silver_orders["is_deleted"]).sum() == database.count_rows(connection, "orders")
        assert silver_orders["is_deleted"].sum() == len(written["cancelled"])
        assert "Delta commits" in log_path.read_text() and "stopped" in log_path.read_text()


@pytest.mark.lake_long
def test_a_continuous_lake_killed_mid_batch_and_restarted_leaves_every_table_exact(settings, spark, tmp_path):
    bucket = f"t{uuid.uuid4().hex[:12]}"
    minio = minio_client(settings, "root")
    with scratch_lake(settings, bucket) as lake_settings, \
            scratch_stream(lake_settings, bucket, workers=0) as (scratch, _):
        first = write_orders(scratch, 150, rate=0)
        job = continuous_lake(scratch, tmp_path / "first.log")
        try:
            assert wait_for(lambda: silver_mark(minio, bucket) is not None or job.poll() is not None, 300), \
                (tmp_path / "first.log").read_text()[-3000:]
            applied = archive_version(minio, bucket)
            second = write_orders(scratch, 150, rate=0)
            # the next micro-batch, archived and still applying Silver and Gold (about a second): kill it there
            assert wait_for(lambda: (in_flight(minio, bucket) and archive_version(minio, bucket) > applied)
                            or job.poll() is not None, 120, every_s=0.02)
            assert job.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()

        connection = database.connect(scratch)
        cdc_caught_up(scratch, connection)
        expected = {**expected_statuses(first), **expected_statuses(second)}
        rerun = continuous_lake(scratch, tmp_path / "rerun.log")
        try:
            assert wait_for(lambda: LakeReader(scratch).fact_statuses(set(expected)) == expected, 300, every_s=3), \
                (tmp_path / "rerun.log").read_text()[-3000:]
            # history, dimensions, products and marts follow on their own clock (--deferred-every)
            assert wait_for(lambda: LakeReader(scratch).deferred_current(), 300, every_s=3), \
                (tmp_path / "rerun.log").read_text()[-3000:]
        finally:
            rerun.send_signal(signal.SIGINT)  # the micro-batch under way ends first
            assert rerun.wait(timeout=180) == 0, (tmp_path / "rerun.log").read_text()[-3000:]

        lake = Lake(scratch, "root")
        archived = lake.read(archive_location(scratch), columns=["topic", "partition", "offset"])
        assert archived.height == archived.unique().height
        silver_orders = lake.read(paths.path(scratch, "silver", "orders"))
        assert (~silver_orders["is_deleted"]).sum() == database.count_rows(connection, "orders")
        assert silver_orders["is_deleted"].sum() == len(first["cancelled"]) + len(second["cancelled"])
        facts = lake.read(paths.path(scratch, "gold", "fact_orders"))
        assert facts.height == facts["order_id"].n_unique() == len(expected)
        daily = lake.read(paths.path(scratch, "gold", "mart_daily_orders"))
        assert daily["cancelled"].sum() == sum(status == "cancelled" for status in expected.values())
        assert "Delta commits" in (tmp_path / "rerun.log").read_text()  # each micro-batch's line

        with scratch_lake(lake_settings, f"{bucket}-once") as once_lake:  # the same change log, one-shot
            one_shot = scratch.model_copy(update={"lake_uri": once_lake.lake_uri})
            for layer in flows.CHANGE_LOG:
                layer(spark, one_shot)
            assert_same_tables(derived_tables(scratch), derived_tables(one_shot))


def derived_tables(settings) -> dict[str, pl.DataFrame]:
    """The tables the change log derives, read through delta-rs in an order two lakes compare in."""
    lake = Lake(settings, "root")
    return {f"{layer}.{table}": comparable(lake.read(paths.path(settings, layer, table))) for layer, table in DERIVED}


DERIVED = [("silver", name) for name in ("orders", "order_details", "customers", "payment_method",
                                          "orders_history", "order_details_history", "orders_quarantine",
                                          "order_details_quarantine", "customers_quarantine",
                                          "payment_method_quarantine", "cdc_quarantine")] + \
          [("gold", name) for name in ("dim_customer", "dim_payment_method", "dim_product", "dim_date",
                                        "fact_orders", "fact_order_products", "mart_daily_orders",
                                        "mart_payment_mix", "mart_top_products", "mart_customer_segments")]
