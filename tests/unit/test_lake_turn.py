from datetime import date, timedelta

import pytest

from tests.integration.conftest import todays_turn


def test_five_days_in_a_row_give_each_of_five_tests_its_turn():
    first = date(2026, 11, 24)
    turns = [todays_turn(5, today=first + timedelta(days=day)) for day in range(5)]
    assert sorted(turns) == [0, 1, 2, 3, 4]
    assert todays_turn(5, today=first) == todays_turn(5, today=first + timedelta(days=5))


def test_lake_turn_picks_one_and_refuses_what_is_not_a_turn():
    assert todays_turn(5, "3", today=date(2026, 11, 24)) == 3
    for bad in ("5", "-1", "x"):
        with pytest.raises(pytest.UsageError, match="LAKE_TURN"):
            todays_turn(5, bad)
