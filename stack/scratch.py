"""Scratch resources on the local stack for tests and benchmarks, removed after use."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from minio.deleteobjects import DeleteObject
from pydantic import SecretStr

from cdc.topics import TopicMissing, read_to_end
from config import Settings
from stack.services import minio_client

SYNC_MARKER_ID = 999_999  # a payment method row of a scratch database's own: the CDC sync marker


@contextmanager
def scratch_lake(settings: Settings, bucket: str) -> Iterator[Settings]:
    """A lake in a bucket of its own for a test or benchmark (LAKE_URI=s3a://<bucket>/),
    removed afterwards with everything in it. Its jobs use MinIO's root keys: the stack's lake
    users may touch only the stack's own buckets."""
    client = minio_client(settings, "root")
    client.make_bucket(bucket)
    root_user, root_password = settings.minio_login("root")
    try:
        yield settings.model_copy(update={
            "lake_uri": f"s3a://{bucket}/", "minio_access_key": root_user, "minio_secret_key": SecretStr(root_password),
            "minio_reader_access_key": root_user, "minio_reader_secret_key": SecretStr(root_password)})
    finally:
        objects = (DeleteObject(entry.object_name) for entry in client.list_objects(bucket, recursive=True))
        errors = list(client.remove_objects(bucket, objects))
        if errors:
            raise RuntimeError(f"could not empty bucket {bucket}: {errors[:3]}")
        client.remove_bucket(bucket)


def cdc_caught_up(settings: Settings, connection, timeout_s: float = 120) -> None:
    """Return once Debezium has put every change committed so far in a scratch database on
    its CDC topics: a marker row (payment method SYNC_MARKER_ID) is written with a fresh
    value and waited for on its topic; Debezium reads the binlog in order, so what was
    committed before is there too. Raises TimeoutError after `timeout_s`."""
    token = uuid.uuid4().hex
    connection.cursor().execute(
        "INSERT INTO payment_method VALUES (%s, 'cdc sync marker', %s)"
        " ON DUPLICATE KEY UPDATE provider = VALUES(provider)", (SYNC_MARKER_ID, token))
    topic, deadline = settings.cdc_topic("payment_method"), time.monotonic() + timeout_s

    def captured() -> bool:
        try:
            newest = read_to_end(settings, topic, last=5)
        except TopicMissing:  # Debezium creates the topic with its first record
            return False
        return any(isinstance(m.value, dict) and (m.value.get("after") or {}).get("provider") == token
                   for m in newest)

    while not captured():
        if time.monotonic() > deadline:
            raise TimeoutError(f"Debezium did not capture the sync marker on {topic} within {timeout_s:.0f} s")
        time.sleep(0.2)
