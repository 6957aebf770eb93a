"""What `python -m stack install` counts as installed: the Spark jars' list is the proof, and a
list made from another version of stack/spark-jars.xml is stale."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stack import install
from stack.install import SPARK_JARS_LIST, Toolchain


def lay_spark_jars(tools: Toolchain, header: str, names=("delta-spark_2.12-3.3.3.jar",)) -> None:
    tools.spark_jars.mkdir(parents=True)
    for name in names:
        (tools.spark_jars / name).write_bytes(b"PK")
    (tools.spark_jars / SPARK_JARS_LIST).write_text("\n".join((header, *names)) + "\n")


def test_spark_jars_listed_under_the_current_pom_are_installed(tmp_path):
    tools = Toolchain(tmp_path)
    assert "spark-jars" in tools.missing()
    lay_spark_jars(tools, install._spark_list_header())
    assert tools.spark_jars_installed()
    assert "spark-jars" not in tools.missing()


def test_a_list_from_another_pom_or_a_jar_gone_means_install_again(tmp_path):
    stale = Toolchain(tmp_path / "stale")
    lay_spark_jars(stale, "# spark-jars.xml sha256 0000")
    assert "spark-jars" in stale.missing()
    gone = Toolchain(tmp_path / "gone")
    lay_spark_jars(gone, install._spark_list_header())
    next(gone.spark_jars.glob("*.jar")).unlink()
    assert not gone.spark_jars_installed()


def test_the_install_module_runs_on_the_standard_library_alone():
    """The Makefile runs `python3 -m stack.install` beside pip's install, before the virtualenv has
    anything: importing it must need nothing from it (-S: no site-packages, -s: no user site)."""
    probe = "import sys; import stack.install; print(sorted(m for m in sys.modules if m.split('.')[0] not in (*sys.stdlib_module_names, '__main__')))"
    result = subprocess.run([sys.executable, "-S", "-s", "-E", "-c", probe], capture_output=True, text=True,
                            cwd=install.POM.parent.parent)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['stack', 'stack.install']"


def test_the_bootstrap_install_takes_every_part_unless_some_are_named_and_refuses_an_unknown_one(capsys):
    assert install.chosen_parts([]) == install.PARTS
    assert install.chosen_parts(["spark-jars", "maven"]) == ("spark-jars", "maven")
    with pytest.raises(SystemExit) as refused:
        install.chosen_parts(["spark-jars", "ivy"])
    assert refused.value.code == 2
    assert "unknown part ivy: choose from apt, maven, minio, spark-jars" in capsys.readouterr().err


def test_an_empty_list_left_by_a_killed_install_means_install_again(tmp_path):
    tools = Toolchain(tmp_path)
    tools.spark_jars.mkdir(parents=True)
    (tools.spark_jars / SPARK_JARS_LIST).write_text("")
    assert "spark-jars" in tools.missing()
