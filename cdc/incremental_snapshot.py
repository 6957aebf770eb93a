"""Debezium's incremental snapshot: the captured tables' current rows read again onto the CDC
topics, beside the binlog, as `r` (read) records whose `source.snapshot` is "incremental". The
way back once retention has cut a CDC topic: snapshot the affected rows, then rebuild
(`python -m streams rebuild`).

A snapshot is asked for with a row in the signal table (`debezium_signal`, config/schema.sql)
and followed through the connector's committed offset (Connect's REST API): while a snapshot
runs, the offset carries its context (`incremental_snapshot_collections`); the snapshot is
over once the committed binlog position has passed the signal and the context is gone (the
connector's heartbeats move the position on when nothing else is written). The rows read so
far are counted on the tables' topics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import mysql.connector
import orjson
from confluent_kafka import Consumer, TopicPartition
from tqdm import tqdm

from cdc import rest
from cdc.connector import CDC_TABLES
from cdc.topics import watermarks
from config import Settings

SIGNAL_TABLE = "debezium_signal"
CONTEXT_KEY = "incremental_snapshot_collections"

BinlogPosition = tuple[int, int]  # (file number, position), as binlog events are ordered


def binlog_position(file: str, pos: int | str) -> BinlogPosition:
    """`mysql-bin.000042`, 1234 -> (42, 1234)."""
    return int(file.rsplit(".", 1)[1]), int(pos)


class SnapshotError(RuntimeError):
    """The snapshot cannot be asked for, or did not finish; the message names the fix."""


def uncaptured(tables: Iterable[str]) -> list[str]:
    return [table for table in tables if table not in CDC_TABLES]


def signal_data(database: str, tables: list[str], where: str | None) -> dict:
    """The execute-snapshot signal's data: an incremental snapshot of `tables`, only the rows
    matching `where` (an SQL condition on each of them) when given."""
    collections = [f"{database}.{table}" for table in tables]
    data: dict = {"data-collections": collections, "type": "incremental"}
    if where:
        data["additional-conditions"] = [{"data-collection": name, "filter": where} for name in collections]
    return data


@dataclass(frozen=True)
class Committed:
    """What the connector's committed offset says: how far it has read the binlog (every record
    before that in Kafka) and the tables of a snapshot under way."""

    position: BinlogPosition | None
    snapshotting: tuple[str, ...]

    @classmethod
    def of(cls, offset: dict | None) -> Committed:
        offset = offset or {}
        file, pos = offset.get("file"), offset.get("pos")
        position = binlog_position(file, pos) if isinstance(file, str) and "." in file and pos else None
        context = orjson.loads(offset[CONTEXT_KEY]) if offset.get(CONTEXT_KEY) else []
        return cls(position, tuple(str(entry.get(f"{CONTEXT_KEY}_id", "?")) for entry in context))

    def finished(self, signalled_at: BinlogPosition) -> bool:
        """Past the signal, with no snapshot left: the one it asked for has ended."""
        return self.position is not None and self.position >= signalled_at and not self.snapshotting


def is_snapshot_read(value: bytes | None) -> bool:
    """A record an incremental snapshot read (not a change, nor the initial snapshot)."""
    if not value:
        return False
    source = orjson.loads(value).get("source") or {}
    return source.get("snapshot") == "incremental"


def _source(settings: Settings):
    """As the connector's user: it may write the signal table and read the binlog position."""
    user, password = settings.mysql_login("cdc")
    return mysql.connector.connect(host=settings.mysql_host, port=settings.mysql_port, user=user,
                                   password=password, database=settings.mysql_database, autocommit=True)


def rows_to_read(settings: Settings, tables: list[str], where: str | None) -> dict[str, int]:
    """Each table's rows the snapshot will read (and a bad `where` fails here, before any signal)."""
    connection = _source(settings)
    try:
        cursor = connection.cursor()
        totals = {}
        for table in tables:
            cursor.execute(f"SELECT COUNT(*) FROM `{table}`" + (f" WHERE {where}" if where else ""))
            totals[table] = cursor.fetchone()[0]
        return totals
    finally:
        connection.close()


def request(settings: Settings, tables: list[str], where: str | None) -> tuple[str, BinlogPosition]:
    """Write the execute-snapshot signal; its id and a binlog position past it."""
    signal_id = str(uuid.uuid4())
    connection = _source(settings)
    try:
        cursor = connection.cursor()
        cursor.execute(f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, 'execute-snapshot', %s)",
                       (signal_id, orjson.dumps(signal_data(settings.mysql_database, tables, where)).decode()))
        cursor.execute("SHOW MASTER STATUS")
        file, pos = cursor.fetchone()[:2]
    finally:
        connection.close()
    return signal_id, binlog_position(file, pos)


class ReadCounter:
    """Counts the snapshot's records on the tables' topics, from where they ended when it was asked for."""

    def __init__(self, settings: Settings, tables: list[str]) -> None:
        self.topics = {settings.cdc_topic(table): table for table in tables}
        self.rows = dict.fromkeys(tables, 0)
        self.consumer = Consumer({**settings.kafka_client_config(), "group.id": f"snapshot-{uuid.uuid4()}",
                                  "enable.auto.commit": False})
        self.consumer.assign([TopicPartition(topic, partition, end) for topic in self.topics
                              for partition, (_, end) in watermarks(settings, topic).items()])

    def read(self, seconds: float) -> dict[str, int]:
        for record in self.consumer.consume(num_messages=10_000, timeout=seconds):
            if not record.error() and is_snapshot_read(record.value()):
                self.rows[self.topics[record.topic()]] += 1
        return self.rows

    def read_to_end(self) -> dict[str, int]:
        """Every record the topics hold now counted."""
        assigned = self.consumer.assignment()
        ends = {(tp.topic, tp.partition): self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in assigned}
        while any(tp.offset < ends[(tp.topic, tp.partition)] for tp in self.consumer.position(assigned)):
            self.read(0.5)
        return self.rows

    def close(self) -> None:
        self.consumer.close()


def under_way(settings: Settings) -> Committed:
    """The connector's committed offset now; SnapshotError if it has none (not registered, or new)."""
    with rest.client(settings) as connect:
        offset = rest.committed_offset(connect, settings.cdc_connector_name)
    if offset is None:
        raise SnapshotError(f"connector {settings.cdc_connector_name} has committed no offset yet: "
                            "register it (`python -m cdc register`) and let its first snapshot finish")
    return Committed.of(offset)


def wait(settings: Settings, signalled_at: BinlogPosition, counter: ReadCounter, totals: dict[str, int], *,
         timeout_s: float, started_within_s: float = 60, progress: bool = True) -> dict[str, int]:
    """Follow the snapshot until it is over, a bar per table; the rows read of each table.
    Raises SnapshotError if the connector does not take the signal, or it outlasts `timeout_s`."""
    started = time.monotonic()
    bars = {table: tqdm(total=total, unit="rows", desc=table, disable=not progress) for table, total in totals.items()}
    with rest.client(settings) as connect:
        try:
            while True:
                committed = Committed.of(rest.committed_offset(connect, settings.cdc_connector_name))
                rows = counter.read(0.5)
                for table, bar in bars.items():
                    bar.update(rows[table] - bar.n)
                if committed.finished(signalled_at):
                    return counter.read_to_end()  # the last records: acknowledged before the offset was
                waited = time.monotonic() - started
                if (committed.position is None or committed.position < signalled_at) and waited > started_within_s:
                    raise SnapshotError(f"the connector has not read the signal after {started_within_s:.0f} s: is it "
                                        "running (`python -m cdc status`)? It takes the signal when it runs again")
                if waited > timeout_s:
                    raise SnapshotError(f"the snapshot is not finished after {timeout_s:.0f} s (still reading "
                                        f"{', '.join(committed.snapshotting)}); it goes on in the connector")
        finally:
            for bar in bars.values():
                bar.close()
