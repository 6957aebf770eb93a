from __future__ import annotations

from datetime import datetime

from pyspark.testing import assertDataFrameEqual

from batch.transforms.snapshot import (bucket_predicates, bucket_signatures_query, changed_buckets, hash_predicates,
                                     with_date_partitions)
from batch.transforms.common import nullable


def test_date_partitions_come_from_the_named_timestamp(spark):
    rows = spark.createDataFrame([("a", datetime(2026, 2, 28, 23, 59, 59)), ("b", None)],
                                 "id string, order_timestamp timestamp")
    assertDataFrameEqual(
        with_date_partitions(rows, "order_timestamp"),
        spark.createDataFrame([("a", datetime(2026, 2, 28, 23, 59, 59), 2026, 2, 28),
                               ("b", None, None, None, None)],
                              "id string, order_timestamp timestamp, year int, month int, day int"))


def test_hash_predicates_cover_every_bucket_once_and_scope_to_the_watermark():
    full = hash_predicates("id", 3)
    assert full == ["MOD(CRC32(`id`), 3) = 0", "MOD(CRC32(`id`), 3) = 1", "MOD(CRC32(`id`), 3) = 2"]

    since = hash_predicates("order_id", 2, "order_timestamp", "2026-11-21 10:00:00.000000")
    assert since == [
        "MOD(CRC32(`order_id`), 2) = 0 AND `order_timestamp` >= '2026-11-21 10:00:00.000000'",
        "MOD(CRC32(`order_id`), 2) = 1 AND `order_timestamp` >= '2026-11-21 10:00:00.000000'"]


def test_nullable_relaxes_every_column_and_keeps_the_rows(spark):
    strict = spark.createDataFrame([(1, "a")], "id int NOT NULL, name string NOT NULL")

    relaxed = nullable(strict)

    assert [f.nullable for f in relaxed.schema] == [True, True]
    assertDataFrameEqual(relaxed, spark.createDataFrame([(1, "a")], "id int, name string"))


def test_buckets_whose_signature_moved_appeared_or_vanished_are_read_again():
    before = {"0": "10:123", "1": "10:456", "2": "3:789"}
    now = {"0": "10:123", "1": "10:999", "3": "1:5"}  # 1 changed, 2 emptied, 3 new

    assert changed_buckets(before, now) == [1, 2, 3]
    assert changed_buckets(now, now) == []


def test_bucket_predicates_share_the_buckets_among_the_reads():
    assert bucket_predicates("id", [1, 2, 3], partitions=2, bucket_keys=100) == [
        "`id` DIV 100 IN (1, 3)", "`id` DIV 100 IN (2)"]
    assert bucket_predicates("id", [7], partitions=4) == ["`id` DIV 10000 IN (7)"]


def test_the_signature_query_covers_every_column_and_tells_null_from_text():
    query = bucket_signatures_query("customers", "id", ["id", "name", "city"], bucket_keys=100)

    assert "FROM `customers` GROUP BY `id` DIV 100" in query
    for column in ("id", "name", "city"):
        assert f"IFNULL(CAST(`{column}` AS CHAR), '\\\\N')" in query
