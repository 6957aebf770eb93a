"""The files under the lake's folders, through the Spark driver's Hadoop filesystem (the same
S3 client and credentials the jobs write with)."""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def driver_jvm(spark: SparkSession) -> tuple[Any, Any]:
    """The driver's JVM (py4j's view of its packages) and its Hadoop configuration, through
    PySpark's private `_jvm` and `_jsc`: the one place the lake and its benchmarks use them
    (Hadoop's FileSystem and the JVM's management beans have no Python API;
    tests/unit/test_runtime_boundary.py keeps every other private name out)."""
    return spark._jvm, spark._jsc.hadoopConfiguration()


def _filesystem(spark: SparkSession, location: str):
    jvm, hadoop_configuration = driver_jvm(spark)
    hadoop_path = jvm.org.apache.hadoop.fs.Path(location)
    return hadoop_path, hadoop_path.getFileSystem(hadoop_configuration)


def drop(spark: SparkSession, location: str) -> None:
    """Delete a table's folder, data and log (for derived tables being rebuilt)."""
    hadoop_path, fs = _filesystem(spark, location)
    fs.delete(hadoop_path, True)


def listed_names(spark: SparkSession, location: str) -> list[str]:
    """The names in a folder; empty if it does not exist."""
    hadoop_path, fs = _filesystem(spark, location)
    if not fs.exists(hadoop_path):
        return []
    return [status.getPath().getName() for status in fs.listStatus(hadoop_path)]


def subfolders(spark: SparkSession, location: str) -> list[str]:
    """The folders in a folder (full locations); empty if it does not exist."""
    hadoop_path, fs = _filesystem(spark, location)
    if not fs.exists(hadoop_path):
        return []
    return [status.getPath().toString() for status in fs.listStatus(hadoop_path) if status.isDirectory()]


def read_text(spark: SparkSession, location: str) -> str | None:
    """A file's text, None when it does not exist."""
    hadoop_path, fs = _filesystem(spark, location)
    if not fs.exists(hadoop_path):
        return None
    stream = fs.open(hadoop_path)
    try:
        return driver_jvm(spark)[0].org.apache.commons.io.IOUtils.toString(stream, "UTF-8")
    finally:
        stream.close()


def write_bytes(spark: SparkSession, location: str, content: bytes) -> None:
    """Write (or replace) a file; on S3 the object appears whole when the stream closes."""
    hadoop_path, fs = _filesystem(spark, location)
    stream = fs.create(hadoop_path, True)
    try:
        stream.write(bytearray(content))
    finally:
        stream.close()


def stored_files(spark: SparkSession, location: str) -> int:
    """Parquet files under a table's folder, referenced by its current version or not."""
    hadoop_path, fs = _filesystem(spark, location)
    listing, count = fs.listFiles(hadoop_path, True), 0
    while listing.hasNext():
        count += listing.next().getPath().getName().endswith(".parquet")
    return count
