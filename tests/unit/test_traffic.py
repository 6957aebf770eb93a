from __future__ import annotations

import random
from collections import Counter

import pytest

from source.traffic import (CancelOrder, ChaosMix, DeleteDetail, InsertDetail, InsertOrder, Truth,
                            UpdateNumProducts, interleave, order_script, plan)


def replay(writes) -> Truth:
    truth = Truth()
    for write in writes:
        truth.apply(write)
    return truth


def test_the_same_seed_plans_the_same_writes():
    assert plan(200, seed=7, customers=1000, chaos=ChaosMix()) == plan(200, seed=7, customers=1000, chaos=ChaosMix())
    assert plan(200, seed=7, customers=1000, chaos=ChaosMix()) != plan(200, seed=8, customers=1000, chaos=ChaosMix())


def test_without_chaos_every_order_is_complete_with_about_1_88_products():
    manifest = replay(plan(5000, seed=1, customers=1000, chaos=ChaosMix.off())).manifest()

    assert manifest["counts"]["complete"] == 5000
    assert manifest["incomplete"] == {} and manifest["cancelled"] == []
    assert 1.8 < manifest["counts"]["detail_rows"] / 5000 < 1.96


@pytest.mark.parametrize("kind", ["plain", "update", "cancel", "redo", "abandon"])
def test_no_order_is_complete_before_its_last_write(kind: str):
    # given scripts of one chaos kind only
    chaos = ChaosMix.off() if kind == "plain" else ChaosMix.only(kind)
    rng = random.Random(3)
    for _ in range(300):
        script = order_script(rng, 100, chaos)
        truth = Truth()
        # when each write but the last is applied, the order is never complete
        for write in script[:-1]:
            truth.apply(write)
            state = truth.orders.get(script[0].order_id)
            assert state is None or len(state.products) < state.num_products, (kind, script)
        truth.apply(script[-1])
        # then the last write decides the outcome the kind promises
        order_id = script[0].order_id
        manifest = truth.manifest()
        expected = {"plain": "complete", "update": "complete", "redo": "complete",
                    "cancel": "cancelled", "abandon": "incomplete"}[kind]
        where = {"complete": manifest["complete"], "incomplete": manifest["incomplete"],
                 "cancelled": manifest["cancelled"]}
        assert order_id in where[expected], (kind, script)


def test_each_kind_writes_what_it_says():
    rng = random.Random(5)
    kinds = {
        "update": UpdateNumProducts, "cancel": CancelOrder, "redo": DeleteDetail,
    }
    for kind, marker in kinds.items():
        script = order_script(rng, 100, ChaosMix.only(kind))
        assert isinstance(script[0], InsertOrder)
        assert any(isinstance(write, marker) for write in script)
    update = order_script(rng, 100, ChaosMix.only("update"))
    assert update[0].num_products != next(w for w in update if isinstance(w, UpdateNumProducts)).num_products


def test_interleaving_keeps_each_orders_writes_in_order_and_mixes_orders():
    rng = random.Random(11)
    scripts = [order_script(rng, 100, ChaosMix()) for _ in range(100)]

    merged = list(interleave(scripts, random.Random(12), in_flight=8))

    assert Counter(map(repr, merged)) == Counter(repr(w) for s in scripts for w in s)
    for script in scripts:
        mine = [w for w in merged if w.order_id == script[0].order_id]
        assert mine == script
    switches = sum(a.order_id != b.order_id for a, b in zip(merged, merged[1:]))
    assert switches > len(merged) / 2


def test_chaos_mix_shares_show_up_in_the_manifest():
    manifest = replay(plan(4000, seed=2, customers=1000,
                           chaos=ChaosMix(update=0.1, cancel=0.1, redo=0.1, abandon=0.1))).manifest()
    counts = manifest["counts"]

    assert 300 < counts["cancelled"] < 500
    assert 300 < counts["incomplete"] < 500
    assert counts["complete"] + counts["incomplete"] + counts["cancelled"] == 4000


def test_the_manifest_lists_final_products_and_quantities():
    writes = [InsertOrder("o1", 5, 1, 2, 2), InsertDetail("o1", 1001, 1), DeleteDetail("o1", 1001),
              InsertDetail("o1", 1001, 4), InsertDetail("o1", 1002, 2)]

    manifest = replay(writes).manifest()

    assert manifest["complete"] == {"o1": {"customer_id": 5, "payment_method_id": 2, "num_products": 2,
                                           "products": [{"product_id": 1001, "quantity": 4},
                                                        {"product_id": 1002, "quantity": 2}]}}


def test_a_chaos_mix_over_one_is_refused():
    with pytest.raises(ValueError, match="sum to <= 1"):
        ChaosMix(update=0.6, cancel=0.6)
