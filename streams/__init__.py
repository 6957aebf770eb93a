"""The stream: the Faust app, its topics, codec and tools, and the runtime under the agents.

The app instance and its settings (`app.py`); topics and the hot-path sends (`order_final`, dead
letters, `topics.py`); the Debezium codec (`codec.py`, pure: msgspec decodes and type-checks an
envelope in one pass); `python -m streams rebuild|dead-letters|broker-metrics` (`__main__.py`;
`broker_metrics.py`: the group's lag and the topics' growth asked of the brokers at each Prometheus
scrape, so known while every worker is down; `rebuild.py`: a worker of its own app id deriving a
fresh output topic, stopped when caught up; `dead_letters.py`: list and replay). `runtime/`, the
machinery under the agents, and the only place private Faust, mode and aiokafka names are used (its
docstring lists them); it never imports the app's modules above it (`streams/app.py`, `topics.py`,
the tools): what it needs of them, such as the dead-letter sink, is handed in
(`tests/unit/test_layout.py`): `order_pipe_app.py` (the `faust.App` subclass: the runtime's consumer and
producer installed by its constructor, events created without a settings read, the feed, the output
topics' readiness (`outputs`), the completion worker's start-up steps run before the group join, the
garbage collector's thresholds and the start-up heap frozen, and `app.completion`, the process's
completion worker, built at first use from the class `streams/app.py` names), `commit_protocol.py`
(`CommitProtocol`: when a processed record's offset may be committed, its seven steps in order over
the parts below, its failures as named exceptions), `consumer.py` (every record in order, direct
delivery, the commit floor), `feed.py` (the completion agent's records from the fetch loop to
the agent in batches, past Faust's conductor and stream), `producer.py` (a roomier send buffer; no
resend of an order_final or order_alerts batch the broker may have written; `raw_producer`, the one
way to aiokafka's producer), `state_cache.py` (the write-back cache; `drop` deletes a key at the next
flush), `changelog_table.py` (the table written a flush at a time),
`reference_reader.py` (whole topics, every partition and no group, read into a store of the worker's
own from the offsets it keeps, a record it cannot decode handed to the dead-letter sink it is given;
caught up before the group join), `connect_offsets.py` (the CDC connector's committed binlog
position, followed on Connect's offset topic), `metrics.py` (counters, lag and a monitor without
per-record bookkeeping), `rocksdb_budget.py` (one block cache and one memtable limit shared by every
RocksDB the worker opens, and what they hold), `web_access.py` (the bearer token asked beyond
loopback).
"""
