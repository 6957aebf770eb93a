"""bench.fast_lane's synthetic shop: its micro-batches are shaped as a live shop's (no services)."""

from __future__ import annotations

import orjson

from batch.fastlane.lane import FastLane
from batch.paths import GOLD
from bench.fast_lane import DAY_MS, INCOMPLETE_EVERY, START_MS, Source, dated_days


def changes(records) -> list[tuple[str, str, dict]]:
    """(table, op, the row's image) of each record."""
    out = []
    for record in records:
        envelope = orjson.loads(record.value)
        out.append((record.topic.rsplit(".", 1)[-1], envelope["op"], envelope["after"] or envelope["before"]))
    return out


def test_the_history_spreads_over_days_and_a_live_batch_changes_recent_orders_and_a_few_old_ones(settings):
    source = Source(settings, customers=50, orders_per_day=100)
    source.new_orders(1_000)
    assert (source.now_ms - START_MS) / DAY_MS == 10  # 1,000 orders at 100 a day
    last_day = {order_id for order_id, _, _ in source.orders[-100:]}
    held_back = len(source.late_details)
    assert held_back == 1_000 // INCOMPLETE_EVERY

    live = changes(source.live_changes(200))

    created = [row["id"] for table, op, row in live if (table, op) == ("orders", "c")]
    assert len(created) == 200
    details = [row for table, op, row in live if table == "order_details"]
    assert len({row["order_id"] for row in details} - set(created)) == held_back  # the earlier orders completed
    cancelled = [row["id"] for table, op, row in live if (table, op) == ("orders", "d")]
    updated = [row["id"] for table, op, row in live if (table, op) == ("orders", "u")]
    assert len(cancelled[:40]) == 40 and set(cancelled[:40]) <= last_day  # a fifth, of the last day's
    late = [*cancelled[40:], *updated]
    assert len(late) == 2 and not set(late) & last_day  # 1 %, older than a day
    assert {table for table, _, _ in live} == {"orders", "order_details"}
    assert not set(cancelled) & {order_id for order_id, _, _ in source.orders}  # a later change never picks them


def test_late_changes_are_of_orders_older_than_a_day(settings):
    source = Source(settings, customers=50, orders_per_day=100)
    source.new_orders(200)  # two days
    first_day = {order_id for order_id, _, _ in source.orders[:100]}

    live = changes(source.live_changes(500))  # the whole last day cancelled, 5 late changes

    late = [row["id"] for table, op, row in live if table == "orders" and op != "c"][100:]
    assert len(late) == 5 and set(late) <= first_day


def test_the_shop_s_lake_knows_each_day_of_its_history_as_the_deferred_dimension_job_leaves_it(settings, tmp_path):
    lane = FastLane(settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"}))

    dated_days(lane, days=40)

    dates = lane.lake.read(lane.location(GOLD, "dim_date")).sort("date_id")
    assert dates.height == 41 and dates["date_id"].n_unique() == 41
    assert dates["date_id"][[0, -1]].to_list() == [20240101, 20240210]  # START_MS's day, and 40 days on
