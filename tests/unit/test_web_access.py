from __future__ import annotations

import asyncio

import pytest
from faust.exceptions import SameNode
from yarl import URL

from streams.runtime.web_access import TrustedRouter, UnsafeWebBind, authorized, check_bind, token_required, trusted_peer
from tables.order_state import OrderState, listed_as, mask_email
from web.members import ask
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


@pytest.mark.parametrize(("url", "hosts", "trusted"), [
    ("http://127.0.0.1:6067", [], True),  # loopback when no host is named
    ("http://localhost:6067/", [], True),
    ("http://evil.example:6066", [], False),
    ("http://worker-2:6066", ["worker-1", "worker-2"], True),
    ("http://127.0.0.1:6067", ["worker-1", "worker-2"], False),  # named hosts replace loopback
    ("http://worker-1:6099", ["worker-2"], True),  # this worker's own host
    ("http://worker-2.evil.example:6066", ["worker-2"], False),
    ("not a url", [], False),
])
def test_a_member_s_announced_address_is_sent_the_token_only_at_a_trusted_host(url, hosts, trusted):
    assert trusted_peer(url, "http://worker-1:6066", hosts) is trusted


def test_a_table_view_s_request_is_forwarded_only_to_an_owner_at_a_trusted_host():
    from streams.app import app  # the worker's app, its router as configured

    assert str(app.conf.canonical_url).startswith("http://127.0.0.1:")
    router = app.router
    assert isinstance(router, TrustedRouter)

    async def scenario():
        refused = await router._route_req(URL("http://evil.example:6066/orders/a"), app.web, request=None)
        with pytest.raises(SameNode):  # its own address: Faust's router answers it here, as before
            await router._route_req(URL(str(app.conf.canonical_url)) / "orders" / "a", app.web, request=None)
        # the dashboard and the order lists do not ask such a member either
        return refused, await ask("http://evil.example:6066", "/stats", 1.0)

    refused, asked = asyncio.run(scenario())
    assert refused.status == 502 and "WEB_PEER_HOSTS" in refused.body.decode()
    assert asked["error"].startswith("not a trusted host")
