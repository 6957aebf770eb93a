from pyspark.testing import assertDataFrameEqual

from batch.transforms import audit

ROWS = "order_id string, num_products int, note string"


def test_drift_names_missing_extra_and_different_keys_and_nulls_count_as_values(spark):
    source = spark.createDataFrame([("same", 1, None), ("changed", 2, "x"), ("only in source", 1, "x"),
                                    ("null now", 1, None)], ROWS)
    lake = spark.createDataFrame([("same", 1, None), ("changed", 3, "x"), ("only in lake", 1, "x"),
                                  ("null now", 1, "was set")], ROWS)

    differences = audit.drift(source, lake, ["order_id"], ["num_products", "note"])

    assertDataFrameEqual(differences, spark.createDataFrame(
        [("changed", "different"), ("only in source", "missing"), ("only in lake", "extra"),
         ("null now", "different")], "order_id string, kind string"))
    assert audit.counts(differences) == {"missing": 1, "extra": 1, "different": 2}


def test_no_drift_counts_zero_of_each_kind(spark):
    rows = spark.createDataFrame([("a", 1, "x")], ROWS)
    assert audit.counts(audit.drift(rows, rows, ["order_id"], ["num_products", "note"])) == {
        "missing": 0, "extra": 0, "different": 0}


def test_expected_facts_count_live_details_and_call_an_order_complete_when_all_arrived(spark):
    orders = spark.createDataFrame([("full", 7, 1, 2), ("short", 7, 1, 3)],
                                   "order_id string, customer_id int, payment_method_id int, num_products int")
    details = spark.createDataFrame([("full", 1, 2), ("full", 2, 1), ("short", 1, 5)],
                                    "order_id string, product_id int, quantity int")

    facts = {row.order_id: (row.detail_count, row.total_quantity, row.status)
             for row in audit.expected_facts(orders, details).collect()}

    assert facts == {"full": (2, 3, "complete"), "short": (1, 5, "incomplete")}
