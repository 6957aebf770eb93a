"""A new machine's first run, with the trap a new machine met: a `~/.m2` holding `lz4-java` 1.8.0's
pom without its jar (what the stack's own Maven leaves there once Kafka 3.9.1's and 3.9.2's jars
are both resolved), which made every Spark session fail when jars came through Ivy.

In a scratch HOME (the JVM's `user.home` too) and a scratch STACK_CACHE, the install's Java steps
run as `make stack` runs them (`python3 -m stack.install`, standard library only), then a Spark
session starts from what they installed and uses each jar: a Delta table written and read, S3A's
file system made, the MariaDB driver and Spark's Kafka source loaded. Maven reads Maven Central
through this machine's own local repository (a `file://` mirror), so the test costs seconds of
copying, not minutes of downloads; what only a cold machine shows (Central's downloads, MinIO's
build, apt) is measured by hand (docs/testing.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stack.install import SPARK_JARS_FOLDER, SPARK_JARS_LIST, Toolchain

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAP = Path("org/lz4/lz4-java/1.8.0")
MACHINE_REPOSITORY = Path.home() / ".m2" / "repository"

SESSION_USES_EVERY_JAR = """
import sys
from config import Settings
from batch.session import build_session

settings = Settings(STACK_CACHE=sys.argv[1], SPARK_MASTER="local[1]", MINIO_SECRET_KEY="unused")
spark = build_session(settings, "first-run")
table = "file://" + sys.argv[2]
spark.range(5).write.format("delta").save(table)
assert spark.read.format("delta").load(table).count() == 5
jvm = spark._jvm
s3a = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI("s3a://lake"), spark._jsc.hadoopConfiguration())
assert s3a.getClass().getName() == "org.apache.hadoop.fs.s3a.S3AFileSystem"
for name in ("org.mariadb.jdbc.Driver", "org.apache.spark.sql.kafka010.KafkaSourceProvider"):
    jvm.org.apache.spark.util.Utils.classForName(name, True, False)
print("session ok")
"""


def scratch_home(home: Path) -> None:
    """The trap planted, and Maven told to read Central through this machine's local repository."""
    (home / ".m2" / "repository" / TRAP).mkdir(parents=True)
    (home / ".m2" / "repository" / TRAP / "lz4-java-1.8.0.pom").write_text(
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>org.lz4</groupId><artifactId>lz4-java</artifactId><version>1.8.0</version></project>\n")
    (home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>this-machine</id><mirrorOf>*</mirrorOf>"
        f"<url>{MACHINE_REPOSITORY.as_uri()}</url></mirror></mirrors></settings>\n")


def test_a_fresh_home_with_the_lz4_trap_installs_and_starts_a_spark_session_from_the_installed_jars(tmp_path):
    home, cache = tmp_path / "home", tmp_path / "cache"
    scratch_home(home)
    env = {**os.environ, "HOME": str(home), "STACK_CACHE": str(cache),
           # The JVM takes user.home from the password database, not $HOME.
           "JAVA_TOOL_OPTIONS": f"-Duser.home={home}"}

    install = subprocess.run([sys.executable, "-m", "stack.install", "maven", "spark-jars"], cwd=REPO_ROOT,
                             env=env, capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    tools = Toolchain(cache)
    assert set(tools.missing()) <= {"apt", "minio"}  # the Java steps left nothing missing
    listed = (cache / SPARK_JARS_FOLDER / SPARK_JARS_LIST).read_text().splitlines()[1:]
    assert {"delta-spark_2.12-3.3.3.jar", "hadoop-aws-3.3.4.jar", "mariadb-java-client-2.7.12.jar"} <= set(listed)
    shipped = {jar.name for jar in (Path(sys.executable).parent.parent.glob("lib/python3*/site-packages/pyspark/jars/*.jar"))}
    assert shipped and not shipped & set(listed)  # pyspark's own jars stay its copy alone

    session = subprocess.run([sys.executable, "-c", SESSION_USES_EVERY_JAR, str(cache), str(tmp_path / "table")],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert session.returncode == 0, session.stdout + session.stderr[-4000:]
    assert "session ok" in session.stdout
    assert not (home / ".ivy2").exists() and not (cache / "ivy2").exists()  # nothing resolved by Ivy
    assert not (home / ".m2" / "repository" / TRAP / "lz4-java-1.8.0.jar").exists()  # the trap stayed set


def test_a_session_without_the_install_says_which_command_makes_it(tmp_path):
    result = subprocess.run([sys.executable, "-m", "batch.session"], cwd=REPO_ROOT, capture_output=True, text=True,
                            env={**os.environ, "STACK_CACHE": str(tmp_path)}, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Spark's jars are not installed (no jars.txt in {tmp_path / SPARK_JARS_FOLDER}): run `python -m stack install`"]
