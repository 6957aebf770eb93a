"""The one SparkSession factory: master, S3A for MinIO, Delta Lake, the pinned JDBC driver.

Jars come from the folder `python -m stack install` fills through Maven with the versions pinned in
stack/spark-jars.xml (`Settings.spark_jars_dir`, listed in its `jars.txt`), as `spark.jars`: a session
resolves nothing, reads no Ivy cache and needs no network at its start, and `spark-submit` gets the
same list (`python -m batch.session`). A cluster's executors fetch them from the driver.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyspark.sql import SparkSession

from config import Settings
from config.settings import MinioRole, NotInstalled

JDBC_DRIVER = "org.mariadb.jdbc.Driver"
JARS_LIST = "jars.txt"


def spark_jars(settings: Settings) -> list[Path]:
    """The installed jars, in their list's order; NotInstalled naming the install if any is absent."""
    folder = settings.spark_jars_dir
    listing = folder / JARS_LIST
    names = [line for line in listing.read_text().splitlines() if line and not line.startswith("#")] \
        if listing.is_file() else []
    absent = [name for name in names if not (folder / name).is_file()]
    if not names or absent:
        what = f"{', '.join(absent)} missing from {folder}" if absent else f"no {JARS_LIST} in {folder}"
        raise NotInstalled(f"Spark's jars are not installed ({what}): run `python -m stack install`")
    return [folder / name for name in names]


def spark_conf(settings: Settings) -> dict[str, str]:
    """Every Spark setting the product relies on, from the settings object. No secret: PySpark
    hands these to spark-submit as arguments, which any local user can read in the process list."""
    return {
        "spark.jars": ",".join(str(jar) for jar in spark_jars(settings)),
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


def build_session(settings: Settings, app_name: str, lake_role: MinioRole = "writer") -> SparkSession:
    """The session; `lake_role` "reader" for a job that only reads the lake. In a process that
    has a session already, that one."""
    builder = SparkSession.builder.master(settings.spark_master).appName(app_name)
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    with environment(lake_credentials(settings, lake_role)):
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("WARN")
    return session


SUBMIT_PROPERTIES = ("spark.jars", "spark.driver.memory",
                     "spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")

if __name__ == "__main__":
    # `python -m batch.session > spark-submit.conf`: what spark-submit must know before the
    # job's own code runs (jars, JVM options); the job sets the rest from the settings.
    from config import settings
    from config.cli import run

    def submit_properties() -> None:
        """Print spark-submit's properties file: `python -m batch.session > spark-submit.conf`."""
        conf = spark_conf(settings)
        print("\n".join(f"{name} {conf[name]}" for name in SUBMIT_PROPERTIES))

    run(submit_properties, prog_name="python -m batch.session")
