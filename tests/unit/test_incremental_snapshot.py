"""cdc.snapshot's pure parts: the signal asked for, and what the notifications say of a run."""

from __future__ import annotations

from cdc.snapshot import CHUNK_ROWS, QUIET_AFTER_MS, runs, signal_data, uncaptured, under_way


def note(signal_id: str, kind: str, at_ms: int = 1_000, **extra: str) -> dict:
    return {"id": signal_id, "aggregate_type": "Incremental Snapshot", "type": kind, "timestamp": at_ms,
            "additional_data": {"connector_name": "mysql", **extra}}


def test_the_signal_names_each_table_and_filters_each_with_the_condition():
    assert signal_data("project_db", ["orders", "order_details"], "order_id = 'a'") == {
        "data-collections": ["project_db.orders", "project_db.order_details"], "type": "incremental",
        "additional-conditions": [{"data-collection": "project_db.orders", "filter": "order_id = 'a'"},
                                  {"data-collection": "project_db.order_details", "filter": "order_id = 'a'"}]}
    assert "additional-conditions" not in signal_data("project_db", ["orders"], None)


def test_only_the_captured_tables_can_be_snapshotted():
    assert uncaptured(["orders", "debezium_signal", "nope"]) == ["debezium_signal", "nope"]


def test_a_run_counts_chunks_until_its_scan_gives_the_rows():
    found = runs([note("s1", "STARTED"),
                  note("s1", "IN_PROGRESS", current_collection_in_progress="project_db.orders"),
                  note("s1", "IN_PROGRESS", current_collection_in_progress="project_db.orders"),
                  {"id": "x", "aggregate_type": "Initial Snapshot", "type": "COMPLETED"}])
    run = found["s1"]

    assert list(found) == ["s1"]
    assert (run.state, run.finished) == ("IN_PROGRESS", False)
    assert run.rows_read("orders", total=5_000) == 2 * CHUNK_ROWS
    assert run.rows_read("orders", total=1_500) == 1_500

    run.note(note("s1", "TABLE_SCAN_COMPLETED", scanned_collection="project_db.orders", total_rows_scanned="1499"))
    run.note(note("s1", "COMPLETED"))

    assert (run.rows_read("orders", total=1_500), run.finished) == (1_499, True)


def test_a_run_under_way_is_one_unfinished_that_reported_lately_or_is_paused():
    found = runs([note("done", "STARTED"), note("done", "COMPLETED"),
                  note("stopped", "STARTED"), note("stopped", "ABORTED"),
                  note("live", "IN_PROGRESS", at_ms=500_000, current_collection_in_progress="db.orders"),
                  note("paused", "PAUSED", at_ms=1),
                  note("orphan", "IN_PROGRESS", at_ms=1, current_collection_in_progress="db.orders")])

    assert [run.id for run in under_way(found, now_ms=500_000 + QUIET_AFTER_MS - 1)] == ["live", "paused"]
