"""Scratch resources on the local stack for tests and benchmarks, removed after use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from minio import Minio
from minio.deleteobjects import DeleteObject

from config import Settings


@contextmanager
def scratch_lake(settings: Settings, bucket: str) -> Iterator[Settings]:
    """A lake in a bucket of its own for a test or benchmark (LAKE_URI=s3a://<bucket>/),
    removed afterwards with everything in it."""
    client = Minio(settings.minio_endpoint, access_key=settings.minio_access_key,
                   secret_key=settings.minio_secret_key.get_secret_value(), secure=False)
    client.make_bucket(bucket)
    try:
        yield settings.model_copy(update={"lake_uri": f"s3a://{bucket}/"})
    finally:
        objects = (DeleteObject(entry.object_name) for entry in client.list_objects(bucket, recursive=True))
        errors = list(client.remove_objects(bucket, objects))
        if errors:
            raise RuntimeError(f"could not empty bucket {bucket}: {errors[:3]}")
        client.remove_bucket(bucket)
