"""`python -m streams rebuild`: a fresh output topic derived beside the live stream, both exact."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psutil
import pytest

from config.settings import REPO_ROOT
from source.order_final_audit import audit
from tests.integration.secrets_seen import foreign, stack_secrets
from tests.integration.scratch_stream import go_past, order_final_values, scratch_stream, sentinels, write_orders

ORDERS = 600


@pytest.fixture
def stream(settings, unique_name: str):
    with scratch_stream(settings, unique_name, web_port=16266) as running:
        yield running


def run(settings, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, **settings.as_env()})


def test_a_rebuild_beside_live_traffic_emits_every_order_once_and_the_live_stream_too(stream):
    settings, workers = stream
    rebuilt = f"{settings.order_final_topic}_rebuilt"
    first = write_orders(settings, ORDERS // 2, rate=0)  # the rebuild starts with a history to read
    manifest: dict = {}
    writer = threading.Thread(target=lambda: manifest.update(write_orders(settings, ORDERS // 2, rate=100)))

    writer.start()
    time.sleep(1)
    rebuild = subprocess.Popen([sys.executable, "-m", "streams", "rebuild", "--output", rebuilt,
                                "--web-port", "16299", "--quiet-s", "5", "--timeout-s", "300"], cwd=REPO_ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env={**os.environ, **settings.as_env()})
    writer.join()
    # the rebuild's worker holds a worker's credentials, not those of the shell that started it
    deadline, rebuild_worker = time.monotonic() + 60, []
    while not rebuild_worker and time.monotonic() < deadline and rebuild.poll() is None:
        rebuild_worker = psutil.Process(rebuild.pid).children(recursive=True)
        time.sleep(0.2)
    assert rebuild_worker, "the rebuild's worker never started"
    secrets = stack_secrets(settings)
    assert {leaked for child in rebuild_worker for leaked in foreign(child.pid, "worker", secrets)} == set()
    # written while the rebuild still reads (it stops 5 s after the last record): both topics
    # get them, and once they are out the live workers went past every order
    go_past(settings)
    output, _ = rebuild.communicate(timeout=600)
    complete = {**first["complete"], **manifest["complete"]}
    truth = {"complete": complete}
    live = order_final_values(settings)

    assert rebuild.returncode == 0, output[-3000:]
    assert f"rebuilt {rebuilt}" in output
    assert audit(truth, live).exact, audit(truth, live).summary()
    for topic in (settings.order_final_topic, rebuilt):  # both against the database itself
        checked = run(settings, "source", "audit", "--topic", topic)
        assert checked.returncode == 0, f"{topic}: {checked.stdout}{checked.stderr}"
        complete_in_database = len(complete) + len(sentinels(settings))
        assert f"expected {complete_in_database}, received {complete_in_database}, duplicates 0" in checked.stdout


def test_the_live_topic_is_refused_as_a_rebuild_target(settings):
    refused = run(settings, "streams", "rebuild", "--output", settings.order_final_topic, timeout_s=60)

    assert refused.returncode == 2
    assert "live stream's topic" in refused.stderr and "Traceback" not in refused.stderr
