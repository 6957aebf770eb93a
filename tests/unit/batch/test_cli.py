from __future__ import annotations

import subprocess
import sys

from config.settings import REPO_ROOT


def batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "batch", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)


def test_the_batch_entry_point_explains_its_layers_and_options():
    shown = batch("--help")
    assert shown.returncode == 0, shown.stderr
    assert "python -m batch [OPTIONS] [layers]..." in shown.stdout
    for word in ("bronze", "silver", "gold", "--full"):
        assert word in shown.stdout


def test_an_unknown_layer_is_refused_before_spark_starts():
    refused = batch("platinum")
    assert refused.returncode == 2
    assert "platinum" in refused.stderr and "bronze" in refused.stderr


def test_a_schedule_needs_a_unit_and_is_refused_before_spark_starts():
    refused = batch("--every", "15")
    assert refused.returncode == 2
    assert "give a positive number and a unit, s, m or h" in refused.stderr, refused.stderr


def test_maintenance_names_the_layers_it_knows():
    refused = subprocess.run([sys.executable, "-m", "batch", "maintain", "platinum"], cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "'platinum' is not one of 'bronze', 'silver', 'gold'" in refused.stderr
