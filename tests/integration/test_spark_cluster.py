"""A cluster URL works unchanged: the batch job against a Spark standalone master and worker
(started here from pyspark's own `spark-class`), not local mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from tenacity import retry, stop_after_delay, wait_fixed

from batch import paths
from batch.session import lake_credentials
from batch.store import reads
from config import Settings
from config.settings import REPO_ROOT
from source import database, generate
from source.traffic import ChaosMix, Truth, plan
from stack.scratch import cdc_caught_up, scratch_lake
from tests.integration.faults.injection import free_port
from tests.integration.scratch_stream import scratch_stream

BIN = Path(sys.executable).parent


@retry(stop=stop_after_delay(90), wait=wait_fixed(1), reraise=True)
def cluster_state(ui_port: int, *, workers: int) -> dict:
    state = httpx.get(f"http://127.0.0.1:{ui_port}/json/", timeout=2).json()
    assert state["aliveworkers"] >= workers, state
    return state


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory, settings: Settings):
    """A master and one 2-core worker on loopback; yields (master URL, master web UI port). Its
    executors read the scratch lakes' keys (MinIO's root) from the worker's environment."""
    work = tmp_path_factory.mktemp("spark-cluster")
    port, ui_port = free_port(), free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "SPARK_LOG_DIR": str(work), "SPARK_WORKER_DIR": str(work), **lake_credentials(settings, "root")}
    spark_class = str(BIN / "spark-class")
    processes = [subprocess.Popen(argv, env=env, cwd=REPO_ROOT, start_new_session=True,
                                  stdout=(work / f"{name}.log").open("w"), stderr=subprocess.STDOUT)
                 for name, argv in (
                     ("master", [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                 "--port", str(port), "--webui-port", str(ui_port)]),
                     ("worker", [spark_class, "org.apache.spark.deploy.worker.Worker",
                                 f"spark://127.0.0.1:{port}", "--cores", "2", "--memory", "2g",
                                 "--webui-port", str(free_port()), "--work-dir", str(work)]))]
    try:
        cluster_state(ui_port, workers=1)
        yield f"spark://127.0.0.1:{port}", ui_port
    finally:
        for process in processes:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.lake_long
def test_the_batch_job_runs_on_a_standalone_cluster_by_its_url(settings: Settings, spark, spark_cluster):
    master, ui_port = spark_cluster
    name = f"t{uuid.uuid4().hex[:12]}"
    with scratch_lake(settings, name) as lake_settings, \
            scratch_stream(lake_settings, name, workers=0) as (scratch, _):
        connection = database.connect(scratch)
        generate.run(connection, plan(50, seed=3, customers=300, chaos=ChaosMix.off()), total_orders=50,
                     rate=0, truth=Truth(), progress=False)
        cdc_caught_up(scratch, connection)
        on_cluster = scratch.model_copy(update={"spark_master": master})

        job = subprocess.run([sys.executable, "-m", "batch"], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=600, env={**os.environ, **on_cluster.as_env()})

        assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
        assert "batch done in" in job.stderr
        apps = [app["name"] for app in cluster_state(ui_port, workers=1)["completedapps"]]
        assert "orderpipe-bronze-silver-gold" in apps  # the work ran on the cluster
        facts = reads.read(spark, paths.path(scratch, "gold", "fact_orders")).count()
        assert facts == database.count_rows(connection, "orders") == 50
        connection.close()
