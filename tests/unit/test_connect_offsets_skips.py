from __future__ import annotations

from cdc.offsets import without_skips

QUIET = {"file": "binlog.000016", "pos": 37966741, "gtids": "0-1-18982803", "event": 60, "ts_sec": 1795659828}


def test_an_offset_that_skips_events_resumes_at_its_transaction_instead():
    assert without_skips(QUIET) == {"file": "binlog.000016", "pos": 37966741, "gtids": "0-1-18982803",
                                    "ts_sec": 1795659828}
    assert without_skips({**QUIET, "row": 1}) == without_skips(QUIET)


def test_an_offset_that_skips_nothing_is_left_as_it_is():
    assert without_skips({"file": "binlog.000016", "pos": 4, "gtids": "0-1-1"}) is None
    assert without_skips(None) is None
    assert without_skips({}) is None
