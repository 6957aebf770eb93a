"""`python -m source audit`: order_final checked against the source database, no manifest."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson
import pytest
from confluent_kafka import Producer

from config import Settings
from config.settings import REPO_ROOT
from source import database, generate
from source.traffic import ChaosMix, Truth, plan


@pytest.fixture
def shop(settings: Settings, unique_name: str):
    """A scratch database with 60 orders of the chaos mix written, and their truth."""
    with database.scratch_database(settings, unique_name) as scratch:
        connection = database.connect(scratch)
        database.apply_schema(connection)
        truth = Truth()
        generate.run(connection, plan(60, seed=7, customers=100, chaos=ChaosMix()), total_orders=60, rate=0,
                     truth=truth, progress=False)
        yield scratch, truth.manifest()


def publish(settings: Settings, topic: str, values: list[dict]) -> None:
    producer = Producer(settings.kafka_client_config())
    for value in values:
        producer.produce(topic, key=value["order_id"].encode(), value=orjson.dumps(value))
    assert producer.flush(30) == 0


def audit(settings: Settings, topic: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "source", "audit", "--topic", topic, "--wait-s", "0"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **settings.as_env()})


def finals(manifest: dict) -> list[dict]:
    return [{"order_id": order_id, **order, "completed_at": "2026-01-01T00:00:00Z"}
            for order_id, order in manifest["complete"].items()]


def test_an_exact_topic_passes(shop, unique_name):
    scratch, manifest = shop
    publish(scratch, f"{unique_name}_final", finals(manifest))

    checked = audit(scratch, f"{unique_name}_final")

    assert checked.returncode == 0, checked.stdout + checked.stderr
    complete = len(manifest["complete"])
    assert f"expected {complete}, received {complete}, duplicates 0, missing 0" in checked.stdout


def test_planted_missing_duplicate_wrong_and_unexpected_orders_are_named(shop, unique_name):
    scratch, manifest = shop
    values = finals(manifest)
    dropped, doubled, altered = values[0], values[1], values[2]
    altered["products"] = [{**altered["products"][0], "quantity": altered["products"][0]["quantity"] + 1},
                           *altered["products"][1:]]
    stranger = {**values[3], "order_id": "not-in-the-database"}
    publish(scratch, f"{unique_name}_final", [*values[1:], doubled, stranger])

    checked = audit(scratch, f"{unique_name}_final")

    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"missing: {dropped['order_id']}" in checked.stdout
    assert f"duplicated: {doubled['order_id']}" in checked.stdout
    assert f"wrong contents: {altered['order_id']}" in checked.stdout
    assert "unexpected: not-in-the-database" in checked.stdout


def test_a_missing_topic_is_a_one_line_error(shop, unique_name):
    scratch, _ = shop

    checked = audit(scratch, f"{unique_name}_never_created")

    assert checked.returncode == 1
    assert "is not on the broker" in checked.stderr and "Traceback" not in checked.stderr
