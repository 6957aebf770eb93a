"""The raw CDC archive on the real stack: the archiver (Python, delta-rs) from Kafka into Delta
on MinIO, killed while it works and run again, holding every record exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from pyspark.sql import functions as F

from batch.names import CDC_TABLES, archive_location
from batch.store import reads
from cdc.topics import records_held
from config import Settings
from config.settings import REPO_ROOT
from stack.scratch import scratch_lake
from stack.services import minio_client
from tests.integration.lake_progress import archive_version
from tests.integration.scratch_stream import scratch_stream, write_orders


def archive(settings: Settings, *args: str, log_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "batch", "archive", *args], cwd=REPO_ROOT,
                            env={**os.environ, **settings.as_env()}, stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def held(settings: Settings) -> int:
    """Records the four CDC topics hold, once Debezium has stopped adding to them."""
    last, now = -1, 0
    while now != last:
        last = now
        time.sleep(2)
        now = sum(records_held(settings, settings.cdc_topic(table)) for table in CDC_TABLES)
    return now


@pytest.mark.lake_long
def test_a_killed_archive_job_reruns_and_holds_every_cdc_record_once(settings, spark, unique_name, tmp_path):
    bucket = f"t{uuid.uuid4().hex[:12]}"
    minio = minio_client(settings, "root")
    with scratch_lake(settings, bucket) as lake_settings, \
            scratch_stream(lake_settings, unique_name, workers=0) as (scratch, _):
        write_orders(scratch, 300, rate=0)
        job = archive(scratch, "--every", "0.2", "--max-records-per-batch", "400", log_path=tmp_path / "archive.log")
        deadline = time.monotonic() + 240
        while (archive_version(minio, bucket) or 0) < 2 and job.poll() is None:  # a few appends made
            assert time.monotonic() < deadline, "the archive committed nothing in 240 s"
            time.sleep(0.05)
        assert job.poll() is None, (tmp_path / "archive.log").read_text()[-3000:]
        os.killpg(job.pid, signal.SIGKILL)  # while it works through the topics, 400 records an append
        job.wait()

        write_orders(scratch, 50, rate=0)  # more arrive while the job is down
        expected = held(scratch)
        rerun = archive(scratch, "--once", log_path=tmp_path / "archive-once.log")
        assert rerun.wait(timeout=300) == 0, (tmp_path / "archive-once.log").read_text()[-3000:]

        rows = reads.read(spark, archive_location(scratch))
        per_topic = {row["topic"]: row for row in rows.groupBy("topic").agg(
            F.count("*").alias("records"), F.countDistinct("partition", "offset").alias("offsets"),
            F.count_if(F.col("op").isNull() & F.col("value").isNotNull()).alias("not_debezium")).collect()}
        assert sum(row["records"] for row in per_topic.values()) == expected
        for topic, row in per_topic.items():
            assert row["records"] == row["offsets"] == records_held(scratch, topic), topic
            assert row["not_debezium"] == 0
        assert set(per_topic) == {scratch.cdc_topic(table) for table in CDC_TABLES}
        orders = rows.filter(F.col("topic") == scratch.cdc_topic("orders")).filter("op = 'c'").first()
        assert orders["source_file"] and orders["source_pos"] > 0 and orders["source_ts"] is not None
        assert "records archived in" in (tmp_path / "archive-once.log").read_text()
