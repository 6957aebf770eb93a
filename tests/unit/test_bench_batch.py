"""bench.batch's reading of the continuous lake: its micro-batch lines, its JVM's threads."""

from __future__ import annotations

import os

from bench.batch import MicroBatches, ThreadCpu, thread_kind

LOG = """\
2026-11-26 12:00:56,627 INFO micro-batch 2: 3,039 records applied, 0 left in the topics; 105 Spark jobs, 5 Delta commits, 26.3 s (silver 12.9 s, gold 7.2 s)
2026-11-26 12:01:14,246 INFO gold.fact_orders: started
2026-11-26 12:01:20,100 INFO micro-batch 3: 16 records applied, 0 left in the topics; 61 Spark jobs, 4 Delta commits, 9.0 s (silver 4.1 s, gold 3.0 s)
"""


def test_jvm_threads_are_told_apart_by_the_names_linux_keeps():
    assert [thread_kind(name) for name in ("C2 CompilerThre", "C1 CompilerThre", "Executor task l", "stream executio",
                                           "GC Thread#1", "G1 Conc#0", "dag-scheduler-e")] == [
        "JIT compiler", "JIT compiler", "executor tasks", "driver", "GC", "GC", "other"]


def test_micro_batch_lines_add_up_and_print_the_jvms_cpu_shares():
    batches = MicroBatches.logged(LOG, lake_orders=26_000)

    assert (batches.batches, batches.records, batches.jobs, batches.commits) == (2, 3_055, 166, 9)
    assert batches.seconds == 35.3
    assert MicroBatches.logged(LOG, lake_orders=26_000, after=2).records == 16  # only those past batch 2
    line = MicroBatches(26_000, 2, 3_055, 166, 9, 35.3, cpu={"JIT compiler": 30.0, "executor tasks": 10.0}).line(1_000)
    assert line.endswith("35.3 s applying; lake process 40.0 CPU s: JIT compiler 30.0 s (75%), executor tasks 10.0 s "
                         "(25%)")


FAST_LANE_LOG = """2026-11-27 12:00:01,100 INFO micro-batch 7: 2,530 records applied, 0 left in the topics; 4 Delta commits, 0.93 s (archive 0.21 s, silver 0.50 s, gold 0.22 s)
2026-11-27 12:00:03,100 INFO micro-batch 8: 30 records applied, 12 left in the topics; 3 Delta commits, 0.41 s (archive 0.10 s, silver 0.21 s, gold 0.10 s)
"""


def test_the_fast_lane_s_lines_add_up_without_spark_jobs():
    batches = MicroBatches.logged(FAST_LANE_LOG, lake_orders=1_000)

    assert (batches.batches, batches.records, batches.jobs, batches.commits) == (2, 2_560, None, 7)
    assert round(batches.seconds, 2) == 1.34
    assert "Spark jobs" not in batches.line(100) and "7 Delta commits (3.5 per micro-batch)" in batches.line(100)


def test_a_process_cpu_is_counted_from_when_it_is_watched():
    watched = ThreadCpu(os.getpid())
    sum(range(3_000_000))  # some CPU in this thread

    spent = watched.since()
    assert spent["other"] > 0 and all(seconds >= 0 for seconds in spent.values())
