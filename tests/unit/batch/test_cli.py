from __future__ import annotations

import subprocess
import sys

import pytest

from config.settings import REPO_ROOT


@pytest.mark.parametrize("module", ["batch", "batch.bronze", "batch.silver", "batch.gold"])
def test_every_job_explains_itself(module):
    shown = subprocess.run([sys.executable, "-m", module, "--help"], cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert f"python -m {module} [OPTIONS]" in shown.stdout
    assert "--full" in shown.stdout
