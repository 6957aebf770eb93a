"""When the continuous lake runs its deferred work, and how it gives way to a micro-batch
(local Spark, no services)."""

import threading

import pytest

from batch.continuous import DEFERRED_BACKLOG_FACTOR, ContinuousLake, MicroBatch, deferred_due, deferred_gives_way, records_left


@pytest.mark.parametrize(("age_s", "idle", "due"), [
    (59.0, True, False),                          # not yet a period old
    (60.0, True, True),                           # a period old and nothing to do
    (60.0, False, False),                         # a micro-batch running or records waiting: later
    (60.0 * DEFERRED_BACKLOG_FACTOR - 1, False, False),
    (60.0 * DEFERRED_BACKLOG_FACTOR, False, True),   # a long backlog does not starve them
    (float("inf"), True, True),                   # never built
])
def test_deferred_work_waits_for_an_idle_lake_but_not_forever(age_s, idle, due):
    assert deferred_due(age_s, idle, every_s=60.0) is due


@pytest.mark.parametrize(("age_s", "gives_way"), [
    (60.0, True),                                  # built when idle: the next micro-batch comes first
    (60.0 * DEFERRED_BACKLOG_FACTOR - 1, True),
    (60.0 * DEFERRED_BACKLOG_FACTOR, False),          # as late as a backlog lets them be: finished first
    (float("inf"), False),                         # never built
])
def test_deferred_work_gives_way_unless_it_is_late(age_s, gives_way):
    assert deferred_gives_way(age_s, every_s=60.0) is gives_way


def test_the_records_left_are_the_topics_latest_offsets_past_the_batchs_end():
    progress = {"sources": [{"endOffset": {"orders": {"0": 10, "1": 5}, "customers": {"0": 7}},
                             "latestOffset": {"orders": {"0": 25, "1": 5}, "customers": {"0": 7},
                                              "order_details": {"0": 4}}}]}

    assert records_left(progress) == 15 + 4  # a topic the batch did not read yet counts whole
    assert records_left({"sources": [{"endOffset": None, "latestOffset": None}]}) is None


def test_a_micro_batchs_line_names_its_records_jobs_commits_and_seconds():
    line = MicroBatch(records=16, jobs=41, commits=4, seconds=3.25, silver_s=1.5, gold_s=1.0).line(7, left=1200)

    assert line == ("micro-batch 7: 16 records applied, 1,200 left in the topics; 41 Spark jobs, 4 Delta commits, "
                    "3.2 s (silver 1.5 s, gold 1.0 s)")


class WorkBetweenBatches:
    """`ContinuousLake.run_between_batches` on a thread of its own, as the lake's main thread
    runs the deferred work; what it returned and the job tags its thread held afterwards."""

    def __init__(self, lake: ContinuousLake, work, *, gives_way: bool) -> None:
        self.lake, self.work, self.gives_way = lake, work, gives_way
        self.result, self.tags_after = "not run", None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        self.result = self.lake.run_between_batches("test work", self.work, gives_way=self.gives_way)
        self.tags_after = set(self.lake.spark.sparkContext.getJobTags())


def endless_job(spark) -> int:
    """A Spark job that would take hours (a sum over 10^13 rows)."""
    return spark.range(0, 10**13, numPartitions=2).selectExpr("sum(hash(id)) AS total").first()["total"]


class Watchdog:
    """Cancels every Spark job after a while, so a test whose work is not stopped fails
    instead of hanging."""

    def __init__(self, spark, after_s: float) -> None:
        self.spark, self.fired = spark, threading.Event()
        self.timer = threading.Timer(after_s, self.fire)
        self.timer.start()

    def fire(self) -> None:
        self.fired.set()
        self.spark.sparkContext.cancelAllJobs()

    def cancel(self) -> None:
        self.timer.cancel()


def wait_for_a_job(spark) -> None:
    while not spark.sparkContext.statusTracker().getActiveJobsIds():
        threading.Event().wait(0.1)


def test_a_micro_batch_stops_work_that_gives_way_and_the_lake_runs_on(spark, settings):
    lake = ContinuousLake(spark, settings)
    work = WorkBetweenBatches(lake, lambda: endless_job(spark), gives_way=True)
    work.thread.start()
    wait_for_a_job(spark)
    watchdog = Watchdog(spark, after_s=60)
    with lake.turn():  # returns only once the endless job is cancelled and the work let go
        assert spark.range(10).count() == 10  # the micro-batch's own jobs are not cancelled
    watchdog.cancel()
    assert not watchdog.fired.is_set(), "the micro-batch did not stop the work: the watchdog did"
    work.thread.join(60)
    assert not work.thread.is_alive()
    assert work.result is None and lake.stopped.is_set()
    assert work.tags_after == set()  # the thread's later jobs carry no tag
    after = WorkBetweenBatches(lake, lambda: spark.range(7).count(), gives_way=True)
    after.thread.start()
    after.thread.join(60)
    assert after.result == 7  # nothing left stopped or held


def test_a_micro_batch_waits_for_work_that_does_not_give_way(spark, settings):
    lake = ContinuousLake(spark, settings)
    release = threading.Event()

    def slow_work() -> int:
        release.wait(60)
        return spark.range(5).count()

    work = WorkBetweenBatches(lake, slow_work, gives_way=False)
    work.thread.start()
    while not lake.working.locked():
        threading.Event().wait(0.05)
    threading.Timer(2.0, release.set).start()
    with lake.turn():
        assert release.is_set()  # the micro-batch began only after the work ended
    work.thread.join(60)
    assert work.result == 5 and not lake.stopped.is_set()


def test_work_between_batches_does_nothing_while_a_micro_batch_runs(spark, settings):
    lake = ContinuousLake(spark, settings)
    ran = []
    with lake.turn():
        work = WorkBetweenBatches(lake, lambda: ran.append(True), gives_way=True)
        work.thread.start()
        work.thread.join(60)
    assert work.result is None and ran == []


class IdleQuery:
    """The streaming query's status as `run_deferred` reads it: no micro-batch under way."""

    status = {"isTriggerActive": False, "isDataAvailable": False}


def test_a_round_lets_a_waiting_micro_batch_go_first_and_goes_on_from_the_step_it_stopped_at(spark, settings):
    lake = ContinuousLake(spark, settings, deferred_every_s=0)
    lake.query, ran = IdleQuery(), []
    lake.steps = [(name, lambda name=name: ran.append(name) or name) for name in ("first", "second", "third")]

    def second_waits_for_a_micro_batch() -> str:
        ran.append("second")
        lake.waiting.set()  # a micro-batch asks for its turn while this step runs
        return "second"

    lake.steps[1] = ("second", second_waits_for_a_micro_batch)
    lake.run_deferred()
    assert ran == ["first", "second"] and lake.next_step == 2  # the third waits for the micro-batch

    lake.waiting.clear()  # the micro-batch has had its turn
    lake.run_deferred()
    assert ran == ["first", "second", "third"] and lake.next_step == 0  # the round ended where it stopped
