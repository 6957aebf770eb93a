"""Pages in a real browser: headless Chromium, its timers on virtual time."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium_render(url: str, screenshot: Path, profile: Path, virtual_time_ms: int) -> str:
    """The page's DOM after `virtual_time_ms` of virtual time; a screenshot of the same moment."""
    chromium = shutil.which("chromium")
    assert chromium, "chromium missing: python -m stack up installs it (apt-get install chromium)"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
         f"--virtual-time-budget={virtual_time_ms}", "--window-size=1280,900",
         f"--screenshot={screenshot}", "--dump-dom", url],
        capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
