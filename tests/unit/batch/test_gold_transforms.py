from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch.transforms import gold

ORDERS = ("order_id string, customer_id int, store_id int, payment_method_id int, num_products int,"
          " order_ts timestamp, order_date date, is_deleted boolean, deleted_at timestamp, changed_at timestamp")
DETAILS = "order_id string, product_id int, quantity int, order_ts timestamp, order_date date, changed_at timestamp"
PLACED = "order_id string, placed_at timestamp"
CUSTOMERS = "customer_id int, name string, email string, phone string, city string, created_at timestamp"
PAYMENT_METHODS = "payment_method_id int, name string, provider string"


def order(order_id, customer_id, payment_method_id, num_products, day=date(2026, 11, 21), *,
          deleted_at=None, changed_at=None):
    at = datetime(day.year, day.month, day.day, 8)
    return (order_id, customer_id, 4, payment_method_id, num_products, at, day, deleted_at is not None,
            deleted_at, deleted_at or changed_at or at)


def detail(order_id, product_id, quantity, day=date(2026, 11, 21), *, changed_at=None):
    at = datetime(day.year, day.month, day.day, 8)
    return (order_id, product_id, quantity, at, day, changed_at or at)


def nothing_placed(spark):
    return spark.createDataFrame([], PLACED)


def test_every_dimension_has_exactly_one_unknown_member(spark):
    customers = spark.createDataFrame([(1, "Ann", "a@x.io", "5", "Oslo", datetime(2025, 1, 1))], CUSTOMERS)

    dimension = gold.dim_customer(customers)
    rebuilt = gold.with_unknown_member(dimension, "customer_key", ("name",))

    assert rebuilt.filter(F.col("customer_key") == gold.UNKNOWN).count() == 1
    unknown = dimension.filter(F.col("customer_key") == gold.UNKNOWN).collect()
    assert len(unknown) == 1
    assert unknown[0]["name"] == "Unknown" and unknown[0]["customer_id"] is None
    assert dimension.filter("customer_id = 1").first()["city"] == "Oslo"


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

    facts = gold.fact_orders(orders, details, customers, payment_methods, dates, nothing_placed(spark))

    ann = customers.filter("customer_id = 1").first()["customer_key"]
    assertDataFrameEqual(
        facts.select("order_id", "order_date_id", "customer_key", "payment_method_key", "customer_id",
                     "detail_count", "total_quantity", "is_complete", "is_deleted"),
        spark.createDataFrame([("known", 20261121, ann, 2, 1, 2, 3, True, False),
                               ("stranger", 20261121, -1, -1, 99, 1, 5, False, False)],
                              "order_id string, order_date_id int, customer_key bigint, payment_method_key int,"
                              " customer_id int, detail_count int, total_quantity int, is_complete boolean,"
                              " is_deleted boolean"))


def test_an_order_without_details_counts_zero_and_is_incomplete(spark):
    orders = spark.createDataFrame([order("empty", 1, 1, 2)], ORDERS)
    empty = spark.createDataFrame([], DETAILS)
    facts = gold.fact_orders(orders, empty, gold.dim_customer(spark.createDataFrame([], CUSTOMERS)),
                             gold.dim_payment_method(spark.createDataFrame([], PAYMENT_METHODS)),
                             gold.dim_date(orders), nothing_placed(spark)).first()
    assert (facts["detail_count"], facts["total_quantity"], facts["is_complete"]) == (0, 0, False)


def test_fact_order_products_carry_the_order_keys_and_resolve_products(spark):
    orders = spark.createDataFrame([order("o1", 1, 2, 2)], ORDERS)
    details = spark.createDataFrame([detail("o1", 1001, 2), detail("o1", 1002, 1),
                                     detail("other", 1001, 9)], DETAILS)
    facts = gold.fact_orders(orders, details, gold.dim_customer(spark.createDataFrame([], CUSTOMERS)),
                             gold.dim_payment_method(spark.createDataFrame([], PAYMENT_METHODS)),
                             gold.dim_date(orders), nothing_placed(spark))
    products = gold.dim_product(details.filter("product_id = 1001"))

    rows = gold.fact_order_products(details, facts, products)

    assertDataFrameEqual(rows, spark.createDataFrame(
        [("o1", 1001, 20261121, -1, -1, 1001, 2), ("o1", -1, 20261121, -1, -1, 1002, 1)],
        "order_id string, product_key int, order_date_id int, customer_key bigint,"
        " payment_method_key int, product_id int, quantity int"))


# --- history: customer versions (SCD type 2) and cancelled orders ------------------------------
CHANGED = CUSTOMERS + ", _changed_at timestamp"
CREATED = datetime(2025, 1, 1)


def customer(city: str, changed_at: datetime, customer_id: int = 1):
    return (customer_id, "Ann", "a@x.io", "5", city, CREATED, changed_at)


def run_versions(spark, dimension, changed=(), deleted=()):
    """One Gold run's dim_customer writes applied to `dimension` (as the MERGE by key does),
    stored as the table would be: run on run, the plans would otherwise nest."""
    rows = gold.customer_versions(spark.createDataFrame(list(changed), CHANGED),
                                  spark.createDataFrame(list(deleted), "customer_id int, _changed_at timestamp"),
                                  dimension)
    return dimension.join(rows.select("customer_key"), "customer_key", "left_anti").unionByName(rows).localCheckpoint()


def test_a_customer_changed_twice_keeps_three_versions_one_current(spark):
    first = gold.dim_customer(spark.createDataFrame([customer("Oslo", datetime(2026, 11, 1))[:-1]], CUSTOMERS))
    second = run_versions(spark, first, [customer("Bergen", datetime(2026, 11, 5))])
    third = run_versions(spark, second, [customer("Tromsø", datetime(2026, 11, 9))])

    versions = third.filter("customer_id = 1").orderBy("valid_from").collect()
    assert [(v.city, v.valid_from, v.valid_to, v.is_current) for v in versions] == [
        ("Oslo", CREATED, datetime(2026, 11, 5), False),
        ("Bergen", datetime(2026, 11, 5), datetime(2026, 11, 9), False),
        ("Tromsø", datetime(2026, 11, 9), None, True)]
    assert len({v.customer_key for v in versions}) == 3
    assert third.filter(F.col("customer_key") == gold.UNKNOWN).count() == 1


def test_an_unchanged_customer_writes_nothing_and_a_new_one_starts_at_its_creation(spark):
    first = gold.dim_customer(spark.createDataFrame([customer("Oslo", datetime(2026, 11, 1))[:-1]], CUSTOMERS))

    rows = gold.customer_versions(
        spark.createDataFrame([customer("Oslo", datetime(2026, 11, 5)), customer("Rome", datetime(2026, 11, 5), 2)],
                              CHANGED),
        spark.createDataFrame([], "customer_id int, _changed_at timestamp"), first).collect()

    assert [(r.customer_id, r.city, r.valid_from, r.is_current) for r in rows] == [(2, "Rome", CREATED, True)]


def test_a_deleted_customer_has_its_version_closed_and_later_orders_are_unknown(spark):
    first = gold.dim_customer(spark.createDataFrame([customer("Oslo", datetime(2026, 11, 1))[:-1]], CUSTOMERS))
    after = run_versions(spark, first, deleted=[(1, datetime(2026, 11, 5))])

    closed = after.filter("customer_id = 1").collect()
    assert [(v.valid_to, v.is_current) for v in closed] == [(datetime(2026, 11, 5), False)]
    orders = spark.createDataFrame([order("before", 1, 1, 1, date(2026, 11, 3)),
                                    order("after", 1, 1, 1, date(2026, 11, 7))], ORDERS)
    keys = {r.order_id: r.customer_key for r in gold.resolve_customer_version(orders, after).collect()}
    assert keys == {"before": closed[0].customer_key, "after": gold.UNKNOWN}


def test_an_order_joins_the_customer_version_current_at_its_time(spark):
    first = gold.dim_customer(spark.createDataFrame([customer("Oslo", datetime(2026, 11, 1))[:-1]], CUSTOMERS))
    dimension = run_versions(spark, first, [customer("Bergen", datetime(2026, 11, 5))])
    key = {r.city: r.customer_key for r in dimension.filter("customer_id = 1").collect()}
    orders = spark.createDataFrame([order("older than the customer", 1, 1, 1, date(2024, 6, 1)),
                                    order("in Oslo", 1, 1, 1, date(2026, 11, 3)),
                                    order("in Bergen", 1, 1, 1, date(2026, 11, 7))], ORDERS)

    resolved = {r.order_id: r.customer_key for r in gold.resolve_customer_version(orders, dimension).collect()}

    assert resolved == {"older than the customer": key["Oslo"], "in Oslo": key["Oslo"], "in Bergen": key["Bergen"]}


def test_a_cancelled_order_keeps_its_fact_marked_deleted_once(spark):
    orders = spark.createDataFrame([order("kept", 1, 1, 1), order("cancelled", 1, 1, 2)], ORDERS)
    details = spark.createDataFrame([detail("kept", 1001, 2), detail("cancelled", 1001, 1)], DETAILS)
    facts = gold.fact_orders(orders, details, gold.dim_customer(spark.createDataFrame([], CUSTOMERS)),
                             gold.dim_payment_method(spark.createDataFrame([], PAYMENT_METHODS)),
                             gold.dim_date(orders), nothing_placed(spark))
    recomputed = facts.filter("order_id = 'kept'")
    seen = datetime(2026, 11, 22, 9)

    marked = gold.cancelled_facts(facts, recomputed, spark.createDataFrame(
        [("cancelled", seen)], "order_id string, _changed_at timestamp"))
    again = gold.cancelled_facts(marked, recomputed, spark.createDataFrame(
        [("cancelled", datetime(2026, 11, 23))], "order_id string, _changed_at timestamp"))

    [row] = again.collect()
    assert (row.order_id, row.is_deleted, row.deleted_at, row.detail_count) == ("cancelled", True, seen, 1)
    assert marked.columns == facts.columns


def test_the_lifecycle_of_an_order_is_its_status_and_the_commits_that_moved_it(spark):
    placed_at, cancelled_at = datetime(2026, 11, 21, 8), datetime(2026, 11, 21, 9, 30)
    last_detail, raised = datetime(2026, 11, 21, 8, 0, 5), datetime(2026, 11, 21, 8, 0, 9)
    orders = spark.createDataFrame([order("complete", 1, 1, 2), order("raised then complete", 1, 1, 3, changed_at=raised),
                                    order("incomplete", 1, 1, 2), order("cancelled", 1, 1, 1, deleted_at=cancelled_at)],
                                   ORDERS)
    details = spark.createDataFrame([detail("complete", 1, 1), detail("complete", 2, 1, changed_at=last_detail),
                                     *[detail("raised then complete", product, 1) for product in (1, 2, 3)],
                                     detail("incomplete", 1, 1)], DETAILS)
    placed = spark.createDataFrame([(name, placed_at) for name in ("complete", "raised then complete", "cancelled")],
                                   PLACED)

    facts = gold.fact_orders(orders, details, gold.dim_customer(spark.createDataFrame([], CUSTOMERS)),
                             gold.dim_payment_method(spark.createDataFrame([], PAYMENT_METHODS)),
                             gold.dim_date(orders), placed)

    assertDataFrameEqual(
        facts.select("order_id", "status", "placed_at", "completed_at", "cancelled_at", "is_deleted"),
        spark.createDataFrame([
            ("complete", "complete", placed_at, last_detail, None, False),
            ("raised then complete", "complete", placed_at, raised, None, False),
            ("incomplete", "incomplete", placed_at, None, None, False),  # placed: its own commit, none kept
            ("cancelled", "cancelled", placed_at, None, cancelled_at, True)],
            "order_id string, status string, placed_at timestamp, completed_at timestamp,"
            " cancelled_at timestamp, is_deleted boolean"))
