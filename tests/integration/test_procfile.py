"""The Procfile runs under honcho against the local stack."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from cdc import rest
from config import Settings
from config.settings import REPO_ROOT
from source import database


def test_honcho_runs_two_workers_and_the_cdc_watcher(settings: Settings, unique_name: str, tmp_path: Path):
    with database.scratch_database(settings, unique_name) as scratch:
        scratch = scratch.model_copy(update={"stream_app_id": f"orderpipe-{unique_name}", "stack_home": tmp_path,
                                             # the stack's Connect reads the connector's secrets from its own home
                                             "connector_secrets_file": settings.connector_secrets_path})
        database.apply_schema(database.connect(scratch))
        bin_dir = str(Path(sys.executable).parent)
        env = {**os.environ, **scratch.as_env(), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
        honcho = subprocess.Popen([f"{bin_dir}/honcho", "start", "-f", str(REPO_ROOT / "Procfile"),
                                   "-c", "worker=2", "-p", "15000", "worker", "cdc"], cwd=REPO_ROOT, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            served = {}
            deadline = time.monotonic() + 90
            while len(served) < 2 and time.monotonic() < deadline and honcho.poll() is None:
                for port in (15000, 15001):
                    try:
                        served[port] = httpx.get(f"http://127.0.0.1:{port}/stats", timeout=1).json()
                    except httpx.HTTPError:
                        pass
                time.sleep(0.5)
            connect = rest.client(scratch)
            deadline = time.monotonic() + 30
            while rest.status(connect, scratch.cdc_connector_name) is None and time.monotonic() < deadline:
                time.sleep(0.5)
            registered = rest.status(connect, scratch.cdc_connector_name)
        finally:
            try:
                family = psutil.Process(honcho.pid).children(recursive=True)
            except psutil.NoSuchProcess:  # honcho ended already: its output says why
                family = []
            if honcho.poll() is None:
                os.killpg(honcho.pid, 15)
            output = honcho.communicate(timeout=60)[0].decode(errors="replace")
            psutil.wait_procs(family, timeout=30)
            rest.delete(rest.client(scratch), scratch.cdc_connector_name)

        assert len(served) == 2, output[-3000:]
        assert len({stats["worker"] for stats in served.values()}) == 2
        assert registered is not None, output[-3000:]
        assert not [p for p in family if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
