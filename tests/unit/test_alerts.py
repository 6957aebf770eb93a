"""Which alerts an order's state calls for (agents.alerts) and when orders are looked at again
(agents.alert_watch). Pure."""

from __future__ import annotations

from agents.alert_watch import AlertWatch
from agents.alerts import (BULK, CANCELLED_AFTER_DETAILS, STALLED, AlertRules, alert_value, is_stalled,
                           on_completion, on_deletion)
from streams.codec import Position
from tables.order_state import OrderState, Product, marker

RULES = AlertRules(bulk_quantity=10, bulk_products=3, stall_after_s=300)
AT = Position(1, 100, 0)


def order(quantities: list[int], num_products: int | None = None, **fields) -> OrderState:
    products = {pid: Product(q, AT) for pid, q in enumerate(quantities, start=1)}
    return OrderState(header_position=AT, customer_id=7, num_products=len(quantities) if num_products is None
                         else num_products, products=products, **fields)


def test_a_complete_order_is_bulk_by_total_quantity_or_by_products_and_only_once():
    assert on_completion(order([5, 5]), RULES) == [BULK]
    assert on_completion(order([1, 1, 1]), RULES) == [BULK]
    assert on_completion(order([4, 5]), RULES) == []
    assert on_completion(order([5, 5], alerts=frozenset({BULK})), RULES) == []
    assert on_completion(marker(1), RULES) == []


def test_a_deleted_order_alerts_only_if_details_had_arrived():
    removed_before = OrderState(header_position=AT, deleted=True, removed={3: AT})
    assert on_deletion(order([2], deleted=True)) == [CANCELLED_AFTER_DETAILS]
    assert on_deletion(removed_before) == [CANCELLED_AFTER_DETAILS]  # its details were deleted first
    assert on_deletion(OrderState(header_position=AT, deleted=True)) == []
    assert on_deletion(order([2], deleted=True, alerts=frozenset({CANCELLED_AFTER_DETAILS}))) == []
    assert on_deletion(order([2])) == []


def test_only_a_started_incomplete_order_can_stall_and_only_once():
    assert is_stalled(order([1], num_products=2))
    assert is_stalled(OrderState(products={1: Product(1, AT)}))  # details without their order yet
    assert not is_stalled(order([1, 1]))  # complete
    assert not is_stalled(order([1], num_products=2, alerts=frozenset({STALLED})))
    assert not is_stalled(OrderState())  # nothing known (a dropped state)
    assert not is_stalled(marker(1))


def test_an_alert_carries_its_kind_and_the_figures_behind_it():
    value = alert_value(BULK, "o-1", order([5, 6]), "2026-01-01T00:00:00Z")
    assert value == {"kind": BULK, "order_id": "o-1", "at": "2026-01-01T00:00:00Z", "customer_id": 7,
                     "num_products": 2, "products_received": 2, "total_quantity": 11}
    assert alert_value(CANCELLED_AFTER_DETAILS, "o-1", order([1], deleted=True, removed={9: AT}),
                       "t")["details_seen"] == 2


def test_an_order_quiet_for_the_stall_time_is_due_once_and_a_change_restarts_its_clock():
    watch = AlertWatch(stall_after_s=300)
    watch.changed(0, "a", now=100, incomplete=True)
    watch.changed(0, "b", now=200, incomplete=True)
    watch.changed(0, "a", now=250, incomplete=True)  # a changed again: quiet since 250
    assert not watch.has_work(0, now=450)
    assert watch.partitions_with_work(now=500) == [0]
    assert watch.due(0, before=500 - 300) == {"b"}
    assert watch.due(0, before=500 - 300) == set()
    watch.changed(0, "a", now=260, incomplete=False)  # complete now: nothing to watch
    assert watch.due(0, before=10_000) == set()


def test_orders_asked_for_again_are_due_at_the_next_check_and_lost_partitions_forgotten():
    watch = AlertWatch(stall_after_s=300)
    watch.again(1, "c")
    watch.again(2, "d")
    watch.keep_only({1})
    assert watch.partitions_with_work(now=0) == [1]
    assert watch.due(1, before=0) == {"c"} and watch.due(2, before=0) == set()


def test_the_alerts_raised_survive_the_table_codec():
    from tables import order_state

    state = order([5, 5], emitted=True, alerts=frozenset({BULK}))
    assert order_state.decode(order_state.encode(state)) == state
    assert b'"a"' not in order_state.encode(order([1]))  # no alerts: not a byte more
