from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch.transforms import gold

ORDERS = ("order_id string, customer_id int, store_id int, payment_method_id int, num_products int,"
          " order_ts timestamp, order_date date")
DETAILS = "order_id string, product_id int, quantity int, order_ts timestamp, order_date date"
CUSTOMERS = "customer_id int, name string, email string, phone string, city string, created_at timestamp"
PAYMENT_METHODS = "payment_method_id int, name string, provider string"


def order(order_id, customer_id, payment_method_id, num_products, day=date(2026, 11, 21)):
    return (order_id, customer_id, 4, payment_method_id, num_products, datetime(day.year, day.month, day.day, 8),
            day)


def detail(order_id, product_id, quantity, day=date(2026, 11, 21)):
    return (order_id, product_id, quantity, datetime(day.year, day.month, day.day, 8), day)


def test_every_dimension_has_exactly_one_unknown_member(spark):
    customers = spark.createDataFrame([(1, "Ann", "a@x.io", "5", "Oslo", datetime(2025, 1, 1))], CUSTOMERS)

    dimension = gold.dim_customer(customers)
    rebuilt = gold.with_unknown_member(dimension, "customer_key", ("name",))

    assert rebuilt.filter(F.col("customer_key") == gold.UNKNOWN).count() == 1
    unknown = dimension.filter(F.col("customer_key") == gold.UNKNOWN).collect()
    assert len(unknown) == 1
    assert unknown[0]["name"] == "Unknown" and unknown[0]["customer_id"] is None
    assert dimension.filter("customer_key = 1").first()["city"] == "Oslo"


def test_dim_date_ids_are_yyyymmdd_with_calendar_attributes(spark):
    orders = spark.createDataFrame([order("a", 1, 1, 1, date(2026, 11, 21)),
                                    order("b", 1, 1, 1, date(2026, 11, 21)),
                                    order("c", 1, 1, 1, date(2026, 2, 2))], ORDERS)

    dates = gold.dim_date(orders)

    assertDataFrameEqual(dates, spark.createDataFrame([
        (20261121, date(2026, 11, 21), 2026, 4, 11, 21, "November", "Saturday", True),
        (20260202, date(2026, 2, 2), 2026, 1, 2, 2, "February", "Monday", False),
        (-1, None, None, None, None, None, "Unknown", "Unknown", None)],
        "date_id int, date date, year int, quarter int, month int, day int, month_name string,"
        " day_name string, is_weekend boolean"))


def test_fact_orders_map_unknown_customers_and_payment_methods_to_the_unknown_member(spark):
    orders = spark.createDataFrame([order("known", 1, 2, 2), order("stranger", 99, 77, 3)], ORDERS)
    details = spark.createDataFrame([detail("known", 1001, 2), detail("known", 1002, 1),
                                     detail("stranger", 1001, 5)], DETAILS)
    customers = gold.dim_customer(spark.createDataFrame(
        [(1, "Ann", "a@x.io", "5", "Oslo", datetime(2025, 1, 1))], CUSTOMERS))
    payment_methods = gold.dim_payment_method(spark.createDataFrame([(2, "Card", "Visa")], PAYMENT_METHODS))
    dates = gold.dim_date(orders)

    facts = gold.fact_orders(orders, details, customers, payment_methods, dates)

    assertDataFrameEqual(
        facts.select("order_id", "order_date_id", "customer_key", "payment_method_key", "customer_id",
                     "detail_count", "total_quantity", "is_complete"),
        spark.createDataFrame([("known", 20261121, 1, 2, 1, 2, 3, True),
                               ("stranger", 20261121, -1, -1, 99, 1, 5, False)],
                              "order_id string, order_date_id int, customer_key int, payment_method_key int,"
                              " customer_id int, detail_count int, total_quantity int, is_complete boolean"))


def test_an_order_without_details_counts_zero_and_is_incomplete(spark):
    orders = spark.createDataFrame([order("empty", 1, 1, 2)], ORDERS)
    empty = spark.createDataFrame([], DETAILS)
    facts = gold.fact_orders(orders, empty, gold.dim_customer(spark.createDataFrame([], CUSTOMERS)),
                             gold.dim_payment_method(spark.createDataFrame([], PAYMENT_METHODS)),
                             gold.dim_date(orders)).first()
    assert (facts["detail_count"], facts["total_quantity"], facts["is_complete"]) == (0, 0, False)


def test_fact_order_products_carry_the_order_keys_and_resolve_products(spark):
    orders = spark.createDataFrame([order("o1", 1, 2, 2)], ORDERS)
    details = spark.createDataFrame([detail("o1", 1001, 2), detail("o1", 1002, 1),
                                     detail("other", 1001, 9)], DETAILS)
    facts = gold.fact_orders(orders, details, gold.dim_customer(spark.createDataFrame([], CUSTOMERS)),
                             gold.dim_payment_method(spark.createDataFrame([], PAYMENT_METHODS)),
                             gold.dim_date(orders))
    products = gold.dim_product(details.filter("product_id = 1001"))

    rows = gold.fact_order_products(details, facts, products)

    assertDataFrameEqual(rows, spark.createDataFrame(
        [("o1", 1001, 20261121, -1, -1, 1001, 2), ("o1", -1, 20261121, -1, -1, 1002, 1)],
        "order_id string, product_key int, order_date_id int, customer_key int,"
        " payment_method_key int, product_id int, quantity int"))
