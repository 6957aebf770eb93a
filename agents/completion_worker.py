"""This process's completion worker: everything the completion agent keeps between batches.

One `CompletionWorker` per process, built at first use as `app.completion` (streams/app.py
names this class). It owns the state cache and the commit protocol over it, the settling, retention and alert-watch
bookkeeping, the alert rules, the emission with its Redis guards, the reference data, the
connector's committed position and the consumer-lag gauge; the agent loop (agents.completion_loop), the timers
(agents.upkeep), each `PartitionSlice` and the web views all reach them through it. A test
builds one with the parts it wants (its own guards, its own notice writer) and hands it to
the app.

The counters are the process's (streams.runtime.metrics): the runtime writes them too, and
/stats and /metrics report them all.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import faust
from faust.types import TP, Message

from agents.alert_watch import AlertWatch
from agents.alerts import AlertRules
from agents.emission.exactly_once import CLAIM_TTL_MS, Emission, write_notice
from agents.emission.guard import RedisGuard
from agents.emission.outputs import AlertOutput, FinalOutput
from agents.partition_slice import PartitionSlice
from agents.retention import Retention
from agents.settling import Settling
from config import settings
from streams import topics
from streams.runtime.connect_offsets import ConnectorPosition
from streams.runtime.metrics import WORKER, LagGauge, counters
from streams.runtime.reference_reader import TopicReader
from streams.runtime.commit_protocol import CommitProtocol
from streams.runtime.state_cache import WriteBackCache
from tables.order_progress import commit_protocol, state_cache
from tables.order_state import OrderState
from tables.reference_data import reference_reader


class CompletionWorker:
    def __init__(self, app: faust.App, *, guards: tuple[RedisGuard, RedisGuard] | None = None,
                 notify: Callable[[bytes, bytes, int], Awaitable[None]] = write_notice) -> None:
        """`guards`: order_final's and order_alerts' (default: this worker's, on settings.redis_url);
        `notify`: how a batch's acknowledged sends are announced to the agent (the tick topic)."""
        self.app = app
        self.orders_topic = topics.orders.get_topic_name()
        self.details_topic = topics.order_details.get_topic_name()
        self.ticks_topic = topics.settle_ticks.get_topic_name()
        self.counters: Counter[str] = counters
        self.states: WriteBackCache[OrderState] = state_cache()
        self.commit_protocol: CommitProtocol = commit_protocol(self.states)
        self.settling = Settling()
        self.retention = Retention(settings.state_retention_s)
        self.rules = AlertRules(settings.alert_bulk_quantity, settings.alert_bulk_products, settings.stall_after_s)
        self.watch = AlertWatch(settings.stall_after_s)
        self.reference: TopicReader = reference_reader()
        self.cdc_committed = ConnectorPosition(settings.kafka_bootstrap, settings.connect_offsets_topic,
                                               settings.cdc_connector_name, settings.kafka_aiokafka_auth("stream"))
        self.cdc_lag = LagGauge([self.orders_topic, self.details_topic])
        final_guard, alert_guard = guards or (
            RedisGuard(settings.redis_url, WORKER, CLAIM_TTL_MS, settings.order_final_topic),
            RedisGuard(settings.redis_url, WORKER, CLAIM_TTL_MS, settings.order_alerts_topic))
        self.emission = Emission(
            [FinalOutput(topics.order_final, final_guard, settling=self.settling, reference=self.reference,
                         counters=self.counters),
             AlertOutput(topics.order_alerts, alert_guard, watch=self.watch, counters=self.counters)],
            self.counters, notify=notify)

    def start_up_steps(self) -> list[Callable[[], Awaitable[None]]]:
        """What the worker does as it starts, before its consumer joins the group: stop it
        (StartRefused) if Redis refuses its guards' credentials; read the reference data to
        its ends, so its first orders go out enriched."""
        return [self.check_guards, lambda: self.reference.catch_up(self.app.conf.id)]

    async def check_guards(self) -> None:
        for output in self.emission.outputs:
            await output.guard.check_access()

    def slices(self, batch: list[Message]) -> list[PartitionSlice]:
        """The batch's records by partition, each partition's in the order they came."""
        by_partition: dict[int, list[Message]] = {}
        for message in batch:
            by_partition.setdefault(message.partition, []).append(message)
        return [PartitionSlice(self, partition, messages) for partition, messages in by_partition.items()]

    def committed_offset(self, tp: TP) -> int | None:
        """Where reading of `tp` resumed: its committed offset (agents.settling)."""
        return self.app.consumer.committed_offset(tp)

    async def dead_letter(self, message: Message, reason: str) -> None:
        await topics.dead_letter(message, reason)
