"""The Faust application: `faust -A streams.app --datadir=<dir> worker -l info --web-port 6066`.

Run as many workers as there are partitions to share (TOPIC_PARTITIONS), each with its own
`--datadir` (RocksDB files must not be shared) and web port. Agents, tables and web views
are found by autodiscovery in the `agents`, `tables` and `web` packages.
"""

from __future__ import annotations

from config import settings
from streams.runtime.order_pipe_app import OrderPipeApp, broker_credentials
from streams.runtime.metrics import RecordQuietMonitor
from streams.runtime.web_access import bearer_middleware, web_token

app = OrderPipeApp(
    settings.stream_app_id,
    broker=[f"kafka://{address}" for address in settings.kafka_bootstrap.split(",")],
    broker_credentials=broker_credentials(settings.kafka_login("stream"), settings.kafka_sasl_mechanism,
                                       settings.kafka_ssl_context()),
    store="rocksdb://",
    autodiscover=["agents", "tables", "web"],
    origin="streams",
    Completion="agents.completion_worker:CompletionWorker",
    # at_least_once, not exactly_once: faust's transactions skip RocksDB's persisted offsets
    # and send to topics the app does not consume outside any transaction. Exactly one
    # order_final per order comes from the table and the Redis guard (agents/emission/exactly_once.py).
    processing_guarantee="at_least_once",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=settings.replication_factor,
    topic_disable_leader=True,
    table_standby_replicas=0,
    producer_acks=-1,
    # One in-flight request per broker (aiokafka): let records gather instead of sending
    # each alone. The changelog, order_final and notices are mostly written in bursts.
    producer_linger_ms=5,
    producer_max_batch_size=256 * 1024,
    producer_request_timeout=settings.producer_request_timeout_s,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=1.0,
    broker_rebalance_timeout=20.0,
    broker_commit_interval=0.5,
    stream_wait_empty=False,
    stream_buffer_maxsize=16384,
    # Workers create the tick topic as they start (the stack, the CDC topics); a worker whose
    # consumer subscribed before the topic existed sees its partitions at the next metadata
    # refresh: 5 s, not aiokafka's default 5 minutes (ticks would go unread that long).
    consumer_metadata_max_age_ms=5000,
    Monitor=RecordQuietMonitor,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    # Faust's own views list every table's keys and partition owners to anyone holding the
    # token: the pages of web/ are the only ones served (table_route needs no view of Faust's).
    web_router_enabled=False,
    web_tables_enabled=False,
    Router="streams.runtime.web_access:TrustedRouter",
    web_application_options={"middlewares": [bearer_middleware(lambda: app.conf.web_bind, web_token())]},
)
