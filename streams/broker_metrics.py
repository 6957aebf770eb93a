"""The stream as the brokers see it, for Prometheus (`python -m streams broker-metrics`).

A worker's /metrics describes the partitions it holds, and says nothing once it is stopped:
then the lag that matters is the one nobody reports. This exporter asks the brokers, at
each scrape, for the consumer group's committed offsets and every watched topic's end
offsets, so the lag and the topics' growth are known whatever state the workers are in:
- `orderpipe_group_lag_records{group,topic,partition}`: end offset minus the group's
  committed offset on each CDC partition the stream reads (from the log start if the group
  has committed nothing there);
- `orderpipe_topic_records_total{topic,role}`: records appended to a topic (the sum of its
  end offsets), `role` one of cdc, output, alerts, dead_letter, heartbeat (the connector's
  heartbeats: it is alive and reading the binlog; no worker reads them).
A scrape the brokers do not answer fails (HTTP 500), so Prometheus marks the target down.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from cdc.connector import heartbeat_topic
from config import Settings

REQUEST_TIMEOUT_S = 5.0
Partition = tuple[str, int]


def watched_topics(settings: Settings) -> dict[str, str]:
    """Topic -> role, for every topic whose growth the alert rules read."""
    return {settings.cdc_topic("orders"): "cdc", settings.cdc_topic("order_details"): "cdc",
            settings.order_final_topic: "output", settings.order_alerts_topic: "alerts",
            settings.dead_letter_topic: "dead_letter", heartbeat_topic(): "heartbeat"}


def group_lag(committed: Mapping[Partition, int], starts: Mapping[Partition, int],
              ends: Mapping[Partition, int]) -> dict[Partition, int]:
    """Records the group has still to read per partition. No commit (a negative offset) means
    the group starts at the log start; a commit below the log start (retention cut it) too."""
    return {partition: max(0, end - max(committed.get(partition, -1), starts[partition]))
            for partition, end in ends.items()}


def records_per_topic(ends: Mapping[Partition, int]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for (topic, _), end in ends.items():
        totals[topic] = totals.get(topic, 0) + end
    return totals


class BrokerView:
    """A Prometheus collector asking the brokers at every scrape (nothing cached)."""

    def __init__(self, settings: Settings) -> None:
        self.group = settings.stream_app_id
        self.roles = watched_topics(settings)
        self.inputs = [topic for topic, role in self.roles.items() if role == "cdc"]
        self.admin = AdminClient({**settings.kafka_client_config("monitor"), "log_level": 0})

    def _partitions(self) -> list[Partition]:
        topics = self.admin.list_topics(timeout=REQUEST_TIMEOUT_S).topics
        return [(topic, partition) for topic in self.roles if topic in topics and topics[topic].error is None
                for partition in topics[topic].partitions]

    def _offsets(self, partitions: list[Partition], spec: OffsetSpec) -> dict[Partition, int]:
        if not partitions:
            return {}
        futures = self.admin.list_offsets({TopicPartition(*p): spec for p in partitions},
                                          request_timeout=REQUEST_TIMEOUT_S)
        return {(tp.topic, tp.partition): future.result().offset for tp, future in futures.items()}

    def _committed(self, partitions: list[Partition]) -> dict[Partition, int]:
        if not partitions:
            return {}
        request = ConsumerGroupTopicPartitions(self.group, [TopicPartition(*p) for p in partitions])
        answer = self.admin.list_consumer_group_offsets([request], request_timeout=REQUEST_TIMEOUT_S)
        return {(tp.topic, tp.partition): tp.offset for tp in answer[self.group].result().topic_partitions}

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        partitions = self._partitions()
        inputs = [p for p in partitions if p[0] in self.inputs]
        ends = self._offsets(partitions, OffsetSpec.latest())
        lag = GaugeMetricFamily("orderpipe_group_lag_records",
                                "Records the consumer group has still to read, per CDC partition (broker view).",
                                labels=["group", "topic", "partition"])
        lags = group_lag(self._committed(inputs), self._offsets(inputs, OffsetSpec.earliest()),
                         {p: ends[p] for p in inputs})
        for (topic, partition), records in sorted(lags.items()):
            lag.add_metric([self.group, topic, str(partition)], records)
        yield lag
        appended = CounterMetricFamily("orderpipe_topic_records", "Records appended to the topic (its end offsets).",
                                       labels=["topic", "role"])
        for topic, records in sorted(records_per_topic(ends).items()):
            appended.add_metric([topic, self.roles[topic]], records)
        yield appended


def serve(settings: Settings, port: int, host: str = "127.0.0.1") -> None:
    """Serve GET /metrics until the process is stopped."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BrokerView(settings))
    start_http_server(port, addr=host, registry=registry)
    threading.Event().wait()
