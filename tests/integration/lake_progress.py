"""The fast lane's progress read from the outside, on MinIO: the archive's newest version, and
the archive version Silver has applied (its mark). Between the two, a micro-batch is under way."""

from __future__ import annotations

import orjson
from minio import Minio
from minio.error import S3Error


def archive_version(minio: Minio, bucket: str) -> int | None:
    """The archive's newest commit (None: no archive yet)."""
    names = (entry.object_name.rsplit("/", 1)[1] for entry in
             minio.list_objects(bucket, prefix="bronze/cdc_raw/_delta_log/"))
    return max((int(name[:-5]) for name in names if name.endswith(".json") and name[:-5].isdigit()), default=None)


def silver_mark(minio: Minio, bucket: str) -> int | None:
    """The archive version Silver has applied (None: none yet)."""
    try:
        response = minio.get_object(bucket, "silver/_marks.json")
    except S3Error:
        return None
    try:
        mark = orjson.loads(response.read())["marks"].get("cdc_raw")
    finally:
        response.close()
        response.release_conn()
    return None if mark is None else int(mark)


def in_flight(minio: Minio, bucket: str) -> bool:
    """Whether a micro-batch is archived and not yet applied to Silver and Gold."""
    archived = archive_version(minio, bucket)
    applied = silver_mark(minio, bucket)
    return archived is not None and (applied is None or archived > applied)
