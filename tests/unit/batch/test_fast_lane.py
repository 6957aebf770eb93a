"""The fast lane's pure parts (batch.fastlane: archive rows, Silver, facts in Polars), each held
equal to the Spark transforms on the same input where both engines have one: the rules and
the facts' formula are stated once (batch.rules) and must mean the same in both."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pyspark.sql import functions as F

from batch.fastlane import facts as fast_facts
from batch.fastlane import silver as fast_silver
from batch.fastlane.archive import ARCHIVE_DDL, Record, archive, rearchive, row_changes
from batch.fastlane import delta
from batch.fastlane.delta import Lake
from batch.fastlane.lane import FastLane, reaches_back
from batch.fastlane.lease import LEASE_S, fresh
from batch.rules import CUSTOMERS, ORDER_DETAILS, ORDERS, SOURCE_POSITION, SilverTable, polars_sql
from batch.transforms import changes, gold, silver

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
COMMITTED = datetime(2026, 11, 20, 9, 31, tzinfo=timezone.utc)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def envelope(op: str, image: dict, pos: int, *, row: int = 0, snapshot: str | None = None, wrapped=False) -> bytes:
    source = {"file": "mysql-bin.000003", "pos": pos, "row": row, "ts_ms": ms(COMMITTED) + pos,
              **({"snapshot": snapshot} if snapshot else {})}
    payload = {"before": image if op == "d" else None, "after": None if op == "d" else image, "source": source,
               "op": op, "ts_ms": ms(COMMITTED) + pos + 5}
    return json.dumps({"schema": {}, "payload": payload} if wrapped else payload).encode()


def records(topic: str, values: list[bytes | None]) -> list[Record]:
    return [Record(topic, 0, offset, None, value, ms(COMMITTED)) for offset, value in enumerate(values)]


def order(order_id, *, customer_id=7, num_products=2, at=datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc), **extra):
    return {"id": order_id, "customer_id": customer_id, "store_id": 3, "payment_method_id": 1,
            "num_products": num_products, "timestamp": None if at is None else ms(at), **extra}


def test_a_record_is_archived_as_it_came_with_its_envelope_beside_in_either_json_shape():
    values = [envelope("c", order("o1"), 100), envelope("u", order("o1"), 200, row=1, wrapped=True), None,
              b"\xffnot json"]

    rows = archive(records("orders", values), NOW).rows

    assert rows["op"].to_list() == ["c", "u", None, None]
    assert rows["source_pos"].to_list() == [100, 200, None, None]
    assert rows["source_row"].to_list() == [0, 1, None, None]
    assert rows["source_ts"][0] == COMMITTED.replace(microsecond=100_000)
    assert rows["captured_at"][0] == COMMITTED.replace(microsecond=105_000)
    assert rows["value"][2] is None and rows["value"][3] is not None and rows["archived_at"][0] == NOW


def test_a_replayed_change_counts_once_and_a_delete_keeps_its_last_image():
    values = [envelope("c", order("o1", num_products=1), 100), envelope("c", order("o1", num_products=1), 100),
              envelope("d", order("o1", num_products=1), 300)]

    found = row_changes(archive(records("orders", values), NOW), "orders", ORDERS.image_columns, ("id",))

    assert found["_op"].to_list() == ["c", "d"] and found["_deleted"].to_list() == [False, True]
    assert found["num_products"].to_list() == ["1", "1"]
    assert found["_position"][0] == changes.position_text(3, 100)
    assert found["timestamp"][0] == datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc)


def test_a_polars_rule_reads_a_quoted_name_and_a_regular_expression_as_spark_does():
    assert polars_sql("cast(`timestamp` AS date)") == 'cast("timestamp" AS date)'
    assert polars_sql(r"email RLIKE '^[^@\\s]+$'") == r"email RLIKE '^[^@\s]+$'"


def spark_silver(spark, rows: pl.DataFrame, table: SilverTable, known: list[int]) -> tuple[list, list]:
    """Silver's valid rows and quarantine by the Spark transforms, as sorted dicts."""
    archived = spark.createDataFrame(rows.rows(), ARCHIVE_DDL)
    columns = [*table.image_columns]
    found = changes.row_changes(archived, table.name, columns, table.bronze_keys)
    for name in table.looked_up:
        found = found.withColumn(name, F.lit(None).cast("timestamp"))
    newest = changes.newest_per_key(silver.with_first_change(silver.conform(found, table), table.keys), table.keys,
                                    silver.SOURCE_POSITION)
    checked = silver.check_table(newest, table, NOW, {"customers": spark.createDataFrame(
        [(key,) for key in known], "customer_id int")})
    return (sorted_rows(from_spark(silver.valid(checked, table)), table),
            sorted((tuple(row) for row in silver.quarantined(checked).select(*table.keys, "_broken_rules").collect()),
                   key=nulls_first))


def polars_silver(rows: pl.DataFrame, table: SilverTable, known: list[int]) -> tuple[list, list]:
    archived = rearchive(rows)
    found = row_changes(archived, table.name, table.image_columns, table.bronze_keys)
    for name in table.looked_up:
        found = found.with_columns(pl.lit(None, pl.Datetime("us", "UTC")).alias(name))
    newest = fast_silver.newest_per_key(fast_silver.with_first_change(fast_silver.conform(found, table), table.keys),
                                        table.keys)
    checked = fast_silver.check(newest, table, NOW, {"customers": pl.Series(known, dtype=pl.Int32)})
    bad = fast_silver.quarantined(checked)
    return (sorted_rows(fast_silver.valid(checked), table),
            sorted(((*row[:-1], list(row[-1])) for row in bad.select(*table.keys, "_broken_rules").iter_rows()),
                   key=nulls_first))


def from_spark(frame) -> pl.DataFrame:
    """A Spark frame's rows in Polars, its timestamps as UTC instants (the session's zone is UTC)."""
    rows = pl.from_pandas(frame.toPandas())
    return rows.with_columns(pl.col(name).dt.replace_time_zone("UTC") for name, dtype in rows.schema.items()
                             if isinstance(dtype, pl.Datetime) and dtype.time_zone is None)


def nulls_first(row: tuple) -> tuple:
    """A row's sort key where a null key sorts before any value."""
    return tuple((value is not None, value if value is not None else "") for value in row[:-1])


def sorted_rows(frame: pl.DataFrame, table: SilverTable) -> list[dict]:
    """Rows as plain values, in key order."""
    return frame.sort(list(table.keys)).to_dicts()


CASES = {
    "orders": (ORDERS, "orders", [
        envelope("r", order("o1"), 100, snapshot="true"),
        envelope("u", order("o1", num_products=3), 200),
        envelope("c", order("  o2 ", customer_id=9), 300),
        envelope("c", order("o3", customer_id=404), 400),  # an unknown customer
        envelope("c", order("o4", num_products=0, at=None), 500),  # two rules broken
        envelope("c", order("o5", at=datetime(2027, 1, 1, tzinfo=timezone.utc)), 600),  # in the future
        envelope("d", order("o6"), 700),
        envelope("c", {**order("o7"), "customer_id": "x"}, 800),  # not a number
        envelope("c", order("o8", num_products=1), 900, wrapped=True),  # JsonConverter with schemas.enable
        envelope("c", order("o8", num_products=1), 900, wrapped=True),  # Kafka Connect's replay: counts once
        envelope("d", order("o9"), 950, wrapped=True),
        envelope("c", order(None), 1000),  # a null key
    ]),
    "customers": (CUSTOMERS, "customers", [
        envelope("c", {"id": 7, "name": " Ann ", "email": "ANN@Example.COM", "phone": "", "city": "Oslo",
                       "created_at": ms(datetime(2026, 1, 2, tzinfo=timezone.utc))}, 100),
        envelope("c", {"id": 8, "name": "Bo", "email": "bo at example", "phone": "1", "city": None,
                       "created_at": None}, 200),
        envelope("c", {"id": 9, "name": None, "email": "c@d.io", "phone": "2", "city": "Rome",
                       "created_at": ms(datetime(2026, 1, 3, tzinfo=timezone.utc))}, 300),
    ]),
    "order_details": (ORDER_DETAILS, "order_details", [
        envelope("c", {"order_id": "o1", "product_id": 5, "quantity": 2}, 100),
        envelope("c", {"order_id": "o1", "product_id": 6, "quantity": 0}, 200),
        envelope("d", {"order_id": "o1", "product_id": 5, "quantity": 2}, 300),
        envelope("c", {"order_id": "o2", "product_id": 7, "quantity": 1}, 400, wrapped=True),
        envelope("u", {"order_id": "o2", "product_id": 7, "quantity": 3}, 500, wrapped=True),
        envelope("c", {"order_id": None, "product_id": 8, "quantity": 1}, 600),
    ]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_both_engines_apply_the_rules_stated_once_to_equal_silver_rows_and_quarantines(spark, case):
    table, topic, values = CASES[case]
    rows = archive(records(topic, values), NOW).rows

    spark_valid, spark_bad = spark_silver(spark, rows, table, known=[7, 9])
    polars_valid, polars_bad = polars_silver(rows, table, known=[7, 9])

    assert spark_valid and (spark_bad or case == "orders")
    assert polars_valid == spark_valid
    assert polars_bad == [(*row[:-1], list(row[-1])) for row in spark_bad]


def test_a_change_older_than_the_stored_one_is_left_out_and_the_first_commit_stays_the_earliest():
    stored = pl.DataFrame({"order_id": ["o1", "o2"], SOURCE_POSITION: ["b", "b"],
                           "first_changed_at": [datetime(2026, 1, 1, tzinfo=timezone.utc)] * 2})
    changed = pl.DataFrame({"order_id": ["o1", "o2"], SOURCE_POSITION: ["a", "c"],
                            "first_changed_at": [datetime(2026, 2, 1, tzinfo=timezone.utc)] * 2})

    newer = fast_silver.newer_than_stored(changed, stored, ["order_id"])

    assert newer["order_id"].to_list() == ["o2"]
    assert newer["first_changed_at"].to_list() == [datetime(2026, 1, 1, tzinfo=timezone.utc)]


QUARANTINED = [("fixed", "p1"), ("twice", "p1"), ("twice", "p2"), ("waiting", "p1"), ("let-out", "p1"), (None, "p1"),
               (None, "p2")]
HELD_AFTER = [("fixed", "p3"), ("let-out", "p1")]  # Silver's versions of the keys decided, once written


def test_both_engines_keep_in_a_quarantine_only_each_key_s_newest_version_while_silver_does_not_hold_it(spark):
    schema = {"order_id": pl.String, SOURCE_POSITION: pl.String}
    quarantined, held = (pl.DataFrame(rows, schema=schema, orient="row") for rows in (QUARANTINED, HELD_AFTER))

    by_polars = fast_silver.settled(quarantined, held, ["order_id"]).sort(pl.all(), nulls_last=True).rows()
    by_spark = sorted((tuple(row) for row in silver.settled(
        spark.createDataFrame(QUARANTINED, "order_id string, source_position string"),
        spark.createDataFrame(HELD_AFTER, "order_id string, source_position string"), ("order_id",)).collect()),
        key=lambda row: (row[0] is None, row))

    assert by_polars == by_spark == [("fixed", "p1"), ("let-out", "p1"), ("twice", "p1"), (None, "p1")]


def test_both_engines_give_a_stored_detail_its_order_s_time_when_it_moved(spark):
    moved, stayed = datetime(2026, 11, 19, 9, 0, tzinfo=UTC), datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    stored = [("o1", 5, None, None, moved), ("o2", 5, stayed, stayed.date(), stayed),
              ("o3", 5, stayed, stayed.date(), moved), ("o4", 5, None, None, None)]
    schema = {"order_id": pl.String, "product_id": pl.Int32, "order_ts": pl.Datetime("us", "UTC"),
              "order_date": pl.Date, "order_timestamp": pl.Datetime("us", "UTC")}

    by_polars = fast_silver.retimed(pl.DataFrame(stored, schema=schema, orient="row"), ORDER_DETAILS).sort("order_id")
    by_spark = from_spark(silver.retimed(spark.createDataFrame(
        stored, "order_id string, product_id int, order_ts timestamp, order_date date, order_timestamp timestamp"),
        ORDER_DETAILS)).sort("order_id")

    assert by_polars.columns == by_spark.columns == ["order_id", "product_id", "order_ts", "order_date"]
    assert by_polars.rows() == by_spark.rows() == [("o1", 5, moved, moved.date()), ("o3", 5, moved, moved.date())]


def test_rows_the_table_holds_as_they_are_are_not_written_again():
    current = pl.DataFrame({"k": [1, 2], "v": ["a", "b"]})
    candidates = pl.DataFrame({"k": [1, 2, 3], "v": ["a", "B", "c"]})

    changed = fast_silver.changed_rows(candidates, current, ["k"])

    assert changed.sort("k").to_dicts() == [{"k": 2, "v": "B", "_known": True}, {"k": 3, "v": "c", "_known": False}]



def test_a_merge_given_the_stored_rows_of_its_keys_touches_only_their_partitions_and_moves_a_row_between_them(
        tmp_path, settings):
    lake = Lake(settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"}))
    location = f"file://{tmp_path}/silver/orders"
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(30)]
    stored = pl.DataFrame({"order_id": [f"o{n}" for n in range(30)], "order_date": days, "status": ["placed"] * 30})
    lake.upsert(location, stored, ["order_id"], partition_by=["order_date"])  # a file per day
    batch = pl.DataFrame({"order_id": ["o3", "o-new", "o-waiting"], "order_date": [date(2026, 3, 1), days[9], None],
                          "status": ["moved", "placed", "placed"]})

    lake.upsert(location, batch, ["order_id"], current=stored.filter(pl.col("order_id") == "o3"))

    metrics = lake.table(location).history(1)[0]["operationMetrics"]
    assert metrics["num_target_files_scanned"] <= 2  # at most o3's old day and o-new's; the other 28 not read
    rows = lake.read(location)
    assert rows.height == 32 and rows["order_id"].n_unique() == 32
    assert rows.filter(pl.col("order_id") == "o3").select("order_date", "status").rows() == [(date(2026, 3, 1), "moved")]


def test_a_merge_s_partition_condition_names_each_value_and_null_as_delta_rs_reads_them():
    assert delta.partitions_of([], pl.DataFrame({"k": [1]})) is None
    values = pl.DataFrame({"day": [date(2026, 1, 2), None, date(2026, 1, 2)], "id": [20260102, None, 7],
                           "name": ["it's", "b", "b"]})
    assert delta.partitions_of(["day"], values) in (
        "(t.`day` IN (CAST('2026-01-02' AS DATE)) OR t.`day` IS NULL)",)
    assert delta.partition_in("id", values["id"].unique().sort()) == "(t.`id` IN (7, 20260102) OR t.`id` IS NULL)"
    assert delta.partition_in("name", values["name"].unique().sort()) == "(t.`name` IN ('b', 'it''s'))"
    assert delta.partition_in("name", pl.Series([], dtype=pl.String)) == "(FALSE)"

UTC = timezone.utc
SILVER_ORDERS = [  # order_id, customer, payment method, num_products, order_ts, deleted, changed_at, first_changed_at
    ("o1", 7, 1, 2, datetime(2026, 11, 20, 9, 0, tzinfo=UTC), False, datetime(2026, 11, 20, 9, 1, tzinfo=UTC), None),
    ("o2", 7, 2, 1, datetime(2026, 11, 21, 9, 0, tzinfo=UTC), False, datetime(2026, 11, 21, 9, 1, tzinfo=UTC),
     datetime(2026, 11, 21, 9, 0, tzinfo=UTC)),
    ("o3", 8, 1, 3, datetime(2026, 11, 22, 9, 0, tzinfo=UTC), True, datetime(2026, 11, 22, 9, 5, tzinfo=UTC),
     datetime(2026, 11, 22, 9, 0, tzinfo=UTC)),
    ("o4", 9, 9, 1, datetime(2026, 11, 23, 9, 0, tzinfo=UTC), False, datetime(2026, 11, 23, 9, 1, tzinfo=UTC),
     datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),
]
DETAILS = [("o1", 5, 2, datetime(2026, 11, 20, 9, 2, tzinfo=UTC)), ("o1", 6, 1, datetime(2026, 11, 20, 9, 3, tzinfo=UTC)),
           ("o3", 5, 1, datetime(2026, 11, 22, 9, 1, tzinfo=UTC)), ("o4", 7, 4, datetime(2026, 11, 23, 9, 2, tzinfo=UTC))]
CUSTOMER_VERSIONS = [(11, 7, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC)),
                     (12, 7, datetime(2026, 11, 21, tzinfo=UTC), None),
                     (13, 8, datetime(2026, 1, 1, tzinfo=UTC), None)]


def silver_orders() -> pl.DataFrame:
    orders = pl.DataFrame(SILVER_ORDERS, orient="row", schema={
        "order_id": pl.String, "customer_id": pl.Int32, "payment_method_id": pl.Int32, "num_products": pl.Int32,
        "order_ts": pl.Datetime("us", "UTC"), "is_deleted": pl.Boolean, "changed_at": pl.Datetime("us", "UTC"),
        "first_changed_at": pl.Datetime("us", "UTC")})
    return orders.with_columns(pl.lit(4, pl.Int32).alias("store_id"), pl.col("order_ts").dt.date().alias("order_date"),
                               pl.when("is_deleted").then(pl.col("changed_at")).alias("deleted_at"))


def test_both_engines_compute_equal_facts_from_the_same_silver_rows_and_dimensions(spark):
    orders = silver_orders()
    details = pl.DataFrame(DETAILS, orient="row", schema={"order_id": pl.String, "product_id": pl.Int32,
                                                          "quantity": pl.Int32, "changed_at": pl.Datetime("us", "UTC")})
    dimensions = fast_facts.Dimensions(
        pl.DataFrame(CUSTOMER_VERSIONS, orient="row", schema=fast_facts.RESOLVED_BY["dim_customer"]),
        pl.DataFrame([(1, 1), (2, 2)], orient="row", schema=fast_facts.RESOLVED_BY["dim_payment_method"]),
        pl.DataFrame([(20261120,), (20261121,), (20261123,)], orient="row", schema=fast_facts.RESOLVED_BY["dim_date"]))

    ours = fast_facts.fact_orders(orders, details, dimensions)

    def frame(rows: pl.DataFrame, schema: str):
        return spark.createDataFrame(rows.to_pandas(), schema)

    theirs = gold.fact_orders(
        frame(orders, None), frame(details, None),
        frame(dimensions.customers, "customer_key bigint, customer_id int, valid_from timestamp, valid_to timestamp"),
        frame(dimensions.payment_methods, "payment_method_key int, payment_method_id int"),
        frame(dimensions.dates, "date_id int"),
        frame(orders.select("order_id", pl.col("first_changed_at").alias("placed_at")), None))
    assert_frame_equal(ours.sort("order_id"), from_spark(theirs).sort("order_id"), check_dtypes=False)
    by_order = {row["order_id"]: row for row in ours.to_dicts()}
    assert [by_order[o]["status"] for o in ("o1", "o2", "o3", "o4")] == ["complete", "incomplete", "cancelled",
                                                                         "complete"]
    assert by_order["o4"]["customer_key"] == by_order["o4"]["payment_method_key"] == fast_facts.UNKNOWN
    assert by_order["o1"]["customer_key"] == 11 and by_order["o2"]["customer_key"] == 12


def test_records_reach_back_only_with_the_connector_s_snapshot_and_every_partition_from_its_start():
    snapshot = archive(records("orders", [envelope("r", order("o1"), 100, snapshot="first")]), NOW)
    later = archive([Record("orders", 0, 5, None, envelope("c", order("o2"), 200), None)], NOW)

    assert reaches_back(snapshot)
    assert not reaches_back(later)


def test_a_lease_is_fresh_until_released_or_silent_for_its_period():
    state = {"owner": {"pid": 1, "host": "h"}, "heartbeat": 1000.0}

    assert fresh(state, now=1000.0 + LEASE_S - 1)
    assert not fresh(state, now=1000.0 + LEASE_S + 1)
    assert not fresh({**state, "released": True}, now=1000.0)
    assert not fresh(None)


def test_the_fast_lane_compacts_a_table_of_many_files_and_spark_reads_no_change_from_it(spark, settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    location = f"file://{tmp_path}/silver/orders"
    lake = Lake(local)
    for part in range(12):
        lake.append(location, pl.DataFrame({"order_id": [f"o{part}-{n}" for n in range(10)]}))
    before = lake.version(location)

    assert lake.compact(location, most_files=8)
    assert len(lake.table(location).file_uris()) == 1 and not lake.compact(location, most_files=8)
    assert spark.read.format("delta").load(location).count() == 120
    feed = (spark.read.format("delta").option("readChangeFeed", "true").option("startingVersion", before + 1)
            .load(location))
    assert feed.count() == 0  # a compaction is no data change


def test_keys_held_for_a_table_the_lane_writes_follow_its_writes_without_reading_it_again(settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    lane = FastLane(local)
    location = lane.location("silver", ORDERS.name)
    lane.lake.upsert(location, pl.DataFrame({"order_id": ["a", "b"], "v": [1, 2]}), ["order_id"])
    assert sorted(lane.keys_of(ORDERS.name, "order_id")) == ["a", "b"]

    rows = pl.DataFrame({"order_id": ["b", "c"], "v": [3, 4]})
    gone = pl.DataFrame({"order_id": ["a"]})
    written = lane.lake.upsert(location, rows, ["order_id"], deletes=gone)
    lane.keep_keys(location, ["order_id"], rows, gone, written)

    held_version, held = lane.held[location]
    assert held_version == lane.lake.version(location)  # keys_of takes them as they are
    assert lane.keys_of(ORDERS.name, "order_id") is held
    assert sorted(held) == sorted(lane.lake.read(location)["order_id"]) == ["b", "c"]

    lane.lake.append(location, pl.DataFrame({"order_id": ["d"], "v": [5]}))  # a write it did not follow
    lane.keep_keys(location, ["order_id"], pl.DataFrame({"order_id": ["e"]}), None,
                   lane.lake.upsert(location, pl.DataFrame({"order_id": ["e"], "v": [6]}), ["order_id"]))
    assert sorted(lane.keys_of(ORDERS.name, "order_id")) == ["b", "c", "d", "e"]  # read again whole


def test_a_detail_s_order_time_comes_from_the_orders_just_written_or_else_from_silver(settings, tmp_path):
    lane = FastLane(settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"}))
    earlier, now = datetime(2026, 11, 19, tzinfo=timezone.utc), datetime(2026, 11, 20, tzinfo=timezone.utc)
    lane.lake.upsert(lane.location("silver", ORDERS.name),
                     pl.DataFrame({"order_id": ["stored"], "order_ts": [earlier], "status": ["x"]}), ["order_id"])
    lane.orders_written = pl.DataFrame({"order_id": ["fresh"], "order_ts": [now]})

    looked_up = lane.order_times(pl.DataFrame({"order_id": [" fresh", "stored ", "unknown"], "product_id": [1, 2, 3]}))

    assert looked_up["order_timestamp"].to_list() == [now, earlier, None]
    assert looked_up.columns == ["order_id", "product_id", "order_timestamp"]
