from batch.tools.freshness import expected_statuses
from demo.lake import LakeCheck

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
