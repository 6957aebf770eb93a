"""The one SparkSession factory: master, S3A for MinIO, Delta Lake, the pinned JDBC driver.

Jars come through `spark.jars.packages` (resolved from Maven Central once, then from the
Ivy cache under STACK_CACHE), so `python -m batch...` and `spark-submit` behave the same.
Sessions start one at a time on a machine: two JVMs resolving into an empty Ivy cache at
once (the demo's lake beside its report, a benchmark beside its lake) truncate each
other's downloads and both fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock
from pyspark.sql import SparkSession

from config import Settings
from config.settings import MinioRole

# hadoop-aws must match the Hadoop that pyspark 3.5 ships (3.3.4), with its SDK bundle.
# MariaDB's 2.7 driver: Connector/J 9 fails against MariaDB 10.11 (transaction_isolation).
SPARK_PACKAGES = (
    "org.apache.hadoop:hadoop-aws:3.3.4",
    "com.amazonaws:aws-java-sdk-bundle:1.12.262",
    "org.mariadb.jdbc:mariadb-java-client:2.7.12",
    "io.delta:delta-spark_2.12:3.3.3",  # same version as the delta-spark wheel
    # Spark's Kafka source, for Bronze's drain of the CDC topics; 3.5.7 is the newest 3.5 on
    # Maven Central here, and any 3.5 connector runs on any 3.5 Spark (pyspark is pinned to 3.5.x).
    "org.apache.spark:spark-sql-kafka-0-10_2.12:3.5.7",
)
JDBC_DRIVER = "org.mariadb.jdbc.Driver"


def ivy_home(settings: Settings) -> Path:
    return settings.stack_cache / "ivy2"


def spark_conf(settings: Settings, extra_packages: tuple[str, ...] = ()) -> dict[str, str]:
    """Every Spark setting the product relies on, from the settings object. No secret: PySpark
    hands these to spark-submit as arguments, which any local user can read in the process list."""
    return {
        "spark.jars.packages": ",".join((*SPARK_PACKAGES, *extra_packages)),
        "spark.jars.ivy": str(ivy_home(settings)),
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.sql.session.timeZone": "UTC",
        # JDBC's DATETIME -> timestamp goes through the JVM's zone: keep it UTC like MySQL's.
        "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
        "spark.sql.shuffle.partitions": "8",
        # The lake's queries are many and small (thousands of rows): compiling each plan to
        # Java (about 650 classes a run, ~19 ms each, and the JIT's work on them) costs more
        # than interpreting it (docs/benchmarks.md has the measurement).
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        # Every lake table keeps a change feed: the next layer reads only what changed.
        "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "true",
        # An upsert's source is already computed once (checkpointed) and deterministic, so MERGE
        # need not materialize it again: that copy cost several jobs per MERGE, and when the
        # cache evicted it, Delta re-ran the whole MERGE (docs/benchmarks.md).
        "spark.databricks.delta.merge.materializeSource": "none",
        # Rebuilding a table's state from its log runs 50 tasks per read by default; the logs
        # here are small (a checkpoint every 10 commits), and task start-up would dominate.
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.hadoop.fs.s3a.endpoint": f"http://{settings.minio_endpoint}",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        # The lake's keys come from the JVM's environment (`lake_credentials`), never its arguments.
        "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    }


def lake_credentials(settings: Settings, role: MinioRole = "writer") -> dict[str, str]:
    """The environment a Spark JVM (driver, or a cluster's workers) reads the lake's keys from:
    `role`'s. A `spark-submit` of a job needs them exported too."""
    access_key, secret_key = settings.minio_login(role)
    return {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ while the block runs (PySpark starts its JVM with os.environ)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def jdbc_options(settings: Settings, table: str) -> dict[str, str]:
    """Options for `spark.read.format("jdbc")` against the source database, as its reader."""
    user, password = settings.mysql_login("reader")
    return {
        "url": settings.mysql_jdbc_url,
        "driver": JDBC_DRIVER,
        "dbtable": table,
        "user": user,
        "password": password,
        "fetchsize": "10000",
    }


def build_session(settings: Settings, app_name: str, extra_packages: tuple[str, ...] = (),
                  lake_role: MinioRole = "writer") -> SparkSession:
    """The session; `extra_packages` (Maven coordinates) for a job that needs more jars (the
    CDC archive's Kafka source); `lake_role` "reader" for a job that only reads the lake. In a
    process that has a session already, that one."""
    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in spark_conf(settings, extra_packages).items():
        builder = builder.config(key, value)
    ivy_home(settings).mkdir(parents=True, exist_ok=True)
    with FileLock(ivy_home(settings) / "resolving.lock"), environment(lake_credentials(settings, lake_role)):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


SUBMIT_PROPERTIES = ("spark.jars.packages", "spark.jars.ivy", "spark.driver.memory",
                     "spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")

if __name__ == "__main__":
    # `python -m batch.session > spark-submit.conf`: what spark-submit must know before the
    # job's own code runs (jars, JVM options); the job sets the rest from the settings.
    from config import settings

    conf = spark_conf(settings)
    print("\n".join(f"{name} {conf[name]}" for name in SUBMIT_PROPERTIES))
