from __future__ import annotations

from importlib.metadata import version

import pytest

from batch.session import SUBMIT_PROPERTIES, lake_credentials, spark_conf, spark_jars
from config import Settings
from config.settings import NotInstalled
from stack.install import SPARK_JARS_FOLDER, SPARK_JARS_LIST, SPARK_POM, pom_property


def test_the_delta_jar_matches_the_delta_python_package():
    assert pom_property("delta.version", SPARK_POM) == version("delta-spark")


def installed(cache, names=("delta-spark_2.12-3.3.3.jar", "hadoop-aws-3.3.4.jar")) -> Settings:
    folder = cache / SPARK_JARS_FOLDER
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_bytes(b"PK")
    (folder / SPARK_JARS_LIST).write_text("\n".join(("# spark-jars.xml sha256 0", *names)) + "\n")
    return Settings(MINIO_ENDPOINT="minio.example:9000", MINIO_SECRET_KEY="s3cret", STACK_CACHE=str(cache))


def test_spark_conf_comes_from_settings_and_lists_what_spark_submit_needs(tmp_path):
    settings = installed(tmp_path)
    assert settings.spark_jars_dir == tmp_path / SPARK_JARS_FOLDER  # where stack.install puts them
    conf = spark_conf(settings)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://minio.example:9000"
    assert "s3cret" not in str(conf)  # PySpark puts every one of them on spark-submit's command line
    assert lake_credentials(settings)["AWS_SECRET_ACCESS_KEY"] == "s3cret"
    assert conf["spark.jars"].split(",") == [str(tmp_path / SPARK_JARS_FOLDER / name)
                                             for name in ("delta-spark_2.12-3.3.3.jar", "hadoop-aws-3.3.4.jar")]
    assert not any(name.startswith("spark.jars.") for name in conf)  # nothing resolved at a session's start
    assert set(SUBMIT_PROPERTIES) <= set(conf)
    assert "s3cret" not in " ".join(conf[name] for name in SUBMIT_PROPERTIES)


def test_a_missing_install_names_the_command_that_makes_it(tmp_path):
    with pytest.raises(NotInstalled, match=r"no jars.txt in .*: run `python -m stack install`"):
        spark_jars(Settings(STACK_CACHE=str(tmp_path)))


def test_a_listed_jar_that_is_gone_is_named(tmp_path):
    settings = installed(tmp_path)
    (settings.spark_jars_dir / "hadoop-aws-3.3.4.jar").unlink()
    with pytest.raises(NotInstalled, match=r"hadoop-aws-3.3.4.jar missing from .*: run `python -m stack install`"):
        spark_conf(settings)
