from __future__ import annotations

from importlib.metadata import version

from batch.session import SPARK_PACKAGES, SUBMIT_PROPERTIES, lake_credentials, spark_conf
from config import Settings


def test_the_delta_jar_matches_the_delta_python_package():
    jar = next(package for package in SPARK_PACKAGES if package.startswith("io.delta:"))
    assert jar.rsplit(":", 1)[1] == version("delta-spark")


def test_spark_conf_comes_from_settings_and_lists_what_spark_submit_needs():
    settings = Settings(MINIO_ENDPOINT="minio.example:9000", MINIO_SECRET_KEY="s3cret", STACK_CACHE="/cache")
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio.example:9000"
    assert "s3cret" not in str(conf)  # PySpark puts every one of them on spark-submit's command line
    assert lake_credentials(settings)["AWS_SECRET_ACCESS_KEY"] == "s3cret"
    assert conf["spark.jars.ivy"] == "/cache/ivy2"
    assert conf["spark.jars.packages"].split(",") == list(SPARK_PACKAGES)
    assert set(SUBMIT_PROPERTIES) <= set(conf)
    assert "s3cret" not in " ".join(conf[name] for name in SUBMIT_PROPERTIES)
