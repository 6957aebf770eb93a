"""A Structured Streaming checkpoint on MinIO, read from the outside: which micro-batches were
planned (`offsets/`) and which finished (`commits/`)."""

from __future__ import annotations

from minio import Minio


def batches(minio: Minio, bucket: str, kind: str) -> set[int]:
    """Batch ids in the archive checkpoint's `offsets` (planned) or `commits` (done) log."""
    prefix = "bronze/_checkpoints/cdc_raw/" + kind + "/"
    return {int(name) for entry in minio.list_objects(bucket, prefix=prefix)
            if (name := entry.object_name.rsplit("/", 1)[1]).isdigit()}


def in_flight(minio: Minio, bucket: str) -> set[int]:
    """Batches planned and not yet finished."""
    return batches(minio, bucket, "offsets") - batches(minio, bucket, "commits")
