"""The batch layers on the real stack: MariaDB -> Debezium -> Bronze (the CDC archive) ->
Silver -> Gold as Delta tables on MinIO: first run, re-run, increments, cancellations and
history, replays, bad rows and a job killed mid-write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import pytest
from confluent_kafka import Producer
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from batch import flows, paths
from batch.names import archive_location
from batch.store import delta_log, reads
from batch.tools.audit import LakeAudit
from batch.tools.maintain import maintain_lake
from batch.tools.lake_reader import LakeReader
from batch.tools.report import write_report
from batch.runs import LayerRun
from batch.session import lake_credentials
from cdc.topics import read_to_end
from config import Settings
from config.settings import REPO_ROOT
from batch.tools.lake_reader import expected_statuses
from source import database, generate
from source.traffic import ChaosMix, Truth, plan
from stack.scratch import cdc_caught_up, scratch_lake
from stack.services import all_services, minio_client
from tests.integration.browser import chromium_render
from tests.integration.scratch_stream import scratch_stream

CUSTOMERS = 2_000
ARTIFACTS = REPO_ROOT / "test-artifacts"
SILVER_TABLES = ("orders", "order_details", "customers", "payment_method", "orders_history",
                 "order_details_history")
GOLD_TABLES = ("dim_customer", "dim_payment_method", "dim_product", "dim_date", "fact_orders",
               "fact_order_products", "mart_daily_orders", "mart_payment_mix", "mart_top_products",
               "mart_customer_segments")
FOREIGN_KEYS = {  # fact -> (its column, dimension, the dimension's key)
    "fact_orders": [("customer_key", "dim_customer", "customer_key"),
                    ("payment_method_key", "dim_payment_method", "payment_method_key"),
                    ("order_date_id", "dim_date", "date_id")],
    "fact_order_products": [("product_key", "dim_product", "product_key"),
                            ("customer_key", "dim_customer", "customer_key"),
                            ("order_date_id", "dim_date", "date_id")],
}


@pytest.fixture(scope="module")
def lakehouse(settings: Settings, spark: SparkSession):
    """A scratch source database with reference data, its own Debezium connector and CDC
    topics, 1,000 orders (chaos on), and a lake of its own built from them by a first run.
    The tests share it (a run takes tens of seconds); each one's checks are relative to the
    state it finds."""
    bucket = f"t{uuid.uuid4().hex[:12]}"
    minio = minio_client(settings, "root")
    with scratch_lake(settings, bucket) as lake_settings, \
            scratch_stream(lake_settings, bucket, workers=0) as (scratch, _):
        connection = database.connect(scratch)
        manifest = add_orders(connection, 1_000, seed=1, chaos=ChaosMix())
        first_run = run_all(spark, scratch, connection)
        yield Lakehouse(scratch, connection, minio, bucket, first_run, manifest)
        connection.close()


@dataclass
class Lakehouse:
    settings: Settings
    connection: object
    minio: object
    bucket: str
    first_run: dict
    manifest: dict


def add_orders(connection, orders: int, *, seed: int, chaos: ChaosMix = ChaosMix.off()) -> dict:
    truth = Truth()
    generate.run(connection, plan(orders, seed=seed, customers=CUSTOMERS, chaos=chaos),
                 total_orders=orders, rate=0, truth=truth, progress=False)
    return truth.manifest()


def run_all(spark: SparkSession, settings: Settings, connection, *, sync: bool = True) -> dict[str, LayerRun]:
    """Every layer once, after Debezium has captured what was committed before (`sync`: a
    marker change waited for on the CDC topics, which the lake then applies too)."""
    if sync:
        cdc_caught_up(settings, connection)
    return {layer.__name__: layer(spark, settings) for layer in flows.CHANGE_LOG}


def written(run: LayerRun, table: str) -> int:
    """Rows the run wrote to `table` (a table written by two of a layer's jobs: both)."""
    return sum(t.written for t in run.tables if t.table == table)


def read(run: LayerRun, table: str) -> int:
    return next(t.read for t in run.tables if t.table == table)


def gold_tables(spark: SparkSession, settings: Settings) -> dict[str, DataFrame]:
    return {name: reads.read(spark, paths.path(settings, "gold", name)) for name in GOLD_TABLES}


def source_count(connection, table: str) -> int:
    return database.count_rows(connection, table)


VALID_ORDERS = ("o.num_products > 0 AND o.`timestamp` <= NOW(3) + INTERVAL 5 MINUTE"
                " AND o.customer_id IN (SELECT id FROM customers)")


def valid_source_rows(connection) -> tuple[int, int]:
    """Orders and order products the star should hold: the source's rows that pass Silver's rules."""
    cursor = connection.cursor()
    cursor.execute(f"SELECT COUNT(*) FROM orders o WHERE {VALID_ORDERS}")
    (orders,) = cursor.fetchone()
    cursor.execute("SELECT COUNT(*) FROM order_details d JOIN orders o ON o.id = d.order_id"
                   f" WHERE d.quantity > 0 AND {VALID_ORDERS}")
    (products,) = cursor.fetchone()
    return orders, products


def assert_star_matches_source(spark: SparkSession, settings: Settings, connection) -> None:
    tables = gold_tables(spark, settings)
    orders, products = valid_source_rows(connection)
    assert tables["fact_orders"].filter("NOT is_deleted").count() == orders
    assert tables["fact_order_products"].count() == products
    current = tables["dim_customer"].filter("is_current OR customer_key = -1")
    assert current.count() == source_count(connection, "customers") + 1  # + unknown
    assert tables["dim_customer"].groupBy("customer_id").agg(F.count_if("is_current").alias("n")) \
        .filter("customer_id IS NOT NULL AND n > 1").count() == 0
    assert tables["dim_payment_method"].count() == source_count(connection, "payment_method") + 1
    assert_marts_match_facts(tables)
    for fact, keys in FOREIGN_KEYS.items():
        for column, dimension, key in keys:
            dangling = tables[fact].join(tables[dimension], tables[fact][column] == tables[dimension][key],
                                         "left_anti")
            assert dangling.count() == 0, f"{fact}.{column} not in {dimension}"
    complete = tables["fact_orders"].filter("is_complete").count()
    assert 0 < complete < tables["fact_orders"].count()  # chaos leaves some orders incomplete


def assert_lifecycle_matches_manifest(spark: SparkSession, settings: Settings, manifest: dict) -> None:
    """Every order of the manifest in fact_orders with the status it ended in."""
    facts = {row.order_id: row.status for row in gold_tables(spark, settings)["fact_orders"].collect()}
    expected = expected_statuses(manifest)
    assert {order: facts.get(order) for order in expected} == expected
    daily = gold_tables(spark, settings)["mart_daily_orders"].agg(F.sum("cancelled")).first()[0]
    assert daily == len(manifest["cancelled"]) > 0


def assert_marts_match_facts(tables: dict[str, DataFrame]) -> None:
    facts = tables["fact_orders"]
    daily = tables["mart_daily_orders"].agg(*[F.sum(c).alias(c) for c in ("orders", "completed", "cancelled")]).first()
    assert (daily["orders"], daily["completed"], daily["cancelled"]) == (
        facts.count(), facts.filter("is_complete AND NOT is_deleted").count(), facts.filter("is_deleted").count())
    kept = facts.filter("NOT is_deleted")
    assert tables["mart_payment_mix"].agg(F.sum("orders")).first()[0] == kept.count()
    assert tables["mart_customer_segments"].count() == kept.select("customer_id").distinct().count()
    assert tables["mart_top_products"].filter("rank > 10").count() == 0


def test_first_run_builds_the_star_and_a_rerun_changes_nothing(spark, lakehouse):
    settings, connection, first = lakehouse.settings, lakehouse.connection, lakehouse.first_run

    assert read(first["silver"], "orders") == source_count(connection, "orders") + len(lakehouse.manifest["cancelled"])
    assert read(first["silver"], "customers") == CUSTOMERS
    assert first["silver"].total("quarantined") == 0
    assert_star_matches_source(spark, settings, connection)
    assert_lifecycle_matches_manifest(spark, settings, lakehouse.manifest)
    before = {name: table.collect() for name, table in gold_tables(spark, settings).items()}
    versions = {name: delta_log.version(spark, paths.path(settings, layer, name))
                for layer, names in (("silver", SILVER_TABLES), ("gold", GOLD_TABLES)) for name in names}

    again = run_all(spark, settings, connection, sync=False)

    assert [again[layer].total("written") for layer in again] == [0, 0, 0]
    for name, table in gold_tables(spark, settings).items():
        assertDataFrameEqual(table, before[name])
    assert versions == {name: delta_log.version(spark, paths.path(settings, layer, name))
                        for layer, names in (("silver", SILVER_TABLES), ("gold", GOLD_TABLES)) for name in names}


@dataclass
class SecondRun:
    runs: dict[str, LayerRun]
    orders_before: int
    new_details: int


# Two orders whose every change lands between two lake runs (one run applies both: the checks
# are per order): one cancelled, one raised from one product to two.
SHORT_LIVED = ("INSERT INTO orders VALUES ('gone-before-the-lake', 5, 1, 2, 1, NOW(3))",
               "INSERT INTO order_details VALUES ('gone-before-the-lake', 1001, 1)",
               "DELETE FROM order_details WHERE order_id = 'gone-before-the-lake'",
               "DELETE FROM orders WHERE id = 'gone-before-the-lake'",
               "INSERT INTO orders VALUES ('raised', 5, 1, 2, 1, NOW(3))",
               "INSERT INTO order_details VALUES ('raised', 1001, 1)",
               "UPDATE orders SET num_products = 2 WHERE id = 'raised'",
               "INSERT INTO order_details VALUES ('raised', 1002, 3)")
SHORT_LIVED_RECORDS = len(SHORT_LIVED) + 2  # each deletion's tombstone too
SHORT_LIVED_HISTORY = 4  # orders_history: each order's insert, the raise, the cancellation


@pytest.fixture(scope="module")
def second_run(spark, lakehouse) -> SecondRun:
    """100 new orders of customers the lake knows, and the two short-lived orders, in one lake run
    (a run costs a minute: the tests of what it wrote share it)."""
    connection = lakehouse.connection
    orders, details = source_count(connection, "orders"), source_count(connection, "order_details")
    add_orders(connection, 100, seed=2)
    new_details = source_count(connection, "order_details") - details
    cursor = connection.cursor()
    for statement in SHORT_LIVED:
        cursor.execute(statement)
    return SecondRun(run_all(spark, lakehouse.settings, connection), orders, new_details)


def test_new_orders_alone_flow_through(spark, lakehouse, second_run):
    settings, connection, runs = lakehouse.settings, lakehouse.connection, second_run.runs
    new_details = second_run.new_details

    assert written(runs["bronze"], "cdc_raw") == 100 + new_details + SHORT_LIVED_RECORDS + 1  # + the sync marker
    assert written(runs["silver"], "orders") == 100 + 2
    assert written(runs["silver"], "orders_history") == 100 + SHORT_LIVED_HISTORY
    assert "customers" not in [t.table for t in runs["silver"].tables]  # no record of theirs: not read
    assert written(runs["gold"], "fact_orders") == 100 + 2
    assert written(runs["gold"], "fact_order_products") == new_details + 2  # the raised order's two
    assert "dim_customer" not in [t.table for t in runs["gold"].tables]  # Silver customers unchanged
    assert source_count(connection, "orders") == second_run.orders_before + 100 + 1
    assert_star_matches_source(spark, settings, connection)


def test_an_order_cancelled_before_any_lake_run_is_counted_cancelled(spark, lakehouse, second_run):
    settings = lakehouse.settings
    tables = gold_tables(spark, settings)
    [fact] = tables["fact_orders"].filter("order_id = 'gone-before-the-lake'").collect()
    assert (fact.status, fact.is_deleted, fact.detail_count) == ("cancelled", True, 0)
    assert fact.cancelled_at is not None and fact.placed_at <= fact.cancelled_at
    assert tables["fact_order_products"].filter("order_id = 'gone-before-the-lake'").count() == 0
    [silver_row] = reads.read(spark, paths.path(settings, "silver", "orders")).filter(
        "order_id = 'gone-before-the-lake'").collect()
    assert silver_row.is_deleted and silver_row.deleted_at == fact.cancelled_at
    assert_marts_match_facts(tables)


def test_a_raised_order_keeps_both_versions_and_completes_once(spark, lakehouse, second_run):
    settings = lakehouse.settings
    history = reads.read(spark, paths.path(settings, "silver", "orders_history")).filter("order_id = 'raised'")
    versions = history.orderBy("source_position").collect()
    assert [(v.num_products, v.is_deleted) for v in versions] == [(1, False), (2, False)]
    assert versions[0].valid_to == versions[1].valid_from and versions[1].valid_to is None
    details = reads.read(spark, paths.path(settings, "silver", "order_details_history")).filter("order_id = 'raised'")
    assert details.count() == 2
    [fact] = gold_tables(spark, settings)["fact_orders"].filter("order_id = 'raised'").collect()
    assert (fact.status, fact.num_products, fact.detail_count, fact.total_quantity) == ("complete", 2, 2, 4)
    assert fact.placed_at == versions[0].valid_from and fact.completed_at >= versions[1].valid_from


@pytest.mark.lake_long
def test_replayed_cdc_records_change_no_table_and_a_foreign_record_is_quarantined(spark, lakehouse):
    """Kafka Connect repeats records after a restart, at new offsets: the same changes again.
    A record that is no Debezium change goes to the quarantine with its reason."""
    settings, connection = lakehouse.settings, lakehouse.connection
    add_orders(connection, 30, seed=4, chaos=ChaosMix())
    run_all(spark, settings, connection)
    versions = {name: delta_log.version(spark, paths.path(settings, layer, name))
                for layer, names in (("silver", SILVER_TABLES), ("gold", GOLD_TABLES)) for name in names}
    replayed = replay_newest(settings, per_partition=40)
    producer = Producer(settings.kafka_client_config())
    producer.produce(settings.cdc_topic("orders"), key=b'"foreign"', value=b"this is not Debezium JSON")
    producer.flush(30)

    runs = run_all(spark, settings, connection, sync=False)

    assert written(runs["bronze"], "cdc_raw") == replayed + 1 > 1
    assert [runs[layer].total("written") for layer in ("silver", "gold")] == [0, 0]
    assert versions == {name: delta_log.version(spark, paths.path(settings, layer, name))
                        for layer, names in (("silver", SILVER_TABLES), ("gold", GOLD_TABLES)) for name in names}
    assert runs["silver"].total("quarantined") == 1
    quarantined = reads.read(spark, paths.path(settings, "silver", "cdc_quarantine")).filter("key = '\"foreign\"'")
    assert [(row.value, row._reason) for row in quarantined.collect()] == [("this is not Debezium JSON",
                                                                           "not_debezium_json")]


def replay_newest(settings: Settings, per_partition: int) -> int:
    """Copy each CDC partition's newest records to the end of the same partition, as Kafka
    Connect does after a restart; the records copied."""
    producer = Producer(settings.kafka_client_config())
    copied = 0
    for table in ("orders", "order_details", "customers", "payment_method"):
        for message in read_to_end(settings, settings.cdc_topic(table), raw=True, last=per_partition):
            producer.produce(message.topic, key=message.key, value=message.value, partition=message.partition)
            copied += 1
    producer.flush(30)
    return copied


@pytest.mark.lake_long
def test_bad_rows_are_quarantined_with_the_rules_they_broke(spark, lakehouse):
    settings, connection = lakehouse.settings, lakehouse.connection
    cursor = connection.cursor()
    cursor.execute("SELECT id FROM orders LIMIT 1")
    (good_order,) = cursor.fetchone()
    cursor.execute("INSERT INTO orders VALUES ('bad-size', 5, 1, 2, 0, NOW(3)),"
                   " ('bad-future', 5, 1, 2, 1, NOW(3) + INTERVAL 2 DAY)")
    cursor.execute("INSERT INTO order_details VALUES (%s, 9999, -3)", (good_order,))

    runs = run_all(spark, settings, connection)

    quarantine = {table: reads.read(spark, paths.path(settings, "silver", f"{table}_quarantine"))
                  for table in ("orders", "order_details")}
    assert sorted((r["order_id"], r["_broken_rules"]) for r in quarantine["orders"].collect()
                  if r["order_id"].startswith("bad-")) == [
        ("bad-future", ["order_ts_not_future"]), ("bad-size", ["num_products_positive"])]
    assert [(r["order_id"], r["_broken_rules"]) for r in quarantine["order_details"].filter("product_id = 9999")
            .collect()] == [(good_order, ["quantity_positive"])]
    orders_run = next(t for t in runs["silver"].tables if t.table == "orders")
    assert (orders_run.read, orders_run.quarantined, orders_run.written) == (2, 2, 0)
    silver_orders = reads.read(spark, paths.path(settings, "silver", "orders"))
    assert silver_orders.filter("order_id LIKE 'bad-%'").count() == 0
    assert gold_tables(spark, settings)["fact_orders"].filter("order_id LIKE 'bad-%'").count() == 0
    assert_star_matches_source(spark, settings, connection)


@pytest.mark.lake_long
def test_nulls_and_unknown_customers_are_quarantined_with_their_reasons(spark, lakehouse):
    """The source schema forbids NULLs; a relaxed copy of it (as a careless migration would
    leave it) lets them in, and the change log must still carry them for Silver to judge."""
    settings, connection = lakehouse.settings, lakehouse.connection
    cursor = connection.cursor()
    cursor.execute("ALTER TABLE orders MODIFY customer_id INT NULL")
    cursor.execute("ALTER TABLE order_details MODIFY quantity INT NULL")
    cursor.execute("SELECT id FROM orders WHERE num_products > 0 LIMIT 1")
    (good_order,) = cursor.fetchone()
    cursor.execute("INSERT INTO orders VALUES ('null-customer', NULL, 1, 2, 1, NOW(3)),"
                   " ('unknown-customer', 987654321, 1, 2, 1, NOW(3))")
    cursor.execute("INSERT INTO order_details VALUES ('unknown-customer', 1001, 1), (%s, 9998, NULL)",
                   (good_order,))

    runs = run_all(spark, settings, connection)

    quarantine = {table: reads.read(spark, paths.path(settings, "silver", f"{table}_quarantine"))
                  for table in ("orders", "order_details")}
    assert sorted((r["order_id"], r["_broken_rules"]) for r in quarantine["orders"].collect()
                  if r["order_id"].endswith("-customer")) == [
        ("null-customer", ["customer_id_present", "customer_known"]), ("unknown-customer", ["customer_known"])]
    assert [r["_broken_rules"] for r in quarantine["order_details"].filter("product_id = 9998").collect()] == [
        ["quantity_present", "quantity_positive"]]
    assert runs["silver"].total("quarantined") == 3
    facts = gold_tables(spark, settings)
    assert facts["fact_orders"].filter("order_id LIKE '%-customer'").count() == 0
    assert facts["fact_order_products"].filter("order_id = 'unknown-customer'").count() == 0
    assert_star_matches_source(spark, settings, connection)

    # the customer arrives late: the next run checks the order quarantined for it again
    cursor.execute("INSERT INTO customers VALUES (987654321, 'Late Comer', 'late@example.com', '555',"
                   " 'Oslo', NOW(3))")
    run_all(spark, settings, connection)

    facts = gold_tables(spark, settings)
    late = facts["fact_orders"].filter("order_id = 'unknown-customer'").collect()
    version = facts["dim_customer"].filter("customer_id = 987654321").collect()
    assert [row["customer_key"] for row in late] == [row["customer_key"] for row in version] != [-1]
    assert facts["fact_order_products"].filter("order_id = 'unknown-customer'").count() == 1
    assert_star_matches_source(spark, settings, connection)


@pytest.mark.lake_long
def test_a_customer_changed_twice_keeps_its_versions_and_a_cancelled_order_stays(spark, lakehouse):
    settings, connection = lakehouse.settings, lakehouse.connection
    cursor = connection.cursor()
    cursor.execute("SELECT id, city FROM customers ORDER BY id LIMIT 1")
    customer, first_city = cursor.fetchone()
    newest_fact = gold_tables(spark, settings)["fact_orders"].filter("NOT is_deleted").orderBy(F.desc("order_ts"))
    cancelled = newest_fact.first()["order_id"]
    cursor.execute("UPDATE customers SET city = 'First Move' WHERE id = %s", (customer,))
    far = 5_000_001
    cursor.execute("INSERT INTO customers VALUES (%s, 'Far Away', 'far@example.com', '555', 'Tromsø', NOW(3))",
                   (far,))
    assert written(run_all(spark, settings, connection)["silver"], "customers") == 2
    cursor.execute("INSERT INTO orders VALUES ('after-first-move', %s, 1, 2, 1, NOW(3))", (customer,))
    cursor.execute("INSERT INTO order_details VALUES ('after-first-move', 1001, 2)")
    run_all(spark, settings, connection)  # the order's fact is written while 'First Move' is current
    facts_before = gold_tables(spark, settings)["fact_orders"].count()

    cursor.execute("UPDATE customers SET city = 'Second Move' WHERE id = %s", (customer,))
    cursor.execute("DELETE FROM customers WHERE id = %s", (far,))
    cursor.execute("DELETE FROM order_details WHERE order_id = %s", (cancelled,))
    cursor.execute("DELETE FROM orders WHERE id = %s", (cancelled,))
    runs = run_all(spark, settings, connection)

    assert written(runs["silver"], "customers") == 2  # the update; the deletion, kept and marked
    [far_row] = reads.read(spark, paths.path(settings, "silver", "customers")).filter(F.col("customer_id") == far).collect()
    assert far_row["is_deleted"] and far_row["deleted_at"] is not None

    tables = gold_tables(spark, settings)
    versions = tables["dim_customer"].filter(F.col("customer_id") == customer).orderBy("valid_from").collect()
    assert [(v["city"], v["is_current"]) for v in versions] == [
        (first_city, False), ("First Move", False), ("Second Move", True)]
    assert [v["valid_to"] for v in versions[:-1]] == [v["valid_from"] for v in versions[1:]]
    assert versions[-1]["valid_to"] is None
    [placed] = tables["fact_orders"].filter("order_id = 'after-first-move'").collect()
    assert placed["customer_key"] == versions[1]["customer_key"]
    [gone] = tables["fact_orders"].filter(F.col("order_id") == cancelled).collect()
    assert gone["is_deleted"] and gone["status"] == "cancelled" and gone["num_products"] > 0
    assert gone["cancelled_at"] == gone["deleted_at"] is not None
    assert tables["fact_orders"].count() == facts_before
    assert tables["fact_order_products"].filter(F.col("order_id") == cancelled).count() == 0
    assert written(runs["gold"], "dim_customer") == 3  # one version closed and one opened; the far one closed
    assert_star_matches_source(spark, settings, connection)


@pytest.mark.lake_long
def test_the_audit_finds_a_row_changed_behind_the_connectors_back(spark, lakehouse):
    settings, connection = lakehouse.settings, lakehouse.connection
    run_all(spark, settings, connection)
    assert all(table.clean for table in LakeAudit(spark, settings).run())
    cursor = connection.cursor()
    cursor.execute("SELECT id, num_products FROM orders ORDER BY id LIMIT 1")
    order, num_products = cursor.fetchone()
    mariadb = next(service for service in all_services(settings) if service.name == "mariadb")

    def behind_the_connectors_back(value: int) -> None:
        """Change the order with the binlog off for the session (root only): Debezium never sees it."""
        changed = mariadb.root_sql(f"SET SESSION sql_log_bin = 0; UPDATE `{settings.mysql_database}`.orders"
                                   f" SET num_products = {value} WHERE id = '{order}'")
        assert changed.returncode == 0, changed.stderr

    behind_the_connectors_back(num_products + 5)
    try:
        audited = subprocess.run([sys.executable, "-m", "batch", "audit"], cwd=REPO_ROOT, capture_output=True,
                                 text=True, timeout=600, env={**os.environ, **settings.as_env()})
    finally:
        behind_the_connectors_back(num_products)

    assert audited.returncode == 1, audited.stdout + audited.stderr[-3000:]
    lines = {line.split()[0]: line for line in audited.stdout.splitlines() if line.startswith(("silver.", "gold."))}
    assert "DRIFT" in lines["silver.orders"] and "different 1" in lines["silver.orders"]
    assert "DRIFT" in lines["gold.fact_orders"] and "different 1" in lines["gold.fact_orders"]
    assert all(" ok " in line for table, line in lines.items() if table not in ("silver.orders", "gold.fact_orders"))
    assert "audit: drift in silver.orders, gold.fact_orders" in audited.stdout
    assert all(table.clean for table in LakeAudit(spark, settings).run())  # put back: clean again


@pytest.mark.lake_long
def test_maintenance_compacts_and_vacuums_and_every_table_stays_equal(spark, lakehouse):
    settings = lakehouse.settings
    add_orders(lakehouse.connection, 50, seed=30)
    run_all(spark, settings, lakehouse.connection)  # every layer has read its input's change feed to the end
    before = {name: table.collect() for name, table in gold_tables(spark, settings).items()}

    done = maintain_lake(spark, settings, ["gold"], retain_hours=0)  # Gold only: each table takes seconds

    fact = next(m for m in done if m.location.endswith("/gold/facts/fact_orders"))
    assert fact.files_after < fact.files_before and fact.stored_after < fact.stored_before
    assert sum(m.stored_after for m in done) < sum(m.stored_before for m in done)
    assert {m.location.rsplit("/", 1)[1] for m in done} == set(GOLD_TABLES)
    for name, table in gold_tables(spark, settings).items():
        assertDataFrameEqual(table, before[name])
    again = run_all(spark, settings, lakehouse.connection, sync=False)
    assert [again[layer].total("written") for layer in again] == [0, 0, 0]


class ChartDom(HTMLParser):
    """Per report section: how many plotly SVGs it drew, and the texts on its bars."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.section: str | None = None
        self.svgs: dict[str, int] = {}
        self.bar_texts: dict[str, list[str]] = {}
        self._in_bar_text = 0
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "section":
            self.section = attributes.get("id")
        elif self.section and tag == "svg" and "main-svg" in classes:
            self.svgs[self.section] = self.svgs.get(self.section, 0) + 1
        elif self.section and "bartext" in classes:
            self._in_bar_text += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "text" and self._in_bar_text:
            self._in_bar_text -= 1

    def handle_data(self, data: str) -> None:
        if self._in_bar_text and self.section and data.strip():
            self.bar_texts.setdefault(self.section, []).append(data.strip())


def test_the_report_draws_the_marts_figures_in_a_browser(spark, lakehouse, tmp_path):
    settings = lakehouse.settings  # its marts as the last run left them: the page and Spark read the same commits
    ARTIFACTS.mkdir(exist_ok=True)

    out = write_report(LakeReader(settings), tmp_path / "lake.html")
    dom = ChartDom(chromium_render(out.as_uri(), ARTIFACTS / "lake-report.png", tmp_path / "chromium", 3000))

    assert set(dom.svgs) == {"daily", "payment-mix", "top-products", "segments"}
    tables = gold_tables(spark, settings)
    latest = tables["mart_daily_orders"].orderBy(F.desc("date")).first()
    assert {str(latest["orders"]), str(latest["completed"])} <= set(dom.bar_texts["daily"])
    best = tables["mart_top_products"].filter(F.col("date") == latest["date"]).filter("rank = 1").first()
    assert str(best["quantity"]) in dom.bar_texts["top-products"]
    new_customers = tables["mart_customer_segments"].filter("segment = 'new'").count()
    assert str(new_customers) in dom.bar_texts["segments"]


def new_parquet(minio, bucket: str, known: set[str]) -> str | None:
    for entry in minio.list_objects(bucket, prefix="gold/", recursive=True):
        if entry.object_name.endswith(".parquet") and entry.object_name not in known:
            return entry.object_name
    return None


KILLED_JOB_SEEDS = {"gold": 10, "deferred": 13}  # up to three attempts each


@pytest.mark.lake_long
@pytest.mark.parametrize("layer", ["gold", "deferred"])  # deferred: what runs beside the fast lane
def test_a_gold_job_killed_mid_write_leaves_the_last_good_version_and_reruns(spark, lakehouse, tmp_path, layer):
    settings, connection, minio, bucket = (lakehouse.settings, lakehouse.connection, lakehouse.minio,
                                           lakehouse.bucket)
    env = {**os.environ, **settings.as_env()}
    for attempt in range(3):  # the kill must land between a data file and its commit
        add_orders(connection, 100, seed=KILLED_JOB_SEEDS[layer] + attempt)  # each layer's orders its own: one lakehouse
        cdc_caught_up(settings, connection)
        flows.bronze(spark, settings)
        flows.silver(spark, settings)
        before = {name: table.collect() for name, table in gold_tables(spark, settings).items()}
        known = {entry.object_name for entry in minio.list_objects(bucket, prefix="gold/", recursive=True)}
        log = (tmp_path / f"gold-{attempt}.log").open("w")
        job = subprocess.Popen([sys.executable, "-m", "batch", layer], cwd=REPO_ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 240
        while (landed := new_parquet(minio, bucket, known)) is None and job.poll() is None:
            assert time.monotonic() < deadline, f"{layer} job wrote nothing in 240 s"
            time.sleep(0.02)
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        assert landed is not None, (f"{layer} job exited ({job.returncode}) before writing a file:\n"
                                    + (tmp_path / f"gold-{attempt}.log").read_text()[-3000:])
        table = landed.split("/")[2]  # gold/<dimensions|facts>/<table>/...
        committed = reads.read(spark, paths.path(settings, "gold", table)).inputFiles()
        if not any(path.endswith(landed.split("/")[-1]) for path in committed):
            break  # killed after the file, before its commit: the case under test
        flows.gold(spark, settings)  # killed too late; finish and try again
    else:
        pytest.fail("three kills all landed after a commit")

    for name, rows in gold_tables(spark, settings).items():  # the last good version, readable
        if name == table:
            assertDataFrameEqual(rows, before[name])
    rerun = flows.gold(spark, settings)

    assert written(rerun, "fact_orders") >= 100
    assert_star_matches_source(spark, settings, connection)


@pytest.mark.lake_long
def test_spark_submit_runs_a_layer_with_the_printed_properties(spark, lakehouse, tmp_path):
    settings, connection = lakehouse.settings, lakehouse.connection
    flows.bronze(spark, settings)
    add_orders(connection, 10, seed=20)
    cdc_caught_up(settings, connection)
    bin_dir = Path(sys.executable).parent
    properties = tmp_path / "spark-submit.conf"
    properties.write_text(subprocess.run([sys.executable, "-m", "batch.session"], cwd=REPO_ROOT, check=True,
                                         capture_output=True, text=True, env={**os.environ, **settings.as_env()}).stdout)

    submitted = subprocess.run([str(bin_dir / "spark-submit"), "--properties-file", str(properties),
                                "batch/__main__.py", "bronze"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
                               env={**os.environ, **settings.as_env(), **lake_credentials(settings),
                                    "PYSPARK_PYTHON": sys.executable,
                                    "PATH": f"{bin_dir}:{os.environ['PATH']}"})

    output = submitted.stdout + submitted.stderr  # spark-submit sends the job's stderr to stdout
    assert submitted.returncode == 0, output[-3000:]
    assert "bronze.cdc_raw: read" in output
    assert "batch done in" in output
    assert written(flows.bronze(spark, settings), "cdc_raw") == 0  # the submitted job took them all
    archived = reads.read(spark, archive_location(settings)).filter(F.col("topic") == settings.cdc_topic("orders"))
    assert archived.filter("op = 'c'").select("key").distinct().count() >= source_count(connection, "orders")
