"""The lake's clocks and sizes: how soon a micro-batch starts, how often Spark's deferred work
runs, how stale its tables may get, and the fast lane's lease. One module, so the jobs, the
stack and the doctor agree."""

from __future__ import annotations

DEFAULT_LINGER_S = 1.0  # --continuous --every: the longest a record waits for its micro-batch
MAX_RECORDS_PER_BATCH = 200_000
# A micro-batch's keys and values: the lane holds several times as much while it applies them.
MAX_BATCH_BYTES = 32 * 1024 * 1024
# A CDC value larger than this is quarantined, not applied (Kafka's own default limit is 1 MB).
MAX_RECORD_BYTES = 4 * 1024 * 1024
DEFAULT_DEFERRED_EVERY_S = 60.0  # --deferred-every: Spark's history, dimensions, products, marts
# How far behind its input a deferred table may be with the default clock before the doctor
# calls it late: a few periods, as one run of the deferred work can take a period of its own.
STALENESS_BOUND_S = DEFAULT_DEFERRED_EVERY_S * 5
HEARTBEAT_S = 5.0  # an idle fast lane renews its lease and progress this often
LEASE_S = 60.0  # a fast lane silent this long has stopped; its lease may be taken
# A failed fast lane starts again in its process after RESTART_FIRST_WAIT_S, twice as long after
# each failure that follows soon after another, at most RESTART_LONGEST_WAIT_S; CRASH_LOOP_FAILURES
# failures within CRASH_LOOP_WINDOW_S are a crash loop (logged in one line, and the doctor fails).
RESTART_FIRST_WAIT_S = 1.0
RESTART_LONGEST_WAIT_S = 60.0
CRASH_LOOP_FAILURES = 3
CRASH_LOOP_WINDOW_S = 300.0
# The doctor calls a running lane late when it has not caught up with the CDC topics for this long.
TRAILING_AFTER_S = 60.0
COMPACT_EVERY_S = 60.0  # how often an idle fast lane looks at its tables' file counts
COMPACT_AFTER_FILES = 32  # a hot table is compacted once it holds more files than this
