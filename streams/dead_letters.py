"""The dead-letter topic read back: list what the stream could not use, replay it after a fix.

A dead letter is the CDC record as it arrived (key and value bytes) with headers naming why
(`reason`) and where it came from (`topic`, `partition`, `offset`); streams.topics writes
them. Replaying produces the record again, unchanged, to its source topic and partition, as
a role that may write only the CDC topics: the workers' user may write the dead-letter topic,
so a letter naming any other topic, or a partition its topic lacks, is refused and listed. A
record replayed twice is harmless: the stream applies a change at a binlog position it has
already applied as a re-delivery (agents.completion_rule), and a still-broken record is simply
dead-lettered again, with its reason.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

from confluent_kafka import Producer

from cdc.connector import CDC_TABLES
from cdc.topics import Message, read_to_end
from config import Settings

DURATION = re.compile(r"(?P<amount>\d+)(?P<unit>[smhd])")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class DeadLetter:
    offset: int  # in the dead-letter topic
    dead_at_ms: int
    reason: str
    topic: str
    partition: int | None  # None: the header is missing or no number
    source_offset: int | None
    key: bytes | None
    value: bytes | None

    def preview(self, size: int = 40) -> str:
        value = self.value or b""
        return repr(value[:size])[2:-1] + ("…" if len(value) > size else "")


def printable(text: str) -> str:
    """Text from a record (a reason, a key, a topic), safe to print: control characters, escape
    sequences among them, shown escaped."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def _number(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def from_message(message: Message) -> DeadLetter:
    """A dead letter as read; headers anyone who may write the topic could have set, so nothing
    in them is trusted: a header that is no number reads as None."""
    headers = {name: value.decode("utf-8", errors="replace") for name, value in message.headers}
    return DeadLetter(message.offset, message.timestamp_ms, headers.get("reason", "(no reason header)"),
                      headers.get("topic", ""), _number(headers.get("partition")), _number(headers.get("offset")),
                      message.key, message.value)


def refusal(letter: DeadLetter, partitions: dict[str, int]) -> str | None:
    """Why `letter` may not be replayed, or None: only to a CDC topic the settings name
    (`partitions`: each one's partition count) and one of its partitions."""
    if letter.topic not in partitions:
        return f"names {printable(letter.topic)[:80]!r}, no CDC topic of these settings"
    if letter.partition is None or not 0 <= letter.partition < partitions[letter.topic]:
        return f"names no partition of {letter.topic} (it has {partitions[letter.topic]})"
    return None


def since_ms(text: str, now_ms: int) -> int:
    """`15m`, `2h`, `1d` ago, or an ISO 8601 moment (UTC unless it says otherwise)."""
    duration = DURATION.fullmatch(text.strip())
    if duration:
        return now_ms - int(duration["amount"]) * UNIT_S[duration["unit"]] * 1000
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r}: give a duration (30s, 15m, 2h, 1d) or an ISO time "
                         "(2026-11-22T17:00)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def select(letters: Iterable[DeadLetter], *, since: int | None = None, reason: str | None = None,
           offsets: Iterable[int] = ()) -> list[DeadLetter]:
    """The dead letters at or after `since` (ms) whose reason contains `reason`
    (case-insensitive), and, when `offsets` are given, only those."""
    wanted = set(offsets)
    return [letter for letter in letters
            if (since is None or letter.dead_at_ms >= since)
            and (reason is None or reason.lower() in letter.reason.lower())
            and (not wanted or letter.offset in wanted)]


def read_dead_letters(settings: Settings) -> list[DeadLetter]:
    return [from_message(message) for message in read_to_end(settings, settings.dead_letter_topic, raw=True)]


def cdc_partitions(settings: Settings, producer: Producer) -> dict[str, int]:
    """Each CDC topic the settings name that exists, with its partition count."""
    topics = {settings.cdc_topic(table) for table in CDC_TABLES}
    found = producer.list_topics(timeout=10).topics
    return {topic: len(found[topic].partitions) for topic in topics if topic in found}


def replay(settings: Settings, letters: list[DeadLetter]) -> tuple[int, dict[int, str]]:
    """Produce each record again to its source topic and partition, as the replay's own Kafka
    role (it may write the CDC topics, nothing else); the number acknowledged, and the letters
    refused (dead-letter offset -> why), which are not produced."""
    producer = Producer({**settings.kafka_client_config("replay"), "acks": "all",
                         "message.max.bytes": 2_000_000})
    partitions = cdc_partitions(settings, producer)
    refused = {letter.offset: why for letter in letters if (why := refusal(letter, partitions)) is not None}
    chosen = [letter for letter in letters if letter.offset not in refused]
    failures: list[str] = []

    def delivered(error, message) -> None:
        if error is not None:
            failures.append(f"{message.topic()}[{message.partition()}]: {error}")

    for letter in chosen:
        producer.produce(letter.topic, key=letter.key, value=letter.value, partition=letter.partition,
                         headers=[("replayed-from", str(letter.offset).encode())], on_delivery=delivered)
        producer.poll(0)
    left = producer.flush(30)
    if failures or left:
        raise RuntimeError(f"{len(failures) + left} of {len(chosen)} records not replayed: {failures[:3]}")
    return len(chosen), refused
