"""The peers' pure pieces: the legacy pipeline's completion check, the Quix app's per-order
step, and the machine's busy cores read over a run's window."""

from __future__ import annotations

import time

import orjson
import pytest
import typer

from bench.peers.measure import BusyCores
from bench.peers.quix_completion import step
from bench.peers.legacy import after_row, cached_order, completed_order
from streams.codec import DetailChange, OrderChange, Position


def at(n: int) -> Position:
    return Position(1, n * 100, 0)


def order(n: int, num_products: int, op: str = "c") -> OrderChange:
    return OrderChange("o1", op, 7, 3, num_products, at(n), 1000 + n)


def detail(n: int, product: int, quantity: int = 1, op: str = "c") -> DetailChange:
    return DetailChange("o1", product, op, None if op == "d" else quantity, at(n), 1000 + n)


def run(changes) -> list[dict]:
    raw, emitted = None, []
    for change in changes:
        raw, value = step(raw, change)
        emitted += [value] if value else []
    return emitted


# --- the legacy pipeline ---------------------------------------------------------------
def test_legacy_emits_when_distinct_products_reach_num_products():
    # given an order cached with two products and both detail rows counted
    order_row = cached_order({"id": "o1", "customer_id": 7, "payment_method_id": 3, "num_products": 2})
    # when the check runs
    value = completed_order("o1", order_row, {1002: 4, 1001: 1})
    # then the order_final value lists the products sorted, with the cached header
    assert value["products"] == [{"product_id": 1001, "quantity": 1}, {"product_id": 1002, "quantity": 4}]
    assert (value["customer_id"], value["payment_method_id"], value["num_products"]) == (7, 3, 2)


def test_legacy_waits_while_products_are_missing():
    assert completed_order("o1", {"customer_id": 7, "payment_method_id": 3, "num_products": 3}, {1001: 1}) is None


def test_legacy_misses_a_detail_read_before_its_order():
    # the legacy pipeline's weakness, kept: with no cached order the last detail decides nothing
    assert completed_order("o1", None, {1001: 1, 1002: 1}) is None


def test_legacy_reads_the_after_row_of_either_converter_shape_and_skips_deletes():
    bare = {"op": "c", "before": None, "after": {"id": "o1"}}
    assert after_row(orjson.dumps(bare)) == {"id": "o1"}
    assert after_row(orjson.dumps({"schema": {}, "payload": bare})) == {"id": "o1"}
    assert after_row(orjson.dumps({"op": "d", "before": {"id": "o1"}, "after": None})) is None
    assert after_row(None) is None


# --- quix -------------------------------------------------------------------------------
def test_quix_step_emits_once_when_the_last_detail_arrives():
    emitted = run([order(1, 2), detail(2, 1001), detail(3, 1002, 5), detail(3, 1002, 5)])
    assert [e["products"] for e in emitted] == [[{"product_id": 1001, "quantity": 1},
                                                 {"product_id": 1002, "quantity": 5}]]


def test_quix_step_emits_when_the_order_comes_after_its_details():
    emitted = run([detail(2, 1001), order(1, 1)])
    assert len(emitted) == 1 and emitted[0]["num_products"] == 1


def test_quix_step_follows_a_num_products_update():
    # given an order raised from 1 to 2 products before its details
    emitted = run([order(1, 1), order(2, 2, op="u"), detail(3, 1001), detail(4, 1002)])
    # then it is emitted once, with both products
    assert len(emitted) == 1 and emitted[0]["num_products"] == 2


def test_quix_step_never_emits_a_cancelled_order():
    assert run([order(1, 2), detail(2, 1001), detail(3, 1001, op="d"),
                OrderChange("o1", "d", None, None, None, at(4), 1004), detail(5, 1002)]) == []


# --- the benchmark's bookkeeping -------------------------------------------------------------
def test_a_repeated_round_gets_its_own_topic_groups_and_keys_under_the_same_label():
    from bench.peers.contenders import Contender
    from config import settings

    first, again = Contender("quix", 1), Contender("quix", 1).again(2)
    assert first.label == again.label == "quix x1"
    assert first.output_topic(settings) != again.output_topic(settings)
    assert first.groups(settings) != again.groups(settings)
    assert first.redis_prefix(settings) != again.redis_prefix(settings)


def test_the_audit_columns_add_up_every_round():
    from bench.peers.__main__ import audit_cells
    from source.order_final_audit import Audit

    clean = Audit(3, 3, {}, [], [], [])
    flawed = Audit(3, 4, {"o1": 2}, ["o2"], ["o9"], ["o3", "o4"])
    assert audit_cells(clean, flawed, flawed).split() == ["2", "4", "2", "4"]


def test_every_contender_is_given_against_quix_at_its_best_with_its_cpu_per_record(capsys):
    from bench.peers.__main__ import BEST, report
    from bench.peers.contenders import Contender
    from bench.peers.measure import Throughput
    from source.order_final_audit import Audit

    clean = Audit(3, 3, {}, [], [], [])
    ours = Contender("ours", 1)
    speeds = {ours: [Throughput(30_000, 12.0, clean, cores=1.5), Throughput(36_000, 11.0, clean, cores=1.62)],
              BEST: [Throughput(25_000, 12.5, clean, cores=1.25), Throughput(24_000, 13.0, clean, cores=0.96)]}

    report([ours, BEST], speeds, {}, records=300_000, expected=3, rate=0)
    rows = {line.split()[0] + " " + line.split()[1]: line.split() for line in capsys.readouterr().out.splitlines()
            if line.startswith(("ours x1", "quix-noclaim x1"))}

    # events/s, range, wall, cores, µs/rec (median of 50.0 and 45.0; of 50.0 and 40.0), ours/peer, vs best
    assert rows["ours x1"][2:8] == ["33,000", "30,000-36,000", "11.5", "1.56", "47.5", "1.35x"]
    assert rows["quix-noclaim x1"][2:9] == ["24,500", "24,000-25,000", "12.8", "1.10", "45.0", "1.35x", "1.00x"]


def test_the_peers_benchmark_refuses_at_once_without_quix_streams():
    from bench.peers.__main__ import require_peers

    with pytest.raises(typer.BadParameter, match=r"pip install -e '\.\[bench\]'"):
        require_peers(find=lambda name: None)
    require_peers(find=lambda name: object())


def test_busy_cores_are_read_between_the_samples_around_a_window():
    busy = BusyCores()
    busy.samples = [(0.0, 10.0), (1_000.0, 11.5), (2_000.0, 13.5), (3_000.0, 14.0)]

    assert busy.between(1_000, 2_000) == 2.0  # 2 busy CPU seconds in 1 s
    assert busy.between(1_200, 1_800) == 2.0  # widened to the samples around it
    assert busy.between(0, 3_000) == 4.0 / 3


def test_busy_cores_sample_the_machine_while_open():
    with BusyCores(every_s=0.05) as busy:
        time.sleep(0.3)

    assert len(busy.samples) >= 3
    assert busy.samples == sorted(busy.samples)  # time and busy seconds only grow
    assert busy.between(busy.samples[0][0], busy.samples[-1][0]) >= 0
