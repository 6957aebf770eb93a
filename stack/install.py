"""Install what the stack runs, once per machine; a second `up` finds it all in the cache.

- MariaDB and Redis: Debian's `mariadb-server` and `redis-server` (apt-get); Chromium
  (`chromium`, with a font for readable screenshots) for the dashboard's browser test.
- Kafka broker + Connect jars and the Debezium plugins: Maven Central, through the pinned
  `stack/pom.xml` (versions live there and only there).
- The lake's Spark jars (S3A, the AWS SDK, Delta Lake, the MariaDB JDBC driver, Spark's Kafka
  source): Maven Central, through the pinned `stack/spark-jars.xml`, listed in `jars.txt` beside
  them once all are there (`batch/session.py` reads that list; Spark resolves nothing at run time).
- MinIO: `go install` at a pinned module version (MinIO's community edition ships as source).
- Prometheus and promtool, only for `up --with prometheus`: Debian's `prometheus` (apt-get).

Stdlib only: `python3 -m stack.install` runs before the project's virtualenv exists, so the
Makefile starts the long steps beside pip's install.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

log = logging.getLogger("stack")

POM = Path(__file__).with_name("pom.xml")
SPARK_POM = Path(__file__).with_name("spark-jars.xml")
# The folder and the list batch/session.py reads (config.Settings.spark_jars_dir names the same).
SPARK_JARS_FOLDER = "spark-jars"
SPARK_JARS_LIST = "jars.txt"
APT_PACKAGES = ("mariadb-server", "redis-server", "chromium", "fonts-dejavu-core")
APT_PROGRAMS = ("mariadbd", "mariadb-install-db", "redis-server", "chromium")
# MinIO publishes RELEASE.* tags, which the Go proxy serves only as pseudo-versions.
MINIO_MODULE = "github.com/minio/minio"
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# Optional services (`up --with NAME`): the Debian packages and the programs they bring.
OPTIONAL_APT = {"prometheus": (("prometheus",), ("prometheus", "promtool"))}
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
# What `missing()` names: Debian's packages, Kafka's jars and Debezium's plugins, MinIO, Spark's jars.
PARTS = ("apt", "maven", "minio", "spark-jars")


class InstallError(RuntimeError):
    """An install step failed; the message names the command and how to fix it."""


class ExtraUnavailable(InstallError):
    """An optional service asked for (`--with`) is not installed and cannot be installed here."""


def which(program: str) -> str | None:
    """`shutil.which` that also looks in sbin folders (not on PATH for every user)."""
    return shutil.which(program) or shutil.which(program, path=os.pathsep.join(SBIN_DIRS))


def pom_property(name: str, pom: Path = POM) -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find(f"m:properties/m:{name}", ns)
    if node is None or not node.text:
        raise KeyError(f"property {name} missing from {pom}")
    return node.text.strip()


@dataclass(frozen=True)
class Toolchain:
    """Where every installed piece lives, under the stack cache."""

    cache: Path

    @cached_property
    def kafka_version(self) -> str:
        return pom_property("kafka.version")

    @cached_property
    def debezium_version(self) -> str:
        return pom_property("debezium.version")

    @property
    def kafka_libs(self) -> Path:
        return self.cache / f"kafka-{self.kafka_version}" / "libs"

    @property
    def connect_plugins(self) -> Path:
        return self.cache / f"debezium-{self.debezium_version}" / "plugins"

    @property
    def minio_bin(self) -> Path:
        return self.cache / f"minio-{MINIO_VERSION}" / "minio"

    @property
    def spark_jars(self) -> Path:
        return self.cache / SPARK_JARS_FOLDER

    @property
    def java_classpath(self) -> str:
        return f"{self.kafka_libs}/*"

    def spark_jars_installed(self) -> bool:
        """The list is written last, headed by the pom's digest: a set from another pom is stale."""
        listing = self.spark_jars / SPARK_JARS_LIST
        if not listing.is_file():
            return False
        header, *names = listing.read_text().splitlines() or [""]
        return header == _spark_list_header() and bool(names) and all((self.spark_jars / n).is_file() for n in names)

    def missing(self) -> list[str]:
        """Names of the pieces not installed yet."""
        absent = []
        if not all(which(p) for p in APT_PROGRAMS):
            absent.append("apt")
        kafka_jar = self.kafka_libs / f"kafka_2.13-{self.kafka_version}.jar"
        plugins = [self.connect_plugins / f"debezium-connector-{db}" for db in ("mariadb", "mysql")]
        rest_login = self.kafka_libs.glob("connect-basic-auth-extension-*.jar")
        if not kafka_jar.exists() or not all(p.is_dir() for p in plugins) or next(rest_login, None) is None:
            absent.append("maven")
        if not self.minio_bin.exists():
            absent.append("minio")
        if not self.spark_jars_installed():
            absent.append("spark-jars")
        return absent

    def install(self, extras: tuple[str, ...] = (), parts: tuple[str, ...] = PARTS) -> None:
        """What is missing of `parts` (default every one), then the optional services `extras`;
        one install at a time per cache (`make stack`'s beside a test's, say)."""
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.cache / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._install(extras, parts)

    def _install(self, extras: tuple[str, ...], parts: tuple[str, ...]) -> None:
        missing = [name for name in self.missing() if name in parts]
        # apt, Maven and MinIO's build share nothing: side by side, the longest one sets the time.
        # Maven's two poms go one after the other: Maven does not lock its local repository.
        steps = []
        if "apt" in missing:
            steps.append(lambda: self._apt(APT_PACKAGES))
        if {"maven", "spark-jars"} & set(missing):
            steps.append(lambda: self._install_jars(missing))
        if "minio" in missing:
            steps.append(self._install_minio)
        with ThreadPoolExecutor(max_workers=len(steps) or 1) as pool:
            for done in [pool.submit(step) for step in steps]:
                done.result()
        for extra in extras:
            packages, programs = OPTIONAL_APT[extra]
            if not all(which(program) for program in programs):
                self._apt(packages, extra=True)

    def _apt(self, packages: tuple[str, ...], extra: bool = False) -> None:
        sudo: list[str] = []
        if os.geteuid() != 0:
            if not which("sudo"):
                raise (ExtraUnavailable if extra else InstallError)(f"{', '.join(packages)} missing and this is not root: run "
                                   f"`sudo apt-get install -y {' '.join(packages)}`")
            sudo = ["sudo"]
        log.info("installing %s with apt-get (once per machine)", ", ".join(packages))
        # The packages' own services may not start here (policy-rc.d); the stack runs its own.
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run([*sudo, "apt-get", "update", "-q"], env=env)
        _run([*sudo, "apt-get", "install", "-y", "-q", *(("--no-install-recommends",) if extra else ()), *packages],
             env=env)

    def _install_jars(self, missing: list[str]) -> None:
        mvn = which("mvn")
        if mvn is None:
            raise InstallError("Maven (`mvn`) is not installed: `apt-get install maven`")
        if "maven" in missing:
            log.info("fetching Kafka %s and Debezium %s from Maven Central (once per machine)",
                     self.kafka_version, self.debezium_version)
            _run([mvn, "-q", "-B", "-f", str(POM), f"-Dstack.cache={self.cache}",
                  "dependency:copy-dependencies@kafka-libs", "dependency:unpack@debezium-plugins"])
        if "spark-jars" in missing:
            log.info("fetching the lake's Spark jars from Maven Central into %s (once per machine)", self.spark_jars)
            shutil.rmtree(self.spark_jars, ignore_errors=True)  # no jar of an older set stays beside the new
            _run([mvn, "-q", "-B", "-f", str(SPARK_POM), f"-Dstack.cache={self.cache}",
                  "dependency:copy-dependencies@spark-jars"])
            names = sorted(path.name for path in self.spark_jars.glob("*.jar"))
            listing = self.spark_jars / SPARK_JARS_LIST
            listing.with_suffix(".tmp").write_text("\n".join((_spark_list_header(), *names)) + "\n")
            listing.with_suffix(".tmp").replace(listing)  # whole or absent: the proof the set is complete

    def _install_minio(self) -> None:
        go = which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
        if go is None:
            raise InstallError("Go is not installed; MinIO is built with `go install`")
        log.info("building MinIO %s with go install (once per machine, a few minutes)", MINIO_VERSION)
        target = self.minio_bin.parent
        target.mkdir(parents=True, exist_ok=True)
        # No debug information: a fifth less CPU on a first run's busiest step, a quarter smaller
        # binary; panics still print their stack traces.
        _run([go, "install", "-ldflags=-s -w", "-gcflags=all=-dwarf=false", f"{MINIO_MODULE}@{MINIO_VERSION}"],
             env={**os.environ, "GOBIN": str(target), "GOFLAGS": "-trimpath"})


def _spark_list_header() -> str:
    return f"# {SPARK_POM.name} sha256 {hashlib.sha256(SPARK_POM.read_bytes()).hexdigest()}"


def _run(command: list[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise InstallError(f"`{' '.join(command)}` failed (exit {result.returncode}):\n{tail}")


def default_cache() -> Path:
    """STACK_CACHE as config.Settings reads it, for the run before the virtualenv exists."""
    return Path(os.environ.get("STACK_CACHE", Path.home() / ".cache" / "orderpipe")).expanduser().absolute()


def chosen_parts(argv: list[str]) -> tuple[str, ...]:
    """`python3 -m stack.install [PART ...]`'s parts (every one when none is named); exit 2 naming
    the parts on an unknown one."""
    parser = argparse.ArgumentParser(prog="python3 -m stack.install", description=(
        "What the stack and the lake's Spark jobs run, installed under STACK_CACHE with nothing but the "
        "standard library (before the project's virtualenv exists); `python -m stack install` is the same."))
    parser.add_argument("parts", nargs="*", metavar="PART", help=f"only these ({', '.join(PARTS)}); default every one")
    parts = tuple(parser.parse_args(argv).parts)
    if unknown := [part for part in parts if part not in PARTS]:
        parser.error(f"unknown part {', '.join(unknown)}: choose from {', '.join(PARTS)}")
    return parts or PARTS


if __name__ == "__main__":
    chosen = chosen_parts(sys.argv[1:])
    logging.basicConfig(level=logging.INFO, format="%(asctime)s stack  %(message)s", datefmt="%H:%M:%S")
    try:
        Toolchain(default_cache()).install(parts=chosen)
    except InstallError as error:
        raise SystemExit(f"stack install failed: {error}") from None
