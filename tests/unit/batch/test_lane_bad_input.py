"""Records the fast lane cannot decode or apply, one test per kind: each goes to Silver's
`cdc_quarantine` with its reason, topic, partition and offset, counted, and the lane goes on with
the next record in the same micro-batch. On a `file://` lake: no services, no JVM."""

from __future__ import annotations

import json

import polars as pl
import pytest

from batch.clocks import MAX_RECORD_BYTES
from batch.fastlane.archive import Record
from batch.fastlane.lane import FastLane
from batch.paths import CDC_QUARANTINE, SILVER
from tests.unit.batch.change_log import ChangeLog, customer, order

DEEP = 20_000


def nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def envelope_text(after: str, pos: int = 90_000, row: int = 0, ts_ms: int = 1795165200000) -> bytes:
    return (f'{{"before":null,"after":{after},"source":{{"file":"mysql-bin.000003","pos":{pos},"row":{row},'
            f'"ts_ms":{ts_ms}}},"op":"c","ts_ms":1795165200005}}').encode()


BAD = {
    "nested 20,000 deep": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, "undecodable: "),
    "a row nested 20,000 deep": (envelope_text(nested(DEEP)), "undecodable: "),
    "a row field nested past what a column holds": (envelope_text(json.dumps({"id": "o-x", "note": json.loads(nested(300))})),
                                                    "undecodable: "),
    "over the size limit": (envelope_text(json.dumps({"id": "o-x", "note": "x" * MAX_RECORD_BYTES})), "bytes, over the lake's"),
    "a field named like the lane's own column": (envelope_text(json.dumps({"id": "o-x", "_position": "1"})),
                                                  "row field names no table may have: '_position'"),
    "a field named like a lifecycle column": (envelope_text(json.dumps({"id": "o-x", "is_deleted": True})),
                                               "row field names no table may have: 'is_deleted'"),
    "a field name that is no plain identifier": (envelope_text(json.dumps({"id": "o-x", "a b;drop": 1})),
                                                  "row field names no table may have: 'a b;drop'"),
    "a binlog position past a long": (envelope_text(json.dumps({"id": "o-x"}), pos=2 ** 70), "source.pos"),
    "a row number past an int": (envelope_text(json.dumps({"id": "o-x"}), row=2 ** 40), "source.row"),
    "a commit time past year 9999": (envelope_text(json.dumps({"id": "o-x"}), ts_ms=2 ** 62),
                                     "source.ts_ms 4611686018427387904 is no time of years 1 to 9999"),
    "a tombstone without a key": (None, "a tombstone without a key"),
    "not JSON": (b"\xff\xfe not json", "not_debezium_json"),
}


@pytest.fixture(scope="module")
def lake_with_reference_data(settings, tmp_path_factory):
    """A lane whose lake holds the connector's snapshot of a customer and a payment method."""
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path_factory.mktemp('bad-input')}/"})
    log = ChangeLog(local)
    log.change("payment_method", "r", {"id": 1, "name": "Card", "provider": "Visa"}, snapshot="last")
    log.change("customers", "r", customer(1), snapshot="last")
    lane = FastLane(local)
    lane.apply(log.batches[0])
    return lane, log


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_record_the_lane_cannot_apply_is_quarantined_with_its_reason_and_the_lane_goes_on(lake_with_reference_data,
                                                                                           kind):
    lane, log = lake_with_reference_data
    value, reason = BAD[kind]
    log.cut()
    topic = log.topic("orders")
    bad_offset = log.offsets[topic]
    log.raw("orders", None if value is None else b'{"id": "o-x"}', value)
    good_id = f"good-after-{bad_offset}"
    log.change("orders", "c", order(good_id, num_products=1))

    batch = lane.apply(log.batches[-1])

    quarantine = lane.lake.read(lane.location(SILVER, CDC_QUARANTINE)).filter(pl.col("offset") == bad_offset)
    assert quarantine.select("topic", "partition").row(0) == (topic, 0)
    assert reason in quarantine["_reason"][0]
    assert batch.quarantined == 1 and batch.records == 2
    assert good_id in lane.lake.read(lane.location(SILVER, "orders"))["order_id"].to_list()
    assert lane.recover() is None  # the marks moved past it: nothing left to apply again


def test_an_order_time_no_calendar_holds_quarantines_the_order_by_its_rules(lake_with_reference_data):
    lane, log = lake_with_reference_data
    log.cut()
    log.change("orders", "c", {**order("o-year-146-million", num_products=1), "timestamp": 2 ** 62})

    batch = lane.apply(log.batches[-1])

    quarantined = lane.lake.read(lane.location(SILVER, "orders_quarantine"))
    row = quarantined.filter(pl.col("order_id") == "o-year-146-million")
    assert row.height == 1 and batch.quarantined == 1
    assert "o-year-146-million" not in lane.lake.read(lane.location(SILVER, "orders"))["order_id"].to_list()
