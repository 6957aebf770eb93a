"""Debezium envelopes (JSON) to typed changes: pure functions of the key and value bytes.

Accepts both JsonConverter shapes, `{"schema": ..., "payload": {...}}` (schemas.enable=true)
and the bare payload (false); ops c, u, d, r; truncate (t); tombstones (value None).
Anything else raises `CodecError` with a reason, whatever the decoder raised (nesting too
deep for it, say): the agent dead-letters it with the raw bytes and carries on.

Every change carries its binlog `Position`, a total order over the source's commits
(file number, position, row within the event). Snapshot rows (`op r`) all carry the
position the snapshot was read at, which is right: they show the database as of then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Generic, Literal, NamedTuple, TypeVar

import msgspec
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


# A row change is a tuple, not a frozen dataclass: one is built per CDC record, and a frozen
# dataclass's `__init__` makes a guarded set per field.
class OrderChange(NamedTuple):
    order_id: str
    op: Op
    customer_id: int | None  # None on delete
    payment_method_id: int | None
    num_products: int | None
    position: Position
    committed_ms: int  # source.ts_ms: whole seconds on MariaDB


class DetailChange(NamedTuple):
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


class _Source(msgspec.Struct):
    """The envelope's source block: the binlog position and commit time of the change."""

    file: Any = None
    pos: Any = None
    row: Any = 0
    ts_ms: Any = 0


class _OrderRow(msgspec.Struct):
    id: str
    customer_id: int | None = None
    payment_method_id: int | None = None
    num_products: int | None = None


class _DetailRow(msgspec.Struct):
    order_id: str
    product_id: int
    quantity: int | None = None


Row = TypeVar("Row")


class _Envelope(msgspec.Struct, Generic[Row]):
    """A row change's payload, decoded and type-checked in one pass into the fields the changes
    carry (msgspec skips the others: the source's many, the row's columns not used). The
    schemas.enable=true shape holds it as `payload`, beside a schema that is skipped."""

    op: str | None = None
    source: _Source | None = None
    before: Row | None = None
    after: Row | None = None
    payload: _Envelope[Row] | None = None


# (op, the row image it carries: after, or before for a delete, position, committed_ms); a
# plain tuple, as Tombstone and Truncate are not: built per CDC record.
RowChange = tuple[str, Row, Position, int]


class _Decoder(Generic[Row]):
    """Records of one table's CDC topic: `decode` gives a `RowChange`, a `Tombstone` or a
    `Truncate`, or raises `CodecError` naming the table and the field."""

    def __init__(self, table: str, row: type) -> None:
        self.table = table
        self.envelope = msgspec.json.Decoder(_Envelope[row])

    def decode(self, value: bytes | None) -> RowChange[Row] | Tombstone | Truncate:
        if value is None:
            return Tombstone()
        try:
            payload = self.envelope.decode(value)
        except msgspec.ValidationError as error:
            raise CodecError(f"{self.table}: {error}") from None
        except msgspec.DecodeError as error:
            raise CodecError(f"value is not JSON: {error}") from None
        except RecursionError:
            raise CodecError("value nested too deep to decode") from None
        except Exception as error:  # noqa: BLE001 - whatever the decoder raises is bad input, never a crash
            raise CodecError(f"value cannot be decoded: {type(error).__name__}: {error}"[:200]) from None
        if payload.payload is not None:
            payload = payload.payload
        op, source = payload.op, payload.source
        position = _position(source)
        committed_ms = source.ts_ms if type(source.ts_ms) is int else 0
        if op == "t":
            return Truncate(self.table, position)
        if op not in ROW_OPS:
            raise CodecError(f"unknown op {op!r}"[:80])
        row = payload.before if op == "d" else payload.after
        if row is None:
            raise CodecError(f"op {op} without its {'before' if op == 'd' else 'after'} row image")
        return op, row, position, committed_ms


def _position(source: Any) -> Position:
    """A source block's (or a connector offset's) binlog position."""
    if isinstance(source, _Source):
        file, pos, row = source.file, source.pos, source.row
    elif isinstance(source, dict):
        file, pos, row = source.get("file"), source.get("pos"), source.get("row")
    else:
        raise CodecError("source block missing")
    if not isinstance(file, str) or "." not in file:
        raise CodecError(f"source.file missing or malformed: {file!r}"[:120])
    try:
        file_number = int(file.rsplit(".", 1)[1])
    except ValueError:
        raise CodecError(f"source.file has no binlog number: {file!r}"[:120]) from None
    if type(pos) is not int:
        raise CodecError(f"source.pos must be int, got {pos!r}"[:120])
    return Position(file_number, pos, row if type(row) is int else 0)


def _required(value: Any, table: str, name: str) -> Any:
    if value is None:
        raise CodecError(f"{table}.{name} must be int, got None")
    return value


def _key(key: bytes | None) -> Any:
    """The record key's JSON; None when absent or not JSON (a key in another shape than the
    connector's is not ours to judge)."""
    try:
        return orjson.loads(key) if key is not None else None
    except (orjson.JSONDecodeError, RecursionError):
        return None


def _order_id(order_id: str, table: str, name: str, key: bytes | None) -> str:
    """The row's order id; it must look like one and match the record's key (the key picks
    the partition, so a mismatch would put the order's state in the wrong partition)."""
    if not ORDER_ID.fullmatch(order_id):
        raise CodecError(f"{table}.{name} is not an order id: {order_id[:60]!r}")
    keyed = _key(key)
    if isinstance(keyed, str) and keyed != order_id:
        raise CodecError(f"record key {keyed[:60]!r} does not match {table}.{name} {order_id!r}")
    return order_id


_ORDERS = _Decoder("orders", _OrderRow)
_DETAILS = _Decoder("order_details", _DetailRow)


def decode_order(key: bytes | None, value: bytes | None) -> OrderChange | Tombstone | Truncate:
    """A record of `mysql.<db>.orders`."""
    change = _ORDERS.decode(value)
    if not isinstance(change, tuple):
        return change
    op, row, position, committed_ms = change
    order_id = _order_id(row.id, "orders", "id", key)
    if op == "d":
        return OrderChange(order_id, op, None, None, None, position, committed_ms)
    num_products = _required(row.num_products, "orders", "num_products")
    if num_products < 0:
        raise CodecError(f"orders.num_products is negative: {num_products}")
    return OrderChange(order_id, op, _required(row.customer_id, "orders", "customer_id"),
                       _required(row.payment_method_id, "orders", "payment_method_id"), num_products,
                       position, committed_ms)


def decode_detail(key: bytes | None, value: bytes | None) -> DetailChange | Tombstone | Truncate:
    """A record of `mysql.<db>.order_details`."""
    change = _DETAILS.decode(value)
    if not isinstance(change, tuple):
        return change
    op, row, position, committed_ms = change
    order_id = _order_id(row.order_id, "order_details", "order_id", key)
    quantity = None if op == "d" else _required(row.quantity, "order_details", "quantity")
    return DetailChange(order_id, row.product_id, op, quantity, position, committed_ms)


# Reference rows: the fields order_final carries of each (docs/stream.md, "Enrichment").
REFERENCE_FIELDS = {"customers": ("name", "email", "city"), "payment_method": ("name", "provider")}
_REFERENCE = {table: _Decoder(table, msgspec.defstruct(f"_{table}_row", [
    ("id", int), *((name, str | None, None) for name in fields)])) for table, fields in REFERENCE_FIELDS.items()}


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    """A customers or payment_method row as the change left it; `fields` None when deleted."""

    table: str
    row_id: int
    fields: dict[str, str] | None


def decode_reference(table: str, key: bytes | None, value: bytes | None) -> ReferenceRow | Tombstone | Truncate:
    """A record of `mysql.<db>.customers` or `mysql.<db>.payment_method` (keyed `{"id": n}`)."""
    change = _REFERENCE[table].decode(value)
    if not isinstance(change, tuple):
        return change
    op, row, _, _ = change
    row_id = row.id
    keyed = _key(key)
    if isinstance(keyed, dict) and keyed.get("id", row_id) != row_id:
        raise CodecError(f"record key {str(keyed)[:60]} does not match {table}.id {row_id}")
    if op == "d":
        return ReferenceRow(table, row_id, None)
    fields = {name: getattr(row, name) for name in REFERENCE_FIELDS[table]}
    missing = [name for name, field in fields.items() if field is None]
    if missing:
        raise CodecError(f"{table}.{missing[0]} must be str, got None")
    return ReferenceRow(table, row_id, fields)


class _LooseEnvelope(msgspec.Struct):
    """Any JSON object read as a Debezium envelope: every field optional and untyped, rows as
    they came (the lake archives every record, and judges rows later)."""

    op: Any = None
    source: Any = None
    ts_ms: Any = None
    before: Any = None
    after: Any = None
    payload: Any = None


class Envelope(NamedTuple):
    """What the lake keeps of a record beside its raw value: each field None where the value
    does not say it (not JSON, a tombstone, a foreign shape)."""

    op: str | None = None
    source_file: str | None = None
    source_pos: int | None = None
    source_row: int | None = None
    committed_ms: int | None = None  # source.ts_ms
    captured_ms: int | None = None  # ts_ms: when Debezium read the change
    row: dict[str, Any] | None = None  # the row image: after, or before for a delete


_LOOSE = msgspec.json.Decoder(_LooseEnvelope)
_NOTHING = Envelope()


def _int(value: Any) -> int | None:
    return value if type(value) is int else None


def decode_envelope(value: bytes | None) -> Envelope:
    """A record's envelope as the lake archives it: never raises (a value that is no
    Debezium JSON gives an empty `Envelope`); both JsonConverter shapes."""
    if value is None:
        return _NOTHING
    try:
        envelope = _LOOSE.decode(value)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return _NOTHING
    if isinstance(envelope.payload, dict):
        try:
            envelope = msgspec.convert(envelope.payload, _LooseEnvelope)
        except msgspec.ValidationError:
            return _NOTHING
    source = envelope.source if isinstance(envelope.source, dict) else {}
    op = envelope.op if isinstance(envelope.op, str) else None
    row = envelope.before if op == "d" else envelope.after
    file = source.get("file")
    return Envelope(op, file if isinstance(file, str) else None, _int(source.get("pos")), _int(source.get("row")),
                    _int(source.get("ts_ms")), _int(envelope.ts_ms), row if isinstance(row, dict) else None)


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
