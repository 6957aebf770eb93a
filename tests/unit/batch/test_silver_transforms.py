from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pyspark.sql import DataFrame
from pyspark.testing import assertDataFrameEqual

from batch.transforms import silver

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
BRONZE_ORDERS = ("id string, customer_id int, store_id int, payment_method_id int, num_products int,"
                 " `timestamp` timestamp, year int, month int, day int,"
                 " _change_type string, _commit_version long")


def bronze_order(order_id, *, customer_id=7, num_products=2, at=datetime(2026, 11, 20, 9, 30),
                 change="insert", version=1):
    return (order_id, customer_id, 3, 1, num_products, at, at and at.year, at and at.month,
            at and at.day, change, version)


def refine(rows: DataFrame, table: silver.SilverTable) -> DataFrame:
    latest = silver.latest_changes(rows, table.bronze_keys)
    customers = rows.sparkSession.createDataFrame([(7,), (9,)], "customer_id int")
    return silver.check_table(silver.conform(latest, table), table, NOW, {"customers": customers})


def test_latest_change_wins_and_preimages_are_ignored(spark):
    changes = spark.createDataFrame([
        bronze_order("o1", num_products=1, version=1),
        bronze_order("o1", num_products=1, change="update_preimage", version=2),
        bronze_order("o1", num_products=3, change="update_postimage", version=2),
        bronze_order("o2", version=1),
        bronze_order("o2", change="delete", version=3),
    ], BRONZE_ORDERS)

    latest = silver.latest_changes(changes, ("id",))

    assert sorted((r["id"], r["num_products"], r["_change_type"]) for r in latest.collect()) == [
        ("o1", 3, "update_postimage"), ("o2", 2, "delete")]
    assertDataFrameEqual(silver.deleted_keys(latest, silver.ORDERS),
                         spark.createDataFrame([("o2",)], "order_id string"))


def test_orders_are_typed_trimmed_and_named_for_silver(spark):
    changes = spark.createDataFrame([bronze_order("  o1 ")], BRONZE_ORDERS)

    rows = silver.valid(refine(changes, silver.ORDERS), silver.ORDERS)

    assertDataFrameEqual(rows, spark.createDataFrame(
        [("o1", 7, 3, 1, 2, datetime(2026, 11, 20, 9, 30), date(2026, 11, 20))],
        "order_id string, customer_id int, store_id int, payment_method_id int, num_products int,"
        " order_ts timestamp, order_date date"))


def test_a_column_added_at_the_source_is_carried_into_silver_as_it_is(spark):
    changes = spark.createDataFrame([(*bronze_order("o1")[:9], "gift wrap", *bronze_order("o1")[9:]),
                                     (*bronze_order("o2")[:9], None, *bronze_order("o2")[9:])],
                                    BRONZE_ORDERS.replace(" day int,", " day int, gift_note string,"))

    rows = silver.valid(refine(changes, silver.ORDERS), silver.ORDERS)

    assert rows.columns == [*silver.ORDERS.columns, "gift_note"]
    assert sorted((r["order_id"], r["gift_note"]) for r in rows.collect()) == [("o1", "gift wrap"), ("o2", None)]


@pytest.mark.parametrize(("row", "broken"), [
    (bronze_order("o1"), []),
    (bronze_order(None), ["order_id_present"]),
    (bronze_order("   "), ["order_id_present"]),
    (bronze_order("o1", customer_id=None, num_products=0),
     ["customer_id_present", "num_products_positive", "customer_known"]),
    (bronze_order("o1", customer_id=8), ["customer_known"]),
    (bronze_order("o1", num_products=-2), ["num_products_positive"]),
    (bronze_order("o1", at=None), ["order_ts_present", "order_ts_not_future"]),
    (bronze_order("o1", at=datetime(2026, 11, 21, 12, 4)), []),       # within the clock skew
    (bronze_order("o1", at=datetime(2027, 1, 1)), ["order_ts_not_future"]),
])
def test_order_rules_name_what_they_break(spark, row, broken):
    checked = refine(spark.createDataFrame([row], BRONZE_ORDERS), silver.ORDERS)
    assert checked.first()[silver.BROKEN_RULES] == broken
    assert silver.quarantined(checked).count() == (1 if broken else 0)
    assert silver.valid(checked, silver.ORDERS).count() == (0 if broken else 1)


def test_every_row_in_is_valid_or_quarantined_and_quarantine_keeps_the_bronze_row(spark):
    details = spark.createDataFrame(
        [("o1", 1001, 2, datetime(2026, 11, 20), "insert", 4),
         ("o1", 1002, -1, datetime(2026, 11, 20), "insert", 4),
         ("o2", None, 1, None, "insert", 4)],
        "order_id string, product_id int, quantity int, order_timestamp timestamp,"
        " _change_type string, _commit_version long")

    checked = refine(details, silver.ORDER_DETAILS)
    good, bad = silver.valid(checked, silver.ORDER_DETAILS), silver.quarantined(checked)

    assert good.count() + bad.count() == details.count() == 3
    assert sorted((r["order_id"], r[silver.BROKEN_RULES], r[silver.SOURCE_VERSION]) for r in
                  bad.collect()) == [("o1", ["quantity_positive"], 4), ("o2", ["product_id_present"], 4)]
    assert '"quantity":-1' in bad.filter("product_id = 1002").first()[silver.RAW]


@pytest.mark.parametrize(("email", "broken"), [
    ("  Ann@Example.COM ", []), ("ann@example", ["email_valid"]), ("", ["email_valid"]),
    ("a b@x.io", ["email_valid"])])
def test_customer_email_is_lowered_and_checked(spark, email, broken):
    customers = spark.createDataFrame(
        [(1, "Ann", email, "555", "Oslo", datetime(2025, 1, 1), "insert", 1)],
        "id int, name string, email string, phone string, city string, created_at timestamp,"
        " _change_type string, _commit_version long")
    checked = refine(customers, silver.CUSTOMERS).first()
    assert checked[silver.BROKEN_RULES] == broken
    if not broken:
        assert checked["email"] == "ann@example.com"
