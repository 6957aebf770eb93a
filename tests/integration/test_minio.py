from __future__ import annotations

import io

from minio import Minio

from config import Settings
from stack.services import BUCKETS


def test_put_and_get_an_object(settings: Settings, unique_name: str):
    client = Minio(settings.minio_endpoint, access_key=settings.minio_access_key,
                   secret_key=settings.minio_secret_key.get_secret_value(), secure=False)
    body = f"hello from {unique_name}".encode()

    client.put_object("bronze", f"_stack_test/{unique_name}.txt", io.BytesIO(body), len(body))
    response = client.get_object("bronze", f"_stack_test/{unique_name}.txt")
    try:
        fetched = response.read()
    finally:
        response.close()
        response.release_conn()

    assert fetched == body
    assert {bucket.name for bucket in client.list_buckets()} >= set(BUCKETS)
    client.remove_object("bronze", f"_stack_test/{unique_name}.txt")
