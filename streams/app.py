"""The Faust application: `faust -A streams.app --datadir=<dir> worker -l info --web-port 6066`.

Run as many workers as there are partitions to share (TOPIC_PARTITIONS), each with its own
`--datadir` (RocksDB files must not be shared) and web port. Agents, tables and web views
are found by autodiscovery in the `agents`, `tables` and `web` packages.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import cached_property
from importlib import metadata

import faust

from config import settings
from streams.consumer import NoSkipConsumer
from streams.feed import Feed
from streams.metrics import RecordQuietMonitor
from streams.producer import BatchingProducer
from streams.web_access import bearer_middleware, check_bind

# The runtime (streams.consumer, streams.changelog, streams.state_cache) reaches into Faust's
# internals, listed in docs/architecture.md; it was proven with this release.
PROVEN_FAUST = "0.15.3"


def faust_version_warning(installed: str) -> str | None:
    """What to say when the installed faust-streaming is not the release the runtime was proven with."""
    if installed == PROVEN_FAUST:
        return None
    return (f"faust-streaming {installed} is installed; the stream's runtime was proven with {PROVEN_FAUST}. "
            "Run the fault suite before trusting it (make test PYTEST_ARGS='-m faults', and FAULT_SUITE=long).")


warning = faust_version_warning(metadata.version("faust-streaming"))
if warning:
    logging.getLogger(__name__).warning(warning)


class OrderPipeApp(faust.App):
    """faust.App with a feed for the completion agent (streams.feed), creating each record's
    event without a settings lookup (the `Event` setting is read once; per record that
    lookup was about 3% of a busy worker's CPU)."""

    @cached_property
    def _event_type(self) -> type:
        return self.conf.Event

    def create_event(self, key, value, headers, message):
        return self._event_type(self, key, value, headers, message)

    def _on_autodiscovery_error(self, name: str) -> None:
        """Faust logs a module that fails to import (an agent's, say) and runs on without it: a
        worker that joins the group and consumes nothing. Stop with the error instead."""
        raise  # noqa: PLE0704 - called by venusian inside its `except`: the import error

    @cached_property
    def before_consuming(self) -> list[Callable[[], Awaitable[None]]]:
        """Awaited as the worker starts, before its consumer joins the group (the reference
        data's catch-up, tables.reference_data); a failure is logged, not fatal."""
        return []

    async def on_start(self) -> None:
        await super().on_start()
        for step in self.before_consuming:
            try:
                await step()
            except Exception:  # noqa: BLE001 - the worker runs without it; the step's owner retries
                logging.getLogger(__name__).exception("a start-up step failed; starting anyway")

    def on_webserver_init(self, web) -> None:
        check_bind(self.conf.web_bind, web_token())

    @cached_property
    def feed(self) -> Feed:
        """The completion agent's records, straight from the consumer (streams.feed)."""
        return Feed(self, maxsize=self.conf.stream_buffer_maxsize)


def web_token() -> str | None:
    return settings.web_token.get_secret_value() if settings.web_token else None


app = OrderPipeApp(
    settings.stream_app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="rocksdb://",
    autodiscover=["agents", "tables", "web"],
    origin="streams",
    # at_least_once, not exactly_once: faust's transactions skip RocksDB's persisted offsets
    # and send to topics the app does not consume outside any transaction. Exactly one
    # order_final per order comes from the table and the Redis guard (agents/emission.py).
    processing_guarantee="at_least_once",
    topic_partitions=settings.topic_partitions,
    topic_replication_factor=1,
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
    # Workers create the tick topic (and missing CDC topics) as they start; a worker whose
    # consumer subscribed before the topic existed sees its partitions at the next metadata
    # refresh: 5 s, not aiokafka's default 5 minutes (ticks would go unread that long).
    consumer_metadata_max_age_ms=5000,
    Monitor=RecordQuietMonitor,
    web_bind="127.0.0.1",
    web_host="127.0.0.1",
    web_application_options={"middlewares": [bearer_middleware(lambda: app.conf.web_bind, web_token())]},
)
# A consumer that cannot commit past records it never delivered (see streams.consumer).
app.transport.Consumer = NoSkipConsumer
app.transport.Producer = BatchingProducer
