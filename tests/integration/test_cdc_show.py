"""`python -m cdc show`: a topic's newest messages as JSON lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from confluent_kafka import Producer

from config.settings import REPO_ROOT


def show(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cdc", "show", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, **settings.as_env()})


def test_the_newest_messages_are_shown_oldest_first_json_or_text(settings, unique_name):
    producer = Producer(settings.kafka_client_config())
    for n in range(5):
        producer.produce(unique_name, key=f"k{n}".encode(), value=json.dumps({"n": n}).encode(), partition=0)
        producer.flush(10)  # one after another: their timestamps order them
    producer.produce(unique_name, key=b"k5", value=b"not json", partition=0)
    assert producer.flush(10) == 0

    shown = show(settings, unique_name, "--last", "3")
    missing = show(settings, f"{unique_name}_none")

    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert shown.returncode == 0, shown.stderr
    assert [(line["key"], line["value"]) for line in lines] == [("k3", {"n": 3}), ("k4", {"n": 4}), ("k5", "not json")]
    assert missing.returncode == 1 and "is not on the broker" in missing.stderr
