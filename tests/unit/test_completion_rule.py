"""agents.completion_rule, table-driven, plus every arrival order of a small order's events."""

from __future__ import annotations

from itertools import permutations

import pytest

from agents.completion_rule import CAUGHT_UP, Verdict, apply_detail, apply_order, completed_order, is_behind, verdict, version
from streams.codec import DetailChange, OrderChange, Position
from tables import order_state
from tables.order_state import OrderState


def at(n: int) -> Position:
    return Position(1, n * 100, 0)


def order(n: int, num_products: int, op: str = "c") -> OrderChange:
    return OrderChange("o1", op, 7, 3, num_products, at(n), 1000 + n)


def deleted_order(n: int) -> OrderChange:
    return OrderChange("o1", "d", None, None, None, at(n), 1000 + n)


def detail(n: int, product: int, quantity: int = 1, op: str = "c") -> DetailChange:
    return DetailChange("o1", product, op, None if op == "d" else quantity, at(n), 1000 + n)


def process(events, *, settle_at_end: bool = True) -> tuple[OrderState, list[dict]]:
    """Run events through the rule as the agent does; the orders frontier is the newest
    position up to which every orders event has been processed (Kafka's per-topic order)."""
    state, emitted = OrderState(), []
    orders_in_commit_order = sorted({e.position for e in events if isinstance(e, OrderChange)})
    seen_orders: set[Position] = set()

    def frontier() -> Position | None:
        reached = None
        for position in orders_in_commit_order:
            if position not in seen_orders:
                break
            reached = position
        return reached

    def maybe_emit(orders_frontier):
        nonlocal state
        if verdict(state, orders_frontier) is Verdict.EMIT:
            emitted.append(completed_order("o1", state, "now"))
            state = state._replace(emitted=True)

    for event in events:
        if isinstance(event, OrderChange):
            state = apply_order(state, event)
            seen_orders.add(event.position)
        else:
            state = apply_detail(state, event)
        maybe_emit(frontier())
    if settle_at_end:  # the orders topic read to its end
        maybe_emit(CAUGHT_UP)
    return state, emitted


def products_of(emission: dict) -> dict[int, int]:
    return {p["product_id"]: p["quantity"] for p in emission["products"]}


CASES = {
    "plain": ([order(1, 2), detail(2, 10), detail(3, 11)], {10: 1, 11: 1}),
    "details before their order": ([detail(2, 10), detail(3, 11), order(1, 2)], {10: 1, 11: 1}),
    "num_products raised": ([order(1, 2), detail(2, 10), order(3, 3, "u"), detail(4, 11), detail(5, 12)],
                            {10: 1, 11: 1, 12: 1}),
    "num_products lowered": ([order(1, 3), detail(2, 10), order(3, 2, "u"), detail(4, 11)], {10: 1, 11: 1}),
    "detail deleted and re-inserted": ([order(1, 2), detail(2, 10, 1), detail(3, 10, op="d"),
                                        detail(4, 10, 5), detail(5, 11)], {10: 5, 11: 1}),
    "every event twice": ([order(1, 2), order(1, 2), detail(2, 10), detail(2, 10), detail(3, 11),
                           detail(3, 11)], {10: 1, 11: 1}),
    "snapshot replays the order after it was emitted": (
        [order(1, 2), detail(2, 10), detail(3, 11), order(9, 2, "r"), detail(9, 10, op="r"),
         detail(9, 11, op="r")], {10: 1, 11: 1}),
}


@pytest.mark.parametrize("events, products", CASES.values(), ids=CASES.keys())
def test_a_complete_order_is_emitted_once_with_its_final_products(events, products):
    state, emitted = process(events)

    assert len(emitted) == 1
    assert products_of(emitted[0]) == products
    assert emitted[0]["num_products"] == len(products)
    assert state.emitted


NOT_EMITTED = {
    "incomplete": [order(1, 3), detail(2, 10), detail(3, 11)],
    "details without their order": [detail(2, 10), detail(3, 11)],
    "cancelled: details and order deleted": [order(1, 2), detail(2, 10), detail(3, 10, op="d"),
                                             deleted_order(4)],
    "order deleted before its details arrive": [deleted_order(4), order(1, 2), detail(2, 10), detail(3, 11)],
    "a stale insert after the delete does not resurrect the detail": [
        order(1, 2), detail(2, 10), detail(5, 10, op="d"), detail(2, 10), detail(3, 11)],
}


@pytest.mark.parametrize("events", NOT_EMITTED.values(), ids=NOT_EMITTED.keys())
def test_incomplete_or_deleted_orders_are_never_emitted(events):
    _, emitted = process(events)

    assert emitted == []


def test_a_raise_not_yet_seen_keeps_a_seemingly_complete_order_unsettled():
    # given the header says 2, and 2 details are in, but the second was committed after
    # an update (raise to 3) that the orders topic has not delivered yet
    state = apply_order(OrderState(), order(1, 2))
    state = apply_detail(apply_detail(state, detail(2, 10)), detail(4, 11))

    assert verdict(state, orders_frontier=at(1)) is Verdict.UNSETTLED
    assert verdict(state, orders_frontier=at(4)) is Verdict.EMIT


def test_every_arrival_order_of_a_small_order_gives_the_same_single_emission():
    # order (2 products), 3 details, an update raising it to 3, and a duplicate delivery
    events = [order(1, 2), detail(2, 10, 2), order(3, 3, "u"), detail(4, 11, 1), detail(5, 12, 4),
              detail(4, 11, 1)]
    outcomes = set()
    for arrival in permutations(events):
        state, emitted = process(list(arrival))
        assert len(emitted) == 1, arrival
        outcomes.add(tuple(sorted(products_of(emitted[0]).items())))
    assert outcomes == {((10, 2), (11, 1), (12, 4))}


def test_progress_survives_the_table_codec():
    state, _ = process(CASES["detail deleted and re-inserted"][0] + [detail(6, 12, op="d")], settle_at_end=False)

    assert order_state.decode(order_state.encode(state)) == state
    assert order_state.as_json("o1", state)["status"] in {"emitted", "complete", "incomplete"}


def test_an_emitted_order_is_stored_as_a_marker_that_later_changes_cannot_reopen():
    state, emitted = process(CASES["detail deleted and re-inserted"][0])
    assert len(emitted) == 1 and state.emitted
    assert order_state.decode(order_state.encode(state)) == state  # emitted, still whole (a bulk alert to come)

    stored = order_state.encode(order_state.marker(1_763_880_000))
    assert stored == b'{"e":1763880000}' and order_state.marker_time(stored) == 1_763_880_000
    assert order_state.decode(stored) == order_state.marker(1_763_880_000)
    assert order_state.is_marker(order_state.decode(stored)) and not order_state.is_marker(state)
    assert verdict(order_state.decode(stored), CAUGHT_UP) is Verdict.EMITTED
    assert order_state.marker_time(order_state.encode(state)) is None  # a whole state is no marker


def test_a_marker_written_before_markers_had_a_time_reads_as_time_zero():
    assert order_state.marker_time(b'{"e":true}') == 0
    assert order_state.decode(b'{"e":true}') == order_state.marker(0)


def test_a_state_is_behind_the_sent_one_until_it_has_each_topics_newest_change():
    sent = OrderState()
    for change in (order(10, 2), detail(20, 1), detail(30, 2)):
        sent = apply_order(sent, change) if isinstance(change, OrderChange) else apply_detail(sent, change)
    recovered = apply_detail(apply_order(OrderState(), order(10, 2)), detail(20, 1))  # detail 30 not yet again
    caught_up = apply_detail(recovered, detail(30, 2))
    changed_since = apply_detail(caught_up, detail(40, 2, op="d"))  # a detail deleted after the send

    assert version(sent) == (at(10), at(30))
    assert is_behind(recovered, version(sent))
    assert is_behind(OrderState(), version(sent))
    assert not is_behind(caught_up, version(sent))
    assert not is_behind(changed_since, version(sent))  # a delete counts as its topic's newest change
