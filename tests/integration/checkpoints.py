"""A Structured Streaming checkpoint on MinIO, read from the outside: which micro-batches were
planned (`offsets/`) and which finished (`commits/`)."""

from __future__ import annotations

from minio import Minio

from config import Settings


def minio_client(settings: Settings) -> Minio:
    return Minio(settings.minio_endpoint, access_key=settings.minio_access_key,
                 secret_key=settings.minio_secret_key.get_secret_value(), secure=False)


def batches(minio: Minio, bucket: str, kind: str) -> set[int]:
    """Batch ids in the archive checkpoint's `offsets` (planned) or `commits` (done) log."""
    prefix = "bronze/_checkpoints/cdc_raw/" + kind + "/"
    return {int(name) for entry in minio.list_objects(bucket, prefix=prefix)
            if (name := entry.object_name.rsplit("/", 1)[1]).isdigit()}


def in_flight(minio: Minio, bucket: str) -> set[int]:
    """Batches planned and not yet finished."""
    return batches(minio, bucket, "offsets") - batches(minio, bucket, "commits")
