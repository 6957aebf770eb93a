from __future__ import annotations


import pytest

from streams.runtime.web_access import UnsafeWebBind, authorized, check_bind, token_required
from tables.order_state import OrderState, listed_as, mask_email
from web.orders import LIMIT_MAX, BadQuery, parse


def test_beyond_loopback_a_token_is_required_and_without_one_the_worker_refuses_to_start():
    check_bind("127.0.0.1", None)
    check_bind("0.0.0.0", "s3cret")
    with pytest.raises(UnsafeWebBind, match="set WEB_TOKEN"):
        check_bind("0.0.0.0", None)
    assert token_required("0.0.0.0", "s3cret") and not token_required("127.0.0.1", "s3cret")


@pytest.mark.parametrize(("header", "ok"), [("Bearer s3cret", True), ("bearer s3cret", True), ("Bearer s3cre", False),
                                            ("Basic s3cret", False), ("s3cret", False), (None, False), ("", False)])
def test_only_the_right_bearer_token_is_let_in(header, ok):
    assert authorized(header, "s3cret") is ok


def test_emails_are_masked_to_their_first_letter_and_domain():
    assert mask_email("alice@example.com") == "a***@example.com"
    assert mask_email("not an email") == "***"


def test_stalled_lists_only_incomplete_orders_whose_stall_was_raised():
    incomplete = OrderState(header_position=(1, 1, 0), num_products=2)
    assert listed_as(incomplete, "incomplete") and not listed_as(incomplete, "stalled")
    assert listed_as(incomplete._replace(alerts=frozenset({"stalled"})), "stalled")
    assert listed_as(OrderState(emitted=True), "complete")


@pytest.mark.parametrize("query", [{}, {"state": "lost"}, {"state": "complete", "limit": "0"},
                                   {"state": "complete", "limit": "-1"}, {"state": "complete", "limit": "1e3"},
                                   {"state": "complete", "limit": str(LIMIT_MAX + 1)},
                                   {"state": "complete", "scope": "everyone"}])
def test_a_hostile_list_query_is_refused_with_its_reason(query):
    with pytest.raises(BadQuery):
        parse(query)


def test_a_list_query_has_defaults():
    assert parse({"state": "stalled"}) == ("stalled", 100, "app")
