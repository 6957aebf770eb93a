"""`python -m batch --every` as a user leaves it running (the JDBC snapshot layer, whose source can be missing): a run that fails (its source is not
there yet) is logged, the loop goes on, and the next runs bring the source into the lake."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from batch import paths
from batch.store import reads
from config import Settings
from config.settings import REPO_ROOT
from source import database, generate
from source.traffic import ChaosMix, Truth, plan
from stack.scratch import scratch_lake
from tests.integration.waiting import wait_for

CUSTOMERS = 200
ORDERS = 50


def ended_runs(log: Path) -> dict[int, str]:
    """Run number -> 'ok' or 'failed', for every run the loop has logged the end of."""
    ended = {}
    for line in log.read_text().splitlines():
        if (match := re.search(r"run (\d+) (ok|failed)", line)) is not None:
            ended[int(match[1])] = match[2]
    return ended


@pytest.mark.lake_long
def test_every_logs_a_failed_run_and_the_next_runs_load_the_lake(
        spark: SparkSession, settings: Settings, unique_name: str, tmp_path: Path):
    log = tmp_path / "every.log"
    with scratch_lake(settings, unique_name) as lake_settings, \
            database.scratch_database(lake_settings, unique_name) as scratch, log.open("w") as output:
        loop = subprocess.Popen([sys.executable, "-m", "batch", "snapshot", "--every", "5s"], cwd=REPO_ROOT,
                                env={**os.environ, **scratch.as_env()},
                                stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # The scratch database has no tables yet: the first run cannot read the source.
            assert wait_for(lambda: 1 in ended_runs(log) or loop.poll() is not None, 300), log.read_text()[-3000:]
            assert ended_runs(log)[1] == "failed", log.read_text()[-3000:]
            assert loop.poll() is None, f"the loop exited after a failed run:\n{log.read_text()[-3000:]}"

            connection = database.connect(scratch)
            database.apply_schema(connection)
            database.load_reference(connection, CUSTOMERS, seed=1, progress=False)
            generate.run(connection, plan(ORDERS, seed=1, customers=CUSTOMERS, chaos=ChaosMix.off()),
                         total_orders=ORDERS, rate=0, truth=Truth(), progress=False)
            # The run under way may have started before the load ended; the one after it cannot.
            after_load = max(ended_runs(log)) + 2
            assert wait_for(lambda: after_load in ended_runs(log) or loop.poll() is not None, 300), \
                log.read_text()[-3000:]
            assert ended_runs(log)[after_load] == "ok", log.read_text()[-3000:]

            loop.send_signal(signal.SIGINT)
            assert loop.wait(timeout=120) == 0, log.read_text()[-3000:]
        finally:
            if loop.poll() is None:
                os.killpg(loop.pid, signal.SIGKILL)
                loop.wait()
        text = log.read_text()
        assert "the next run comes on schedule" in text and "next run in" in text
        assert "SIGINT: stopping" in text
        assert re.search(r"INFO stopped$", text, re.MULTILINE), text[-2000:]
        for table in ("orders", "customers"):
            landed = reads.read(spark, paths.path(scratch, "bronze", table)).count()
            assert landed == database.count_rows(connection, table)
        connection.close()
