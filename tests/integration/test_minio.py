"""The stack's MinIO: the lake's writer reads and writes the layers' buckets, its reader only
reads them, and neither reaches anything else; anonymous requests are refused."""

from __future__ import annotations

import io

import httpx
import pytest
from minio.error import S3Error

from config import Settings
from stack.services import BUCKETS, minio_client


@pytest.fixture
def roles(settings: Settings) -> Settings:
    keys = {settings.minio_login(role)[0] for role in ("root", "writer", "reader")}
    assert len(keys) == 3, "the stack gives MinIO's root, the lake's writer and its reader keys of their own"
    return settings


def put(client, bucket: str, name: str, body: bytes = b"x") -> None:
    client.put_object(bucket, name, io.BytesIO(body), len(body))


def test_the_lake_writer_puts_and_gets_in_its_buckets(roles: Settings, unique_name: str):
    writer, reader = minio_client(roles, "writer"), minio_client(roles, "reader")
    body = f"hello from {unique_name}".encode()

    put(writer, "bronze", f"_stack_test/{unique_name}.txt", body)
    response = reader.get_object("bronze", f"_stack_test/{unique_name}.txt")
    try:
        fetched = response.read()
    finally:
        response.close()
        response.release_conn()
    writer.remove_object("bronze", f"_stack_test/{unique_name}.txt")

    assert fetched == body
    assert {bucket.name for bucket in minio_client(roles, "root").list_buckets()} >= set(BUCKETS)


def test_the_reader_cannot_write_and_the_writer_cannot_leave_the_lake(roles: Settings, unique_name: str):
    root, writer, reader = (minio_client(roles, role) for role in ("root", "writer", "reader"))
    root.make_bucket(unique_name)
    try:
        with pytest.raises(S3Error, match="AccessDenied"):
            put(reader, "gold", f"_stack_test/{unique_name}.txt")
        with pytest.raises(S3Error, match="AccessDenied"):
            put(writer, unique_name, "outside-the-lake.txt")
        with pytest.raises(S3Error, match="AccessDenied"):
            writer.make_bucket(f"{unique_name}-new")
        with pytest.raises(S3Error, match="AccessDenied"):
            writer.remove_bucket(unique_name)
    finally:
        root.remove_bucket(unique_name)


def test_an_anonymous_request_is_refused(settings: Settings):
    listing = httpx.get(f"http://{settings.minio_endpoint}/gold?list-type=2", timeout=5)

    assert listing.status_code == 403 and "AccessDenied" in listing.text
