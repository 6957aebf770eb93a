"""bench.profile's reading of py-spy's raw samples: self time by module group and function."""

from pathlib import Path

from collections import Counter

from bench.profile import (MACHINERY, NATIVE_STAGE, budget, project_totals, records_in_window, shares,
                           stage_of, where)

HERE = Path.cwd()  # where the worker ran: the repository


def test_frames_are_grouped_by_project_file_and_by_library():
    assert where(f"put_local ({HERE}/streams/runtime/changelog_table.py:77)") == ("streams/runtime/changelog_table.py",
                                                                 "put_local (streams/runtime/changelog_table.py)")
    assert where("_unpack (/x/.venv/lib/python3.11/site-packages/aiokafka/consumer/fetcher.py:216)") == (
        "aiokafka", "_unpack (aiokafka/consumer/fetcher.py)")
    assert where("select (/usr/lib/python3.11/selectors.py:468)")[0] == "stdlib/selectors.py"


def test_only_the_innermost_frame_of_each_stack_counts_as_self_time():
    raw = (f"run (/x/site-packages/faust/agents/agent.py:1);process ({HERE}/agents/completion_loop.py:9) 7\n"
           "run (/x/site-packages/faust/agents/agent.py:1) 3\n")

    total, by_group, by_function, by_thread = shares(raw)

    assert total == 10
    assert by_group == {"agents/completion_loop.py": 7, "faust": 3}
    assert by_function["process (agents/completion_loop.py)"] == 7


def test_a_project_function_counts_every_sample_under_it_once_per_stack():
    raw = (f"run (/x/site-packages/faust/agents/agent.py:1);process ({HERE}/agents/partition_slice.py:9);"
           f"apply ({HERE}/agents/partition_slice.py:20);_replace (/usr/lib/python3.11/collections/__init__.py:4) 5\n"
           f"process ({HERE}/agents/partition_slice.py:9);process ({HERE}/agents/partition_slice.py:9) 2\n"
           "run (/x/site-packages/faust/agents/agent.py:1) 3\n")

    totals = project_totals(raw)

    assert totals == {"process (agents/partition_slice.py)": 7, "apply (agents/partition_slice.py)": 5}


def test_the_stream_benchmark_echoes_its_configuration():
    from bench.stream import config_echo

    echo = config_echo()
    assert "state flush every 250 ms" in echo and "agent batches of 1000" in echo


def test_samples_recorded_with_threads_are_counted_by_thread_and_function():
    raw = ("thread (0x7F01): MainThread;run_forever (/usr/lib/python3.11/asyncio/base_events.py:1);"
           "select (/usr/lib/python3.11/selectors.py:468) 30\n"
           "thread (0x7F02): Consumer;_fetch (/x/site-packages/aiokafka/consumer/fetcher.py:5) 10\n"
           "thread (0x7F01): MainThread;process (agents/completion_rule.py:3) 20\n")

    total, by_group, _, by_thread = shares(raw)

    assert total == 60
    assert by_thread == {"MainThread: select (stdlib/selectors.py)": 30,
                         "Consumer: _fetch (aiokafka/consumer/fetcher.py)": 10,
                         "MainThread: process (agents/completion_rule.py)": 20}
    assert by_group == {"stdlib/selectors.py": 30, "aiokafka": 10, "agents/completion_rule.py": 20}


def test_a_sample_s_stage_is_its_innermost_project_frame_else_its_innermost_library_frame():
    agent = f"run (/x/site-packages/faust/agents/agent.py:1);process ({HERE}/agents/partition_slice.py:9)"
    state = f"{agent};get ({HERE}/streams/runtime/state_cache.py:3);get (/x/site-packages/rocksdict/__init__.py:2)"
    sender = ("_sender_routine (/x/site-packages/aiokafka/producer/sender.py:7);"
              "send (/x/site-packages/aiokafka/conn.py:5)")

    assert stage_of(f"{agent};decode_order ({HERE}/streams/codec.py:4);loads (orjson:1)".split(";")) == "decode"
    assert stage_of(state.split(";")) == "state cache + changelog"
    assert stage_of(agent.split(";")) == "the rule"
    assert stage_of(sender.split(";")) == "produce (the client's sender: changelog and outputs)"
    assert stage_of(["run (/x/site-packages/faust/transport/consumer.py:1)"]) == MACHINERY
    assert stage_of(["select (/usr/lib/python3.11/selectors.py:468)"]) == "event loop, collector and the rest"


def test_the_budget_splits_the_workers_cpu_as_their_samples_and_adds_the_broker_s():
    per_record = budget(Counter({"decode": 30, "the rule": 10}), worker_cpu_s=2.0, broker_cpu_s=0.5,
                        records=100_000)

    assert per_record == {"decode": 15.0, "the rule": 5.0, "the broker (its process)": 5.0}


def test_quix_s_stacks_fall_in_the_same_stages():
    loop = (f"main ({HERE}/bench/peers/quix_completion.py:88);run (/x/site-packages/quixstreams/app.py:1);"
            "_process_message (/x/site-packages/quixstreams/app.py:2)")
    progress = f"{loop};progress ({HERE}/bench/peers/quix_completion.py:70)"

    assert stage_of(f"{loop};poll_row (/x/site-packages/quixstreams/rowconsumer.py:3)".split(";")) == "fetch"
    assert stage_of(f"{progress};set_bytes (/x/site-packages/quixstreams/state/rocksdb/transaction.py:4)"
                    .split(";")) == "state cache + changelog"
    assert stage_of(f"{progress};apply_detail ({HERE}/agents/completion_rule.py:5)".split(";")) == "the rule"
    assert stage_of(f"{progress};decode ({HERE}/tables/order_state.py:6)".split(";")) == "state cache + changelog"
    assert stage_of(f"{loop};produce_row (/x/site-packages/quixstreams/rowproducer.py:7)".split(";")) \
        == "produce (the client's sender: changelog and outputs)"
    assert stage_of(f"{loop};apply (/x/site-packages/quixstreams/dataframe/dataframe.py:8)".split(";")) == MACHINERY
    assert stage_of(loop.split(";")) == MACHINERY
    assert stage_of(progress.split(";")) == "the rule"


def test_threads_py_spy_cannot_see_are_a_stage_of_their_own():
    per_record = budget(Counter({"fetch": 1}), worker_cpu_s=1.0, broker_cpu_s=0.0, records=100_000, native_cpu_s=0.3)

    assert per_record == {"fetch": 10.0, NATIVE_STAGE: 3.0, "the broker (its process)": 0.0}


def test_the_records_in_a_window_are_its_share_of_the_outputs_appended_in_it():
    appended = [1_000.0, 1_500.0, 2_000.0, 2_500.0, 9_000.0]

    assert records_in_window(appended, 1_400, 2_600, records=1_000) == 600
    assert records_in_window([], 0, 1, records=1_000) == 0
