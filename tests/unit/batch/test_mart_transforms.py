from __future__ import annotations

from datetime import date, datetime

from pyspark.testing import assertDataFrameEqual

from batch.transforms import marts

FACTS = ("order_id string, order_date_id int, customer_id int, payment_method_key int, order_ts timestamp,"
         " total_quantity int, is_complete boolean, is_deleted boolean")
PRODUCTS = "order_id string, order_date_id int, product_key int, quantity int"
MONDAY, TUESDAY = date(2026, 11, 23), date(2026, 11, 24)


def fact(order_id, day, customer_id, payment_method_key, quantity, complete=True, deleted=False):
    return (order_id, int(day.strftime("%Y%m%d")), customer_id, payment_method_key,
            datetime(day.year, day.month, day.day, 12), quantity, complete, deleted)


def facts(spark):
    return spark.createDataFrame([
        fact("a", MONDAY, 1, 10, 3),
        fact("b", MONDAY, 1, 20, 2, complete=False),
        fact("c", MONDAY, 2, 10, 5, deleted=True),
        fact("d", TUESDAY, 3, 20, 1),
    ], FACTS)


def test_daily_orders_count_placed_completed_cancelled_and_items_of_kept_orders(spark):
    assertDataFrameEqual(marts.daily_orders(facts(spark)), spark.createDataFrame([
        (MONDAY, 3, 1, 1, 0.3333, 5, 2),
        (TUESDAY, 1, 1, 0, 1.0, 1, 1)],
        "date date, orders long, completed long, cancelled long, completion_rate double, items long,"
        " customers long"))


def test_payment_mix_shares_add_up_to_one_per_day_and_skip_cancelled_orders(spark):
    methods = spark.createDataFrame([(10, "Card", "Visa"), (20, "Wallet", "PayPal")],
                                    "payment_method_key int, name string, provider string")

    assertDataFrameEqual(marts.payment_mix(facts(spark), methods), spark.createDataFrame([
        (MONDAY, 10, "Card", "Visa", 1, 0.5), (MONDAY, 20, "Wallet", "PayPal", 1, 0.5),
        (TUESDAY, 20, "Wallet", "PayPal", 1, 1.0)],
        "date date, payment_method_key int, payment_method string, provider string, orders long, share double"))


def test_top_products_rank_by_quantity_then_orders_and_keep_the_top_n(spark):
    order_products = spark.createDataFrame([
        ("a", 20261123, 7, 2), ("a", 20261123, 8, 1), ("b", 20261123, 8, 1), ("b", 20261123, 9, 1),
        ("c", 20261123, 9, 50),  # cancelled: not counted
    ], PRODUCTS)
    products = spark.createDataFrame([(7, "Product 7"), (8, "Product 8"), (9, "Product 9")],
                                     "product_key int, name string")

    assertDataFrameEqual(marts.top_products(facts(spark), order_products, products, top=2), spark.createDataFrame([
        (MONDAY, 1, 8, "Product 8", 2, 2), (MONDAY, 2, 7, "Product 7", 2, 1)],
        "date date, rank int, product_key int, product string, quantity long, orders long"))


def test_customer_segments_by_recency_and_frequency_with_the_current_city(spark):
    history = spark.createDataFrame([
        fact("x1", date(2026, 11, 1), 1, 10, 1), fact("x2", date(2026, 11, 10), 1, 10, 1),
        fact("x3", date(2026, 11, 20), 1, 10, 1),                       # 3 orders, recent
        fact("y1", date(2026, 11, 20), 2, 10, 4),                       # 1 order, recent
        fact("z1", date(2026, 6, 1), 3, 10, 1), fact("z2", date(2026, 7, 1), 3, 10, 1),
        fact("z3", date(2026, 8, 1), 3, 10, 1),                         # 3 orders, long ago
        fact("w1", date(2026, 9, 1), 4, 10, 1),                         # 1 order, long ago
        fact("v1", date(2026, 11, 19), 5, 10, 1), fact("v2", date(2026, 11, 20), 5, 10, 1, deleted=True),
    ], FACTS)
    customers = spark.createDataFrame([(1, "Oslo", False), (1, "Bergen", True), (2, "Rome", True)],
                                      "customer_id int, city string, is_current boolean")

    rows = {r.customer_id: r for r in marts.customer_segments(history, customers).collect()}

    assert {c: (r.orders, r.recency_days, r.segment, r.city) for c, r in rows.items()} == {
        1: (3, 0, "champion", "Bergen"), 2: (1, 0, "new", "Rome"), 3: (3, 111, "at risk", None),
        4: (1, 80, "lapsed", None), 5: (1, 1, "new", None)}
    assert rows[1].first_order == datetime(2026, 11, 1, 12) and rows[2].items == 4
