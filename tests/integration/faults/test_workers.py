"""Workers crash and come back, or are added and removed, while orders flow."""

from __future__ import annotations

import random
import threading
import time

from stack.workers import Worker
from tests.integration.faults.injection import FaultRow, sleep_while, every, run_under_fault
from tests.integration.scratch_stream import scratch_stream, uncommitted

# Abandoned orders stall within the run: their alerts are audited too (each once).
STALL_AFTER_S = 5.0
SCALE_OUT_AFTER_S = 2.0
SCALE_IN_AFTER_S = 2.0


def test_a_random_worker_killed_and_restarted_every_few_seconds_loses_and_duplicates_nothing(
        settings, unique_name, scale, fault_table):
    with scratch_stream(settings, unique_name, workers=scale.workers, web_port=16070,
                        stall_after_s=STALL_AFTER_S) as (scratch, workers):
        chooser = random.Random()

        def crash_one() -> None:
            victim = chooser.choice(workers)
            victim.kill()
            victim.start()

        outcome, kills = run_under_fault(scratch, workers, scale,
                                         lambda writing: every(scale.fault_every_s, writing, crash_one))

    result = outcome.audit
    fault_table.append(FaultRow("worker SIGKILL + restart", kills, scale.orders, sum(result.duplicates.values()),
                                len(result.missing), outcome.longest_pause_s))
    assert kills >= 2, "the run ended before two workers were killed: write more orders"
    assert outcome.found_dead == 0, "a restarted worker died again"
    assert outcome.exact, outcome.summary()


def test_scaling_out_from_one_worker_to_three_and_back_in_loses_and_duplicates_nothing(
        settings, unique_name, scale, fault_table):
    with scratch_stream(settings, unique_name, workers=1, web_port=16080,
                        stall_after_s=STALL_AFTER_S) as (scratch, workers):
        extra = [Worker(scratch, 2), Worker(scratch, 3)]

        def out_then_in(writing: threading.Event) -> int:
            # Out early and in soon after the new workers serve: two workers' start on a loaded
            # machine can take most of the run, and both changes must happen while orders flow.
            changes = 0
            if sleep_while(writing, SCALE_OUT_AFTER_S):
                started = time.monotonic()
                for worker in extra:
                    worker.start()
                for worker in extra:
                    worker.wait_ready()
                print(f"scaled out: two workers serving after {time.monotonic() - started:.1f} s")
                changes += 1
            if sleep_while(writing, SCALE_IN_AFTER_S):
                for worker in extra:
                    worker.stop()
                changes += 1
            return changes

        try:
            outcome, changes = run_under_fault(scratch, workers, scale, out_then_in)
            behind = uncommitted(scratch)
            [left] = workers
            left_pid, left_stats = left.pid(), left.stats()
        finally:
            for worker in extra:
                worker.stop()

    result = outcome.audit
    fault_table.append(FaultRow("scale 1 -> 3 -> 1 workers", changes, scale.orders,
                                sum(result.duplicates.values()), len(result.missing), outcome.longest_pause_s))
    assert changes == 2, "the run ended before scaling back in: write more orders"
    assert outcome.exact, (f"{outcome.summary()} in {scratch.stream_app_id}; missing {sorted(result.missing)[:20]}, "
                          f"wrong contents {result.wrong_contents[:20]}")
    # the worker left after scaling in answers as itself and reads every partition again
    assert left_stats is not None and left_stats["worker"].endswith(f":{left_pid}"), (left_pid, left_stats)
    every_partition = {str(p) for p in range(scratch.topic_partitions)}
    assert set(left_stats["next_offsets"].get(scratch.cdc_topic("orders"), {})) == every_partition, left_stats
    assert behind == {}, "CDC records left uncommitted after scaling back in"
