"""Silver's transforms from the archive's rows on: Debezium's envelope -> row changes
(batch.transforms.changes) -> conformed, checked Silver rows."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.testing import assertDataFrameEqual

from batch.fastlane.archive import ARCHIVE_DDL, Record, archive
from batch.transforms import changes, silver

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
COMMITTED = datetime(2026, 11, 20, 9, 31)


def epoch_ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.replace(tzinfo=timezone.utc).timestamp() * 1000)


def order_image(order_id, *, customer_id=7, num_products=2, at=datetime(2026, 11, 20, 9, 30), **extra):
    return {"id": order_id, "customer_id": customer_id, "store_id": 3, "payment_method_id": 1,
            "num_products": num_products, "timestamp": epoch_ms(at), **extra}


def debezium(op: str, image: dict | None, pos: int, *, row: int = 0, committed: datetime = COMMITTED,
             file: str = "mysql-bin.000003") -> str:
    return json.dumps({"before": image if op == "d" else None, "after": None if op == "d" else image,
                       "source": {"file": file, "pos": pos, "row": row, "ts_ms": epoch_ms(committed)},
                       "op": op, "ts_ms": epoch_ms(committed)})


def archived(spark: SparkSession, values: list[str | None], topic: str = "orders") -> DataFrame:
    """The archive's rows for these record values, at offsets 0, 1, ... of one partition, as the
    archiver writes them (batch.fastlane.archive)."""
    records = [Record(topic, 0, offset, b'{"id": "k"}', None if value is None else value.encode(), epoch_ms(COMMITTED))
               for offset, value in enumerate(values)]
    return spark.createDataFrame(archive(records, NOW).rows.rows(), ARCHIVE_DDL)


def conformed(spark: SparkSession, values: list[str | None], table: silver.SilverTable) -> DataFrame:
    rows = changes.row_changes(archived(spark, values), table.name, table.image_columns, table.bronze_keys)
    for name in table.looked_up:
        rows = rows.withColumn(name, rows["order_id"].cast("timestamp"))  # the job joins these in
    return silver.conform(rows, table)


def refine(spark: SparkSession, values: list[str | None], table: silver.SilverTable) -> DataFrame:
    candidates = silver.with_first_change(conformed(spark, values, table), table.keys)
    newest = changes.newest_per_key(candidates, table.keys, silver.SOURCE_POSITION)
    customers = spark.createDataFrame([(7,), (9,)], "customer_id int")
    return silver.check_table(newest, table, NOW, {"customers": customers})


def test_the_newest_change_by_source_position_wins_and_a_replay_counts_once(spark):
    values = [debezium("r", order_image("o1", num_products=1), 100),
              debezium("u", order_image("o1", num_products=3), 900),  # archived before the one it follows
              debezium("u", order_image("o1", num_products=2), 500),
              debezium("c", order_image("o2"), 600),
              debezium("c", order_image("o2"), 600)]                  # Kafka Connect repeated it

    rows = changes.row_changes(archived(spark, values), "orders", silver.ORDERS.image_columns, ("id",))
    newest = changes.newest_per_key(rows, ("id",))

    assert rows.count() == 4
    assert sorted((r["id"], r["num_products"], r[changes.OP]) for r in newest.collect()) == [
        ("o1", "3", "u"), ("o2", "2", "c")]


def test_positions_sort_as_the_binlog_does_across_files_and_rows(spark):
    values = [debezium("u", order_image("o1", num_products=n), pos, row=row, file=file)
              for n, (file, pos, row) in enumerate([("mysql-bin.000009", 99_999, 0), ("mysql-bin.000010", 4, 0),
                                                    ("mysql-bin.000010", 4, 2)], start=1)]

    rows = changes.row_changes(archived(spark, values), "orders", silver.ORDERS.image_columns, ("id",))

    assert [r["num_products"] for r in rows.orderBy(changes.POSITION).collect()] == ["1", "2", "3"]


def test_a_delete_keeps_its_row_marked_with_the_commit_of_the_delete(spark):
    cancelled = datetime(2026, 11, 20, 10, 15)
    values = [debezium("c", order_image("o1"), 100), debezium("d", order_image("o1"), 200, committed=cancelled)]

    [row] = silver.valid(refine(spark, values, silver.ORDERS), silver.ORDERS).collect()

    assert (row.order_id, row.num_products, row.is_deleted, row.deleted_at, row.changed_at) == (
        "o1", 2, True, cancelled, cancelled)


def test_a_change_older_than_the_stored_one_is_not_applied(spark):
    values = [debezium("u", order_image("o1", num_products=1), 100), debezium("u", order_image("o2"), 300)]
    rows = conformed(spark, values, silver.ORDERS)
    stored = spark.createDataFrame([("o1", changes.position_text(3, 200, 0)), ("o2", changes.position_text(3, 200, 0))],
                                   f"order_id string, {silver.SOURCE_POSITION} string")

    applied = changes.newer_than_stored(rows, stored, ["order_id"], silver.SOURCE_POSITION)

    assert [r["order_id"] for r in applied.collect()] == ["o2"]


def test_the_newest_version_carries_its_rows_first_commit_from_the_batch_or_from_what_silver_holds(spark):
    placed, raised = datetime(2026, 11, 20, 9), datetime(2026, 11, 20, 9, 5)
    values = [debezium("c", order_image("o1", num_products=2), 100, committed=placed),
              debezium("u", order_image("o1", num_products=3), 200, committed=raised),
              debezium("u", order_image("o2", num_products=3), 300, committed=raised)]
    valid = silver.valid(refine(spark, values, silver.ORDERS), silver.ORDERS)
    [o1, o2] = sorted(valid.collect(), key=lambda row: row.order_id)
    assert (o1.num_products, o1.changed_at, o1.first_changed_at) == (3, raised, placed)
    assert o2.first_changed_at == raised

    earlier = datetime(2026, 11, 19, 8)
    stored = spark.createDataFrame([("o2", changes.position_text(3, 250, 0), earlier)],
                                   f"order_id string, {silver.SOURCE_POSITION} string, first_changed_at timestamp")
    newest = valid.filter("order_id = 'o2'")
    [kept] = changes.newer_than_stored(newest, stored, ["order_id"], silver.SOURCE_POSITION,
                                       silver.FIRST_CHANGED_AT).collect()
    assert (kept.changed_at, kept.first_changed_at) == (raised, earlier)


def test_an_archive_that_begins_with_the_connectors_snapshot_reaches_back_before_the_snapshot_ends(spark):
    def snapshot_read(order_id: str, pos: int, marker: str) -> str:
        record = json.loads(debezium("r", order_image(order_id), pos))
        record["source"]["snapshot"] = marker
        return json.dumps(record)

    first_batch = archived(spark, [snapshot_read("o1", 10, "first"), snapshot_read("o2", 10, "true")])
    after_a_no_data_start = archived(spark, [debezium("c", order_image("o1"), 100)])
    incremental_only = archived(spark, [snapshot_read("o1", 10, "incremental")])
    cut = first_batch.withColumn("offset", first_batch["offset"] + 5)

    assert changes.reaches_back(first_batch)  # the rest of the snapshot comes in later batches
    assert not changes.reaches_back(after_a_no_data_start)
    assert not changes.reaches_back(incremental_only)
    assert not changes.reaches_back(cut)


def test_records_that_are_no_row_change_are_set_aside_with_the_reason_and_tombstones_are_not(spark):
    values = [debezium("c", order_image("o1"), 100), None, "not json at all", '{"op": "c"}',
              json.dumps({"op": "t", "source": {"file": "mysql-bin.000003", "pos": 5}}),
              '{"a":' * 20_000 + "1" + "}" * 20_000]  # refused by the archiver: its reason is the archive's

    rows = archived(spark, values)
    unreadable = {r["offset"]: r["_reason"] for r in changes.unreadable(rows).collect()}

    assert unreadable.pop(5).startswith("undecodable: ")
    assert unreadable == {2: changes.UNREADABLE, 3: changes.UNREADABLE,
                          4: "truncate: not applied (python -m batch audit shows the drift)"}
    assert [(row["records"], row["unreadable"]) for row in changes.per_topic(rows).collect()] == [(6, 4)]
    assert changes.row_changes(rows, "orders", silver.ORDERS.image_columns, ("id",)).count() == 1


def test_every_version_of_an_order_is_valid_until_the_next_commit(spark):
    placed, raised, cancelled = datetime(2026, 11, 20, 9), datetime(2026, 11, 20, 9, 5), datetime(2026, 11, 20, 9, 9)
    values = [debezium("c", order_image("o1", num_products=2), 100, committed=placed),
              debezium("u", order_image("o1", num_products=3), 200, committed=raised),
              debezium("d", order_image("o1", num_products=3), 300, committed=cancelled)]

    history = silver.history(conformed(spark, values, silver.ORDERS), silver.ORDERS)

    assert sorted((r.num_products, r.valid_from, r.valid_to, r.is_deleted) for r in history.collect()) == [
        (2, placed, raised, False), (3, raised, cancelled, False), (3, cancelled, None, True)]


def test_orders_are_typed_trimmed_and_named_for_silver(spark):
    rows = silver.valid(refine(spark, [debezium("c", order_image("  o1 "), 100)], silver.ORDERS), silver.ORDERS)

    assertDataFrameEqual(rows.drop(silver.SOURCE_POSITION), spark.createDataFrame(
        [("o1", 7, 3, 1, 2, datetime(2026, 11, 20, 9, 30), date(2026, 11, 20), False, None, COMMITTED, COMMITTED)],
        "order_id string, customer_id int, store_id int, payment_method_id int, num_products int,"
        " order_ts timestamp, order_date date, is_deleted boolean, deleted_at timestamp, changed_at timestamp,"
        " first_changed_at timestamp"), checkRowOrder=False)


def test_a_column_added_at_the_source_is_carried_into_silver_as_it_is(spark):
    values = [debezium("c", order_image("o1", gift_note="gift wrap"), 100), debezium("c", order_image("o2"), 200)]
    rows = archived(spark, values)
    (fields,) = [row["fields"] for row in changes.per_topic(rows).collect()]
    extra = changes.extra_columns(fields, silver.ORDERS.image_columns)

    refined = changes.row_changes(rows, "orders", [*silver.ORDERS.image_columns, *extra], ("id",))
    newest = silver.check_table(silver.conform(refined, silver.ORDERS), silver.ORDERS, NOW,
                                {"customers": spark.createDataFrame([(7,)], "customer_id int")})
    valid = silver.valid(newest, silver.ORDERS)

    assert extra == ["gift_note"]
    assert valid.columns == [*silver.ORDERS.columns, "gift_note", *silver.LIFECYCLE_COLUMNS]
    assert sorted((r["order_id"], r["gift_note"]) for r in valid.collect()) == [("o1", "gift wrap"), ("o2", None)]


@pytest.mark.parametrize(("row", "broken"), [
    (order_image("o1"), []),
    (order_image(None), ["order_id_present"]),
    (order_image("   "), ["order_id_present"]),
    (order_image("o1", customer_id=None, num_products=0),
     ["customer_id_present", "num_products_positive", "customer_known"]),
    (order_image("o1", customer_id=8), ["customer_known"]),
    (order_image("o1", num_products=-2), ["num_products_positive"]),
    (order_image("o1", at=None), ["order_ts_present", "order_ts_not_future"]),
    (order_image("o1", at=datetime(2026, 11, 21, 12, 4)), []),       # within the clock skew
    (order_image("o1", at=datetime(2027, 1, 1)), ["order_ts_not_future"]),
])
def test_order_rules_name_what_they_break(spark, row, broken):
    checked = refine(spark, [debezium("c", row, 100)], silver.ORDERS)
    assert checked.first()[silver.BROKEN_RULES] == broken
    assert silver.quarantined(checked).count() == (1 if broken else 0)
    assert silver.valid(checked, silver.ORDERS).count() == (0 if broken else 1)


def test_every_row_in_is_valid_or_quarantined_and_quarantine_keeps_the_source_row(spark):
    values = [debezium("c", {"order_id": "o1", "product_id": 1001, "quantity": 2}, 100),
              debezium("c", {"order_id": "o1", "product_id": 1002, "quantity": -1}, 100, row=1),
              debezium("c", {"order_id": "o2", "product_id": None, "quantity": 1}, 200)]

    checked = refine(spark, values, silver.ORDER_DETAILS)
    good, bad = silver.valid(checked, silver.ORDER_DETAILS), silver.quarantined(checked)

    assert good.count() + bad.count() == len(values) == 3
    assert sorted((r["order_id"], r[silver.BROKEN_RULES], r[silver.SOURCE_POSITION]) for r in bad.collect()) == [
        ("o1", ["quantity_positive"], changes.position_text(3, 100, 1)),
        ("o2", ["product_id_present"], changes.position_text(3, 200, 0))]
    assert '"quantity":"-1"' in bad.filter("product_id = 1002").first()[silver.RAW]


@pytest.mark.parametrize(("email", "broken"), [
    ("  Ann@Example.COM ", []), ("ann@example", ["email_valid"]), ("", ["email_valid"]),
    ("a b@x.io", ["email_valid"])])
def test_customer_email_is_lowered_and_checked(spark, email, broken):
    image = {"id": 1, "name": "Ann", "email": email, "phone": "555", "city": "Oslo",
             "created_at": epoch_ms(datetime(2025, 1, 1))}
    checked = refine(spark, [debezium("r", image, 100)], silver.CUSTOMERS).first()
    assert checked[silver.BROKEN_RULES] == broken
    assert checked["created_at"] == datetime(2025, 1, 1)
    if not broken:
        assert checked["email"] == "ann@example.com"


def test_rows_quarantined_only_for_a_missing_reference_are_checked_again(spark):
    values = [debezium("c", order_image("waits for its customer", customer_id=8), 100),
              debezium("c", order_image("no products", customer_id=8, num_products=0), 200)]
    quarantine = silver.quarantined(refine(spark, values, silver.ORDERS))

    waiting = silver.awaiting_references(quarantine, silver.ORDERS)

    assert [row["order_id"] for row in waiting.collect()] == ["waits for its customer"]
    assert silver.BROKEN_RULES not in waiting.columns
