"""agents.settling: when complete orders may go out, per partition (pure bookkeeping)."""

from __future__ import annotations

from agents.settling import Settling, Tick
from streams.codec import Position


def at(pos: int) -> Position:
    return Position(1, pos, 0)


def test_a_waiting_order_settles_once_the_frontier_passes_its_newest_detail():
    settling = Settling()
    settling.wait(0, "a", at(30), now=100.0)
    before = settling.close_slice(0, at(20), tick=None)
    after = settling.close_slice(0, at(40), tick=None)
    quiet = settling.close_slice(0, None, tick=None)  # a slice without orders changes

    assert (before.ready, after.ready, quiet.ready) == (set(), {"a"}, {"a"})
    assert (before.frontier, after.frontier, quiet.frontier) == (at(20), at(40), at(40))


def test_an_older_frontier_never_moves_it_back():
    settling = Settling()
    settling.close_slice(0, at(40), tick=None)

    assert settling.close_slice(0, at(30), tick=None).frontier == at(40)


def test_a_tick_settles_only_orders_that_waited_since_before_its_check():
    settling = Settling()
    settling.wait(0, "early", at(30), now=100.0)
    settling.wait(0, "late", at(31), now=105.0)

    assert settling.close_slice(0, None, tick=Tick(103.0, at(50))).ready == {"early"}


def test_a_tick_settles_only_orders_whose_newest_detail_the_connector_committed_past():
    """An orders change committed before the newest detail may still be on its way to Kafka
    (Connect retries each partition's batch on its own): a log end does not vouch for it, the
    connector's committed position does."""
    settling = Settling()
    settling.wait(0, "behind", at(30), now=100.0)
    settling.wait(0, "at", at(40), now=100.0)
    settling.wait(0, "ahead", at(50), now=100.0)

    assert settling.close_slice(0, None, tick=Tick(103.0, at(40))).ready == {"behind"}
    assert settling.close_slice(0, None, tick=Tick(104.0, at(51))).ready == {"behind", "at", "ahead"}


def test_an_order_whose_send_failed_waits_only_for_a_tick_after_the_failure():
    settling = Settling()
    settling.sent(0, "a")
    settling.send_failed(0, "a", now=100.0)

    assert settling.close_slice(0, at(90), tick=Tick(99.0, at(90))).ready == set()
    assert settling.close_slice(0, None, tick=Tick(101.0, at(1))).ready == {"a"}


def test_a_newer_detail_restarts_the_wait_and_the_same_one_keeps_it():
    settling = Settling()
    settling.wait(0, "a", at(30), now=100.0)
    settling.wait(0, "a", at(30), now=110.0)
    kept = settling.watch(0).unsettled["a"]
    settling.wait(0, "a", at(35), now=120.0)

    assert (kept, settling.watch(0).unsettled["a"]) == ((at(30), 100.0), (at(35), 120.0))


def test_a_tick_counts_from_the_committed_offset_until_an_orders_record_is_processed():
    """Never from the fetch position: fetched records still in the stream buffers are not processed."""
    settling = Settling()
    resumed = settling.processed_offset(0, committed=40)
    settling.read(0, True, offset=40, resumed_from=40)

    assert (resumed, settling.processed_offset(0, committed=40)) == (40, 41)


def test_an_orders_record_missing_from_the_run_holds_the_processed_offset_and_the_frontier_back():
    settling = Settling()
    first = settling.read(0, True, offset=41, resumed_from=40)  # 40 never reached the stream
    held = settling.processed_offset(0, committed=40)
    again = [settling.read(0, True, offset=offset, resumed_from=40) for offset in (40, 41, 42)]

    assert (first, held) == (False, 40)
    assert again == [True, True, True] and settling.processed_offset(0, committed=40) == 43


def test_an_order_details_record_after_a_missing_one_holds_the_partitions_emissions():
    settling = Settling()
    first = settling.read(0, False, offset=10, resumed_from=10)
    in_order = settling.close_slice(0, None, None).details_gap
    past_gap = settling.read(0, False, offset=12, resumed_from=10)  # 11 never reached the stream
    gap = settling.close_slice(0, None, None).details_gap
    settling.read(0, False, offset=11, resumed_from=10)  # read again

    assert (first, past_gap) == (True, False)
    assert (in_order, gap, settling.close_slice(0, None, None).details_gap) == (False, True, False)


def test_a_sent_order_is_in_flight_until_its_emission_is_recorded_or_its_send_fails():
    settling = Settling()
    settling.wait(0, "a", at(30), now=100.0)
    settling.wait(0, "b", at(31), now=100.0)
    settling.sent(0, "a")
    settling.sent(0, "b")
    in_flight = set(settling.in_flight)
    settling.emitted(0, "a")
    settling.send_failed(0, "b", now=200.0)

    assert in_flight == {"a", "b"}
    assert settling.in_flight == set()
    assert settling.watch(0).unsettled == {"b": (None, 200.0)}  # only a tick settles it now
    assert settling.waiting_partitions() == [0] and settling.unsettled_count() == 1


def test_a_restart_after_recovery_forgets_everything_but_the_orders_found_waiting():
    settling = Settling()
    settling.sent(1, "gone")
    settling.read(1, True, offset=9, resumed_from=None)
    settling.restart([(2, "c", at(50))], now=300.0)

    assert settling.in_flight == set()
    assert settling.waiting_partitions() == [2]
    assert settling.processed_offset(1, committed=5) == 5
    assert settling.watch(2).unsettled == {"c": (at(50), 300.0)}


def test_a_send_failed_after_its_partition_moved_leaves_no_watch_behind():
    settling = Settling()
    settling.wait(0, "kept", at(30), now=100.0)
    settling.sent(1, "moved")
    settling.send_failed(1, "moved", now=200.0)  # partition 1 went to another worker meanwhile
    settling.keep_only({0})

    assert settling.waiting_partitions() == [0]
    assert settling.watch(0).unsettled == {"kept": (at(30), 100.0)}
