"""The lake: Delta tables on MinIO, Bronze -> Silver -> Gold, fed by the CDC topics (MySQL over JDBC
only for the first load and audits), in two engines over shared rules.

`fastlane/`, the hot path without a JVM (delta-rs + Polars): `source.py` (the CDC topics, one
confluent-kafka consumer, each partition from the archive's transaction id), `archive.py` (records
-> archive rows and row changes, pure, the envelope decoded by `streams.codec`, a record it cannot
apply refused with its reason), `silver.py` and `facts.py` (Silver and `fact_orders` in Polars,
pure), `delta.py` (delta-rs reads and writes, MinIO objects or a `file://` lake's), `lane.py` (a
micro-batch: archive, Silver, facts, marks), `lease.py` (who owns the hot tables, and the lane's health
for the doctor), `run.py` (`--continuous`, restarted after a failure, and `archive`). `layers/`, the Spark jobs in one shape (`job.py`:
marks read, tables moved, marks written), none importing another: `bronze.py` (the archiver,
drained), `snapshot.py`, `silver.py`, `history.py`, `gold.py`, `marts.py`; `flows.py` puts them in
order; `names.py`, `archive_reads.py` hold what they share; `transforms/`, their pure Spark transforms.
What both engines share: `rules.py` (Silver's rules and the facts' status as SQL both evaluate),
`paths.py` (where each table lives), `clocks.py` (the lake's clocks and sizes), `kill_points.py`
(the named boundaries between two commits, in either engine, where the fault tests kill the process). `tools/`:
`audit.py`, `maintain.py`, `freshness.py`, `report.py`, `report_page.py`. Spark's session
(`session.py`); `store/`, Spark's reads and writes of the Delta tables: `files.py` (folders and
files through Hadoop's filesystem), `delta_log.py` (versions, commits and tables read from the log
itself), `reads.py` (a table, its change feed), `writes.py` (MERGE of the rows that differ, or an
append), `marks.py` (how far each job has read; the fast lane's lease as the jobs check it); a run's
counts and each write's (`runs.py`, both engines), the schedule (`schedule.py`); one entry point
`python -m batch` (`__main__.py`); docs/lake.md says who owns which table.
"""
