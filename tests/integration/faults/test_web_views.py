"""The web views under hostile requests: a 4xx with a JSON error, never a 500; read-only."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.scratch_stream import order_final, scratch_stream, write_orders

HOSTILE_IDS = {
    "unknown": ("0b4c7a9e-0000-4000-8000-000000000000", 404),
    "not an id": ("not an id!", 400),
    "path traversal": ("..%2F..%2Fetc%2Fpasswd", 400),
    "encoded slash": ("a%2Fb", 400),
    "nul byte": ("abc%00def", 400),
    "markup": ("%3Cscript%3Ealert(1)%3C%2Fscript%3E", 400),
    "sql": ("'%20OR%201=1%20--", 400),
    "unicode": ("%C3%B6rd%C3%A9r", 400),
    "invalid utf-8": ("%FF%FE", 400),
    "long": ("a" * 4000, 400),
    "encoded dots": ("%2E%2E", 400),
    "percent": ("%25", 400),
    "trailing newline": ("0b4c7a9e%0A", 400),
}


@pytest.fixture(scope="module")
def web_stream(settings):
    with scratch_stream(settings, f"webviews{uuid.uuid4().hex[:8]}", workers=2,
                        web_port=16130) as (scratch, workers):
        manifest = write_orders(scratch, 200, rate=0)
        order_final(scratch, manifest["counts"]["complete"], workers)
        yield scratch, workers, manifest


@pytest.mark.parametrize("order_id, status", HOSTILE_IDS.values(), ids=HOSTILE_IDS.keys())
def test_a_hostile_order_id_gets_a_json_4xx_from_every_worker(web_stream, order_id: str, status: int):
    _, workers, _ = web_stream
    for worker in workers:  # one owns the id's partition, the other forwards the request
        response = httpx.get(f"{worker.url}/orders/{order_id}", timeout=10)

        assert response.status_code == status, (worker.name, response.status_code, response.text[:200])
        assert "error" in response.json()


def test_a_known_order_is_served_by_every_worker(web_stream):
    _, workers, manifest = web_stream
    order_id = next(iter(manifest["complete"]))
    for worker in workers:
        response = httpx.get(f"{worker.url}/orders/{order_id}", timeout=10)

        assert response.status_code == 200, response.text[:200]
        assert response.json()["order_id"] == order_id


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", ["/orders/0b4c7a9e-0000-4000-8000-000000000000", "/stats", "/dashboard"])
def test_the_web_views_are_read_only(web_stream, method: str, path: str):
    _, workers, _ = web_stream

    response = httpx.request(method, f"{workers[0].url}{path}", timeout=10)

    assert response.status_code == 405, (method, path, response.status_code, response.text[:200])
