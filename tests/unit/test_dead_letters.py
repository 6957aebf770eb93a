"""Dead letters read back (streams.dead_letters, pure parts)."""

from __future__ import annotations

import pytest

from cdc.topics import Message
from streams.dead_letters import DeadLetter, from_message, printable, refusal, select, since_ms

NOW_MS = 1_800_000_000_000


def letter(offset: int, reason: str, age_s: int) -> DeadLetter:
    return DeadLetter(offset, NOW_MS - age_s * 1000, reason, "mysql.db.orders", 1, 40 + offset, b'"k"', b"{nope")


def test_a_message_becomes_a_dead_letter_with_its_origin():
    message = Message("order_cdc_dead_letter", 0, 12, b'"o1"', b"\x00\x01garbage", NOW_MS,
                      (("reason", b"not JSON"), ("topic", b"mysql.db.order_details"), ("partition", b"3"),
                       ("offset", b"977")))

    dead = from_message(message)

    assert (dead.offset, dead.reason, dead.topic, dead.partition, dead.source_offset) == (
        12, "not JSON", "mysql.db.order_details", 3, 977)
    assert dead.key == b'"o1"' and dead.preview(5) == "\\x00\\x01gar…"


def test_selection_by_age_reason_and_offset():
    letters = [letter(0, "invalid JSON", 7200), letter(1, "unknown op 'x'", 60), letter(2, "Invalid json", 10)]

    assert [d.offset for d in select(letters, since=since_ms("15m", NOW_MS))] == [1, 2]
    assert [d.offset for d in select(letters, reason="invalid json")] == [0, 2]
    assert [d.offset for d in select(letters, reason="json", offsets=[2])] == [2]
    assert select(letters) == letters


def test_since_reads_durations_and_iso_times():
    assert since_ms("30s", NOW_MS) == NOW_MS - 30_000
    assert since_ms("2h", NOW_MS) == NOW_MS - 7_200_000
    assert since_ms("2027-01-15T08:00", NOW_MS) == 1_800_000_000_000  # UTC when no zone is given
    assert since_ms("2026-11-22T17:00:00+01:00", NOW_MS) == since_ms("2026-11-22T16:00:00", NOW_MS)
    with pytest.raises(ValueError, match="duration"):
        since_ms("yesterday", NOW_MS)


def test_headers_anyone_could_forge_never_break_reading_and_name_no_place():
    message = Message("order_cdc_dead_letter", 0, 13, None, b"{}", NOW_MS,
                      (("reason", b"x"), ("topic", b"mysql.db.orders"), ("partition", b"zero"), ("offset", b"")))

    dead = from_message(message)

    assert (dead.partition, dead.source_offset) == (None, None)
    assert refusal(dead, {"mysql.db.orders": 4}) == "names no partition of mysql.db.orders (it has 4)"


@pytest.mark.parametrize("topic, partition, why", [
    ("mysql.db.orders", 3, None),
    ("mysql.db.orders", 4, "names no partition of mysql.db.orders (it has 4)"),
    ("mysql.db.orders", -1, "names no partition of mysql.db.orders (it has 4)"),
    ("_connect_configs", 0, "names '_connect_configs', no CDC topic of these settings"),
    ("mysql.other.orders", 0, "names 'mysql.other.orders', no CDC topic of these settings"),
    ("", 0, "names '', no CDC topic of these settings"),
])
def test_a_letter_is_replayed_only_to_a_partition_of_a_cdc_topic_the_settings_name(topic, partition, why):
    forged = DeadLetter(1, NOW_MS, "r", topic, partition, 0, None, b"{}")

    assert refusal(forged, {"mysql.db.orders": 4, "mysql.db.order_details": 4}) == why


def test_text_from_a_record_is_printed_with_its_control_characters_escaped():
    assert printable("bad \x1b[2J\x1b[31mred\r\nline\u202e") == "bad \\x1b[2J\\x1b[31mred\\r\\nline\\u202e"
    assert printable("order 42: value is not JSON") == "order 42: value is not JSON"
