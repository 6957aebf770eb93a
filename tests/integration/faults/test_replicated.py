"""A broker of a replicated cluster lost under load: three brokers, every topic with three
replicas and two in sync (`python -m stack up --brokers 3`, and KAFKA_BROKERS=3 for the tests).

Marked `replicated`: on a stack of fewer brokers these are deselected and named in the
summary. Run them with `KAFKA_BROKERS=3 STACK_HOME=.stack-3 make test PYTEST_ARGS="-m replicated"`.
"""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from config import Settings
from stack.services import Kafka, StackLayout, all_services
from tests.integration.faults.injection import once_a_third_in, record, restart, run_under_fault
from tests.integration.scratch_stream import scratch_stream
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.replicated
DOWN_S = 10


def quorum_leader(settings: Settings) -> int:
    """The controller quorum's leader, from the newest epoch any node's quorum-state file records."""
    layout = StackLayout(settings.stack_home)
    states = [json.loads(path.read_text()) for node in kafka_nodes(settings)
              if (path := layout.data(node.name) / "__cluster_metadata-0" / "quorum-state").exists()]
    newest = max(states, key=lambda state: state.get("leaderEpoch", -1))
    return int(newest["leaderId"])


def kafka_nodes(settings: Settings) -> list[Kafka]:
    return [service for service in all_services(settings) if isinstance(service, Kafka)]


def lagging_replicas(settings: Settings, node: int) -> list[str]:
    """Partitions that have `node` among their replicas but not in sync."""
    admin = AdminClient(settings.kafka_client_config())
    topics = admin.list_topics(timeout=10).topics
    return [f"{name}[{partition.id}]" for name, topic in topics.items() for partition in topic.partitions.values()
            if node in partition.replicas and node not in partition.isrs]


@pytest.mark.parametrize("victim", ["a partition leader", "the quorum leader"])
def test_a_broker_killed_under_load_loses_and_doubles_nothing(settings, unique_name, scale, fault_table, victim):
    assert settings.kafka_brokers >= 3 and settings.min_insync_replicas == 2
    with scratch_stream(settings, unique_name, workers=2, web_port=16130) as (scratch, workers):
        leader = quorum_leader(settings)
        cdc_leaders = {partition.leader for partition in AdminClient(settings.kafka_client_config())
                       .list_topics(scratch.cdc_topic("orders"), timeout=10).topics[scratch.cdc_topic("orders")]
                       .partitions.values()}
        node = leader if victim == "the quorum leader" else min(cdc_leaders - {leader} or cdc_leaders)
        target = next(service for service in kafka_nodes(settings) if service.node == node)
        outcome, kills = run_under_fault(scratch, workers, scale, once_a_third_in(
            scale, lambda: restart(target, kill=True, down_s=DOWN_S)))
        back_in_sync = wait_for(lambda: not lagging_replicas(settings, node), 120)

    record(fault_table, f"one of 3 brokers SIGKILLed {DOWN_S} s ({victim})", scale, kills, outcome)
    assert kills == 1
    assert outcome.found_dead == 0, "a worker died with the broker and had to be restarted"
    assert outcome.exact, outcome.summary()
    assert back_in_sync, f"broker {node} not back in sync: {lagging_replicas(settings, node)[:10]}"


def test_every_topic_the_pipeline_made_has_three_replicas_and_needs_two_in_sync(settings):
    admin = AdminClient(settings.kafka_client_config())
    names = [name for name in admin.list_topics(timeout=10).topics
             if name.startswith(("mysql.", "order_final", "order_alerts", "orderpipe", "dead_letters", "order_cdc_dead",
                                 "_connect_", "schema-history", "__consumer"))]
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    in_sync = {resource.name: future.result(timeout=30)["min.insync.replicas"].value
               for resource, future in admin.describe_configs(resources).items()}
    replicas = {name: {len(partition.replicas) for partition in topic.partitions.values()}
                for name, topic in admin.list_topics(timeout=10).topics.items() if name in names}

    assert names
    assert {name: counts for name, counts in replicas.items() if counts != {3}} == {}
    assert {name: value for name, value in in_sync.items() if value != "2"} == {}
