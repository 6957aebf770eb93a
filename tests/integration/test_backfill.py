"""Backfill beyond retention: the CDC topics lose their older records (as retention would cut
them), `python -m cdc snapshot` reads the affected orders again through Debezium's
incremental snapshot, and a rebuild into a new topic is exact against the database."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient

from cdc.topics import watermarks
from config import Settings
from config.settings import REPO_ROOT
from source import database
from stack.scratch import cdc_caught_up
from tests.integration.scratch_stream import scratch_stream, write_orders

ORDERS = 300


def run(settings: Settings, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout_s, env={**os.environ, **settings.as_env()})


def cut_to_the_end(settings: Settings, topics: list[str]) -> dict[tuple[str, int], int]:
    """Delete every record the topics hold now (kafka-delete-records); the new log starts."""
    ends = {(topic, partition): end for topic in topics for partition, (_, end) in watermarks(settings, topic).items()}
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.delete_records([TopicPartition(topic, partition, end)
                                        for (topic, partition), end in ends.items()]).values():
        future.result(timeout=30)
    return ends


def test_a_rebuild_after_the_cdc_topics_were_cut_is_exact_once_the_cut_orders_are_snapshotted(
        settings: Settings, unique_name: str):
    with scratch_stream(settings, unique_name, workers=0) as (scratch, _):
        connection = database.connect(scratch)
        write_orders(scratch, ORDERS, rate=0)
        cdc_caught_up(scratch, connection)
        cursor = connection.cursor()
        cursor.execute("SELECT NOW(3)")
        [cut_at] = cursor.fetchone()
        before_cut = f"`timestamp` <= '{cut_at}'"
        of_orders_before_cut = f"order_id IN (SELECT id FROM orders WHERE {before_cut})"
        cdc = [scratch.cdc_topic("orders"), scratch.cdc_topic("order_details")]
        ends = cut_to_the_end(scratch, cdc)
        write_orders(scratch, ORDERS, rate=0)  # after the cut: still on the topics
        cdc_caught_up(scratch, connection)

        starts = {(topic, partition): start for topic in cdc for partition, (start, _) in watermarks(scratch, topic).items()}
        assert starts == ends and sum(ends.values()) > 2 * ORDERS  # the first orders' records are gone

        cursor.execute(f"SELECT (SELECT COUNT(*) FROM orders WHERE {before_cut}),"
                       f" (SELECT COUNT(*) FROM order_details WHERE {of_orders_before_cut})")
        orders_cut, details_cut = cursor.fetchone()
        orders = run(scratch, "cdc", "snapshot", "--table", "orders", "--where", before_cut)
        details = run(scratch, "cdc", "snapshot", "--table", "order_details", "--where", of_orders_before_cut)
        assert orders.returncode == 0, orders.stdout + orders.stderr
        assert details.returncode == 0, details.stdout + details.stderr
        assert f"completed: {orders_cut:,} rows" in orders.stdout, orders.stdout
        assert f"completed: {details_cut:,} rows" in details.stdout, details.stdout
        print(orders.stdout.strip().splitlines()[-1], details.stdout.strip().splitlines()[-1], sep="\n")

        rebuilt = f"{scratch.order_final_topic}_backfilled"
        rebuild = run(scratch, "streams", "rebuild", "--output", rebuilt, "--web-port", "16399", "--quiet-s", "5",
                      "--timeout-s", "300")
        assert rebuild.returncode == 0, rebuild.stdout[-3000:] + rebuild.stderr[-3000:]

        checked = run(scratch, "source", "audit", "--topic", rebuilt)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        expected = int(re.search(r"expected (\d+)", checked.stdout)[1])
        assert expected > ORDERS and f"received {expected}, duplicates 0, missing 0" in checked.stdout, checked.stdout
