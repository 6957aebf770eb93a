"""Debezium's incremental snapshot: the captured tables' current rows read again onto the CDC
topics, beside the binlog, as `r` (read) records. The way back once retention has cut a
CDC topic: snapshot the affected rows, then rebuild (`python -m streams rebuild`).

A snapshot is asked for with a row in the signal table (`debezium_signal`, config/schema.sql)
and reported on the connector's notification topic (Debezium's sink channel,
`cdc.connector.notification_topic`): STARTED, an IN_PROGRESS per chunk of rows, a
TABLE_SCAN_COMPLETED per table with its row count, then COMPLETED (or ABORTED). Every
notification of a snapshot carries the signal's id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import mysql.connector
import orjson
from tqdm import tqdm

from cdc.connector import CDC_TABLES, notification_topic
from cdc.topics import TopicMissing, read_to_end
from config import Settings

SIGNAL_TABLE = "debezium_signal"
INCREMENTAL = "Incremental Snapshot"
FINISHED = frozenset({"COMPLETED", "ABORTED"})
CHUNK_ROWS = 1024  # Debezium's incremental.snapshot.chunk.size (its default; the connector keeps it)
QUIET_AFTER_MS = 120_000  # a snapshot under way reports every chunk; one silent this long is not


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


@dataclass
class SnapshotRun:
    """What the notifications of one snapshot have said so far."""

    id: str
    state: str = "REQUESTED"
    at_ms: int = 0
    chunks: dict[str, int] = field(default_factory=dict)  # table -> chunks read
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows, once its scan completed

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def note(self, notification: dict) -> None:
        self.state, self.at_ms = notification["type"], int(notification.get("timestamp") or 0)
        extra = notification.get("additional_data") or {}
        if self.state == "IN_PROGRESS":
            table = extra.get("current_collection_in_progress", "").rsplit(".", 1)[-1]
            self.chunks[table] = self.chunks.get(table, 0) + 1
        elif self.state == "TABLE_SCAN_COMPLETED":
            self.rows[extra.get("scanned_collection", "").rsplit(".", 1)[-1]] = int(extra.get("total_rows_scanned", 0))

    def rows_read(self, table: str, total: int) -> int:
        """Rows of `table` read so far: exact once its scan completed, else by whole chunks."""
        return self.rows.get(table, min(total, self.chunks.get(table, 0) * CHUNK_ROWS))


def runs(notifications: Iterable[dict]) -> dict[str, SnapshotRun]:
    """Every incremental snapshot the notifications tell of, by signal id, in topic order."""
    found: dict[str, SnapshotRun] = {}
    for notification in notifications:
        if notification.get("aggregate_type") == INCREMENTAL:
            found.setdefault(notification["id"], SnapshotRun(notification["id"])).note(notification)
    return found


def under_way(found: dict[str, SnapshotRun], now_ms: int) -> list[SnapshotRun]:
    """Snapshots not finished: paused ones, and running ones that reported lately (a connector
    deleted in the middle of one leaves it unfinished for good)."""
    return [run for run in found.values() if not run.finished
            and (run.state == "PAUSED" or now_ms - run.at_ms < QUIET_AFTER_MS)]


def read_runs(settings: Settings) -> dict[str, SnapshotRun]:
    """Every incremental snapshot the connector has reported (none before its first notification)."""
    try:
        messages = read_to_end(settings, notification_topic(settings), timeout_s=30)
    except TopicMissing:
        return {}
    return runs(message.value for message in messages if message.value)


def _source(settings: Settings):
    return mysql.connector.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                                   password=settings.mysql_password.get_secret_value(),
                                   database=settings.mysql_database, autocommit=True)


def request(settings: Settings, tables: list[str], where: str | None) -> str:
    """Write the execute-snapshot signal; its id, which every notification of the snapshot carries."""
    signal_id = str(uuid.uuid4())
    connection = _source(settings)
    try:
        connection.cursor().execute(f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, 'execute-snapshot', %s)",
                                    (signal_id, orjson.dumps(signal_data(settings.mysql_database, tables, where)).decode()))
    finally:
        connection.close()
    return signal_id


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


def wait(settings: Settings, signal_id: str, totals: dict[str, int], *, timeout_s: float,
         started_within_s: float = 60, progress: bool = True) -> SnapshotRun:
    """Follow the snapshot's notifications until it finishes, a bar per table; the run.
    Raises SnapshotError if it does not start, is aborted, or outlasts `timeout_s`."""
    started = time.monotonic()
    bars = {table: tqdm(total=total, unit="rows", desc=table, disable=not progress) for table, total in totals.items()}
    try:
        while True:
            run = read_runs(settings).get(signal_id, SnapshotRun(signal_id))
            for table, bar in bars.items():
                bar.update(run.rows_read(table, bar.total) - bar.n)
            if run.finished:
                break
            waited = time.monotonic() - started
            if run.state == "REQUESTED" and waited > started_within_s:
                raise SnapshotError(f"the connector did not start snapshot {signal_id} within {started_within_s:.0f} s: "
                                    "is it running (`python -m cdc status`)? It takes the signal when it runs again")
            if waited > timeout_s:
                raise SnapshotError(f"snapshot {signal_id} not finished after {timeout_s:.0f} s (last: {run.state}); "
                                    "it goes on in the connector: see its notifications with "
                                    f"`python -m cdc show {notification_topic(settings)}`")
            time.sleep(0.5)
    finally:
        for bar in bars.values():
            bar.close()
    if run.state == "ABORTED":
        raise SnapshotError(f"snapshot {signal_id} was aborted (a stop-snapshot signal, or the connector's log says why)")
    return run
