"""Debezium envelopes (JSON) to typed changes: pure functions of the key and value bytes.

Accepts both JsonConverter shapes, `{"schema": ..., "payload": {...}}` (schemas.enable=true)
and the bare payload (false); ops c, u, d, r; truncate (t); tombstones (value None).
Anything else raises `CodecError` with a reason: the agent dead-letters it with the raw
bytes and carries on.

Every change carries its binlog `Position`, a total order over the source's commits
(file number, position, row within the event). Snapshot rows (`op r`) all carry the
position the snapshot was read at, which is right: they show the database as of then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson

Op = Literal["c", "u", "d", "r"]
ROW_OPS = frozenset({"c", "u", "d", "r"})
# The source's ids are CHAR(36) UUIDs; anything else (oversized, paths, markup) is not an
# order id and must not reach the table, the Redis key space or the web views.
ORDER_ID = re.compile(r"[0-9A-Za-z-]{1,64}")


class CodecError(ValueError):
    """Input that is not a change event we can use; `str(error)` is the dead-letter reason."""


class Position(NamedTuple):
    """Ordered as the binlog is (a tuple: compared in C, on every record's path)."""

    file_number: int
    pos: int
    row: int


@dataclass(frozen=True, slots=True)
class OrderChange:
    order_id: str
    op: Op
    customer_id: int | None  # None on delete
    payment_method_id: int | None
    num_products: int | None
    position: Position
    committed_ms: int  # source.ts_ms: whole seconds on MariaDB


@dataclass(frozen=True, slots=True)
class DetailChange:
    order_id: str
    product_id: int
    op: Op
    quantity: int | None  # None on delete
    position: Position
    committed_ms: int


@dataclass(frozen=True, slots=True)
class Tombstone:
    """The null-valued record Debezium writes after a delete (for log compaction)."""


@dataclass(frozen=True, slots=True)
class Truncate:
    table: str
    position: Position


Change = OrderChange | DetailChange | Tombstone | Truncate


def _json(raw: bytes, what: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise CodecError(f"{what} is not JSON: {error}") from None


def _payload(document: Any, what: str) -> dict:
    """The payload of either JsonConverter shape."""
    if isinstance(document, dict) and "payload" in document and "schema" in document:
        document = document["payload"]
    if not isinstance(document, dict):
        raise CodecError(f"{what} is {type(document).__name__}, not an object")
    return document


def _field(row: dict, name: str, kind: type, what: str) -> Any:
    value = row.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        shown = repr(value)[:60]
        raise CodecError(f"{what}.{name} must be {kind.__name__}, got {shown}")
    return value


def _order_id(row: dict, name: str, what: str, key: bytes | None) -> str:
    """The row's order id; it must look like one and match the record's key (the key picks
    the partition, so a mismatch would put the order's state in the wrong partition)."""
    order_id = _field(row, name, str, what)
    if not ORDER_ID.fullmatch(order_id):
        raise CodecError(f"{what}.{name} is not an order id: {order_id[:60]!r}")
    try:
        keyed = orjson.loads(key) if key is not None else None
    except orjson.JSONDecodeError:
        keyed = None  # a key in another shape than the connector's bare id: not ours to judge
    if isinstance(keyed, str) and keyed != order_id:
        raise CodecError(f"record key {keyed[:60]!r} does not match {what}.{name} {order_id!r}")
    return order_id


def _position(source: Any) -> Position:
    if not isinstance(source, dict):
        raise CodecError("source block missing")
    file = source.get("file")
    if not isinstance(file, str) or "." not in file:
        raise CodecError(f"source.file missing or malformed: {file!r}"[:120])
    try:
        file_number = int(file.rsplit(".", 1)[1])
    except ValueError:
        raise CodecError(f"source.file has no binlog number: {file!r}"[:120]) from None
    pos = _field(source, "pos", int, "source")
    row = source.get("row") or 0
    return Position(file_number, pos, row if isinstance(row, int) else 0)


def _envelope(value: bytes) -> tuple[str, dict | None, Position, int]:
    """(op, row image, position, ts_ms) of a row change; raises on anything malformed."""
    payload = _payload(_json(value, "value"), "value")
    op = payload.get("op")
    source = payload.get("source")
    position = _position(source)
    committed_ms = source.get("ts_ms") if isinstance(source.get("ts_ms"), int) else 0
    if op == "t":
        return op, None, position, committed_ms
    if op not in ROW_OPS:
        raise CodecError(f"unknown op {op!r}"[:80])
    row = payload.get("before" if op == "d" else "after")
    if not isinstance(row, dict):
        raise CodecError(f"op {op} without its {'before' if op == 'd' else 'after'} row image")
    return op, row, position, committed_ms


def _row_change(value: bytes | None, table: str) -> tuple[str, dict, Position, int] | Tombstone | Truncate:
    if value is None:
        return Tombstone()
    op, row, position, committed_ms = _envelope(value)
    if row is None:
        return Truncate(table, position)
    return op, row, position, committed_ms


def decode_order(key: bytes | None, value: bytes | None) -> OrderChange | Tombstone | Truncate:
    """A record of `mysql.<db>.orders`."""
    change = _row_change(value, "orders")
    if not isinstance(change, tuple):
        return change
    op, row, position, committed_ms = change
    order_id = _order_id(row, "id", "orders", key)
    if op == "d":
        return OrderChange(order_id, op, None, None, None, position, committed_ms)
    num_products = _field(row, "num_products", int, "orders")
    if num_products < 0:
        raise CodecError(f"orders.num_products is negative: {num_products}")
    return OrderChange(order_id, op, _field(row, "customer_id", int, "orders"),
                       _field(row, "payment_method_id", int, "orders"), num_products,
                       position, committed_ms)


def decode_detail(key: bytes | None, value: bytes | None) -> DetailChange | Tombstone | Truncate:
    """A record of `mysql.<db>.order_details`."""
    change = _row_change(value, "order_details")
    if not isinstance(change, tuple):
        return change
    op, row, position, committed_ms = change
    order_id = _order_id(row, "order_id", "order_details", key)
    product_id = _field(row, "product_id", int, "order_details")
    quantity = None if op == "d" else _field(row, "quantity", int, "order_details")
    return DetailChange(order_id, product_id, op, quantity, position, committed_ms)


# Reference rows: the fields order_final carries of each (docs/stream.md, "Enrichment").
REFERENCE_FIELDS = {"customers": ("name", "email", "city"), "payment_method": ("name", "provider")}


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """A customers or payment_method row as the change left it; `fields` None when deleted."""

    table: str
    row_id: int
    fields: dict[str, str] | None


def decode_reference(table: str, key: bytes | None, value: bytes | None) -> ReferenceRow | Tombstone | Truncate:
    """A record of `mysql.<db>.customers` or `mysql.<db>.payment_method` (keyed `{"id": n}`)."""
    change = _row_change(value, table)
    if not isinstance(change, tuple):
        return change
    op, row, _, _ = change
    row_id = _field(row, "id", int, table)
    try:
        keyed = orjson.loads(key) if key is not None else None
    except orjson.JSONDecodeError:
        keyed = None
    if isinstance(keyed, dict) and keyed.get("id", row_id) != row_id:
        raise CodecError(f"record key {str(keyed)[:60]} does not match {table}.id {row_id}")
    if op == "d":
        return ReferenceRow(table, row_id, None)
    return ReferenceRow(table, row_id, {name: _field(row, name, str, table) for name in REFERENCE_FIELDS[table]})


# Kafka Connect's offset storage: key `["<connector>", {"server": "<topic.prefix>"}]`, value the
# connector's restart point (`{"file": ..., "pos": ..., ...}`), or a tombstone once reset.
def offset_connector(key: bytes | None) -> str | None:
    """The connector an offset storage record belongs to; None if the key is not one."""
    try:
        name = orjson.loads(key)[0] if key else None
    except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
        return None
    return name if isinstance(name, str) else None


def committed_position(value: bytes | None) -> Position | None:
    """The binlog position a Debezium binlog connector would restart from: Connect writes it
    once every record before it is acknowledged by the brokers. Its row is 0 (a restart
    point is a transaction's start or the end of the last one), so it compares greater than
    a change's position only when a later transaction began. None: a reset, or no position."""
    if value is None:
        return None
    try:
        offset = orjson.loads(value)
        return _position(offset)._replace(row=0)
    except (orjson.JSONDecodeError, CodecError):
        return None
