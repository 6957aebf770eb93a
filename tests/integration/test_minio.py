"""The stack's MinIO: the lake's writer reads and writes the layers' buckets, its reader only
reads them, and neither reaches anything else; anonymous requests are refused."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import httpx
import pytest
from minio.credentials import StaticProvider
from minio.error import S3Error
from minio.minioadmin import MinioAdmin

from config import Settings
from config.settings import REPO_ROOT
from stack.services import BUCKETS, minio_client
from tests.integration.secrets_seen import without_secrets


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


def test_minio_access_sets_the_lake_s_users_from_the_environment_alone(roles: Settings, unique_name: str):
    """What docker-compose's `minio-access` runs: with only the root's and the writer's keys (no
    reader of its own), the writer keeps its policy and no key is an argument."""
    env = {**without_secrets(os.environ), **roles.as_env(), "READ_STACK_SECRETS": "false"}
    env = {name: value for name, value in env.items() if not name.startswith("MINIO_READER_")}
    root = roles.minio_login("root")
    MinioAdmin(endpoint=roles.minio_endpoint, credentials=StaticProvider(*root), secure=False).user_remove(
        roles.minio_login("writer")[0])  # gone: only the command can make it again
    with pytest.raises(S3Error, match="InvalidAccessKeyId"):
        minio_client(roles, "writer").bucket_exists("silver")
    done = subprocess.run([sys.executable, "-m", "stack", "minio-access", "--wait", "10"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    writer = minio_client(roles, "writer")
    put(writer, "silver", f"_stack_test/{unique_name}.txt")
    writer.remove_object("silver", f"_stack_test/{unique_name}.txt")

    assert done.returncode == 0, done.stderr
    assert f"lake writer {roles.minio_login('writer')[0]}" in done.stderr
    with pytest.raises(S3Error, match="AccessDenied"):
        writer.make_bucket(f"not-{unique_name}")
