from batch.tools.lake_reader import LakeReader, expected_statuses
import polars as pl

from batch import paths
from batch.fastlane.delta import Lake
from demo.lake import LakeCheck, WholeLake, live_gold_orders

MANIFEST = {"complete": {"a": {}, "b": {}}, "incomplete": {"c": {}}, "cancelled": {"d": {}, "e": {}}}


def test_the_lake_is_exact_when_every_order_has_the_status_the_manifest_gives_it():
    expected = expected_statuses(MANIFEST)
    check = LakeCheck(expected, dict(expected))

    assert check.exact and check.mismatched == []
    assert check.lines()[0].split() == ["lake", "cancelled", "2", "(manifest", "2)"]


def test_a_cancelled_order_the_lake_never_saw_or_saw_complete_is_named():
    expected = expected_statuses(MANIFEST)
    found = {**expected, "d": "complete"}
    del found["e"]

    check = LakeCheck(expected, found, looks=3)

    assert not check.exact and check.mismatched == ["d", "e"]
    assert check.lines()[0].split() == ["lake", "cancelled", "0", "(manifest", "2)"]
    assert "d complete (is cancelled), e missing (is cancelled)" in check.lines()[1]
    assert "after 3 look(s)" in check.lines()[1]


def test_gold_s_live_orders_are_read_through_delta_rs_and_a_lost_or_kept_row_is_named(settings, tmp_path):
    local = settings.model_copy(update={"lake_uri": f"file://{tmp_path}/"})
    Lake(local).upsert(paths.path(local, "gold", "fact_orders"), pl.DataFrame(
        {"order_id": ["a", "b", "gone", "stale"], "status": ["complete", "incomplete", "cancelled", "complete"]}),
        ["order_id"])

    gold = live_gold_orders(LakeReader(local))
    check = WholeLake(frozenset({"a", "b", "lost"}), gold)

    assert gold == {"a", "b", "stale"}
    assert not check.exact and check.missing == ["lost"] and check.extra == ["stale"]
    assert check.line().endswith("3 live orders in Gold fact_orders, 3 in MySQL; missing 1 (e.g. lost); extra 1 (e.g. stale)")
    assert WholeLake(frozenset({"a"}), frozenset({"a"})).line().endswith(", the same ids")
