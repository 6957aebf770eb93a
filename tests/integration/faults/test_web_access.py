"""A worker bound beyond loopback asks every request for the bearer token (requests here go to
127.0.0.1 only), and refuses to start without one."""

from __future__ import annotations

import uuid

import httpx
import pytest
from pydantic import SecretStr

from stack.workers import Worker, start_workers, wait_for_group
from tests.integration.scratch_stream import scratch_stream

TOKEN = "local-test-token"  # a test's own, not a secret
UNKNOWN_ORDER = "/orders/0b4c7a9e-0000-4000-8000-000000000000"
SERVED = {"/stats": 200, "/dashboard": 200, "/dashboard/data": 200, "/metrics": 200, "/orders?state=complete": 200,
          UNKNOWN_ORDER: 404,  # with the token: what each view answers
          "/router/": 404, "/table/": 404, "/table/order_progress/": 404}  # Faust's own views: not served


@pytest.fixture
def bound_everywhere(settings):
    with scratch_stream(settings, f"access{uuid.uuid4().hex[:8]}", workers=0, web_port=16140) as (scratch, _):
        scratch = scratch.model_copy(update={"web_token": SecretStr(TOKEN)})
        workers = start_workers(scratch, 2, args=("--web-bind", "0.0.0.0"))
        try:
            wait_for_group(scratch, workers)
            yield scratch, workers
        finally:
            for worker in workers:
                worker.stop()


def test_every_view_answers_401_without_the_token_and_serves_with_it(bound_everywhere):
    _, workers = bound_everywhere
    for worker in workers:
        for path, status in SERVED.items():
            refused = httpx.get(f"{worker.url}{path}", timeout=10)
            wrong = httpx.get(f"{worker.url}{path}", timeout=10, headers={"Authorization": "Bearer nope"})
            assert (refused.status_code, wrong.status_code) == (401, 401), (worker.name, path)
            served = httpx.get(f"{worker.url}{path}", timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
            assert served.status_code == status, (worker.name, path, served.status_code, served.text[:200])
    # a worker asking the others (the dashboard, the lists) carries the token along
    data = httpx.get(f"{workers[0].url}/dashboard/data", timeout=30, headers={"Authorization": f"Bearer {TOKEN}"})
    assert data.json()["totals"]["reachable"] == 2


def test_a_worker_bound_beyond_loopback_without_a_token_refuses_to_start(settings):
    with scratch_stream(settings, f"access{uuid.uuid4().hex[:8]}", workers=0, web_port=16150) as (scratch, _):
        worker = Worker(scratch, 1, args=("--web-bind", "0.0.0.0"))
        worker.start()
        with pytest.raises(RuntimeError, match="exited"):
            worker.wait_ready(timeout_s=60)
        assert "set WEB_TOKEN" in worker.layout.logfile(worker.name).read_text()
