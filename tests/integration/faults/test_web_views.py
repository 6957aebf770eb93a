"""The web views under hostile requests: a 4xx with a JSON error, never a 500; read-only."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.integration.scratch_stream import order_final, scratch_stream, sentinels, write_orders

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


@pytest.mark.parametrize("query", ["", "?state=lost", "?state=complete&limit=0", "?state=complete&limit=-1",
                                   "?state=complete&limit=99999", "?state=complete&limit=ten",
                                   "?state=complete&scope=%00", "?state=%3Cscript%3E"])
def test_a_hostile_order_list_query_gets_a_json_400(web_stream, query: str):
    _, workers, _ = web_stream

    response = httpx.get(f"{workers[0].url}/orders{query}", timeout=10)

    assert response.status_code == 400, (query, response.status_code, response.text[:200])
    assert "error" in response.json()


def test_any_worker_lists_every_workers_orders_by_state_with_emails_masked(web_stream):
    scratch, workers, manifest = web_stream
    held_complete = set(manifest["complete"]) | sentinels(scratch)  # the sentinels order_final wrote
    complete = httpx.get(f"{workers[1].url}/orders?state=complete&limit=1000", timeout=30).json()
    incomplete = httpx.get(f"{workers[0].url}/orders?state=incomplete&limit=1000", timeout=30).json()
    few = httpx.get(f"{workers[0].url}/orders?state=complete&limit=3", timeout=30).json()

    assert {o["order_id"] for o in complete["orders"]} == held_complete
    assert all(not answer.get("error") for answer in complete["workers"].values()) and len(complete["workers"]) == 2
    assert sum(answer["orders"] for answer in complete["workers"].values()) == len(held_complete)
    assert {o["order_id"] for o in incomplete["orders"]} == set(manifest["incomplete"])
    customers = [o["customer"] for o in incomplete["orders"] if o["customer"]]
    assert customers and all("***@" in c["email"] for c in customers)
    assert few["count"] == 3 and len(few["orders"]) == 3
