"""cdc.incremental_snapshot's pure parts: the signal asked for, and what the connector's committed offset says."""

from __future__ import annotations

import orjson

from cdc.incremental_snapshot import Committed, is_snapshot_read, signal_data, uncaptured

RUNNING = {"file": "binlog.000004", "pos": 900, "incremental_snapshot_correlation_id": None,
           "incremental_snapshot_collections": orjson.dumps([
               {"incremental_snapshot_collections_id": "project_db.orders",
                "incremental_snapshot_collections_additional_condition": "id = 'a'",
                "incremental_snapshot_collections_surrogate_key": None}]).decode(),
           "incremental_snapshot_primary_key": "aced0005", "incremental_snapshot_maximum_key": "aced0007"}


def test_the_signal_names_each_table_and_filters_each_with_the_condition():
    assert signal_data("project_db", ["orders", "order_details"], "order_id = 'a'") == {
        "data-collections": ["project_db.orders", "project_db.order_details"], "type": "incremental",
        "additional-conditions": [{"data-collection": "project_db.orders", "filter": "order_id = 'a'"},
                                  {"data-collection": "project_db.order_details", "filter": "order_id = 'a'"}]}
    assert "additional-conditions" not in signal_data("project_db", ["orders"], None)


def test_only_the_captured_tables_can_be_snapshotted():
    assert uncaptured(["orders", "debezium_signal", "nope"]) == ["debezium_signal", "nope"]


def test_an_offset_with_a_snapshot_context_names_the_tables_under_way():
    assert Committed.of(RUNNING) == Committed((4, 900), ("project_db.orders",))
    assert Committed.of({"file": "binlog.000004", "pos": 950}) == Committed((4, 950), ())
    assert Committed.of(None) == Committed(None, ())


def test_a_snapshot_is_over_once_the_offset_passed_its_signal_without_a_context():
    signalled_at = (4, 920)

    before = Committed((4, 910), ())  # the connector has not read the signal yet
    running = Committed((4, 990), ("project_db.orders",))
    done = Committed((4, 990), ())
    later_file = Committed((5, 4), ())

    assert [c.finished(signalled_at) for c in (before, running, done, later_file)] == [False, False, True, True]


def test_only_records_an_incremental_snapshot_read_are_counted():
    def record(snapshot: str) -> bytes:
        return orjson.dumps({"op": "r", "after": {}, "source": {"snapshot": snapshot}})

    assert [is_snapshot_read(v) for v in (record("incremental"), record("true"), record("false"), None)] == \
        [True, False, False, False]
