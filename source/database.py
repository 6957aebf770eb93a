"""The source database's I/O: connect, apply the schema, bulk-load reference rows."""

from __future__ import annotations

import csv
import tempfile
from contextlib import contextmanager
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path

import mysql.connector
from mysql.connector.abstracts import MySQLConnectionAbstract as Connection
from tqdm import tqdm

from config import Settings
from config.settings import MysqlRole
from source import reference

SCHEMA = Path(__file__).resolve().parent.parent / "config" / "schema.sql"
TABLES = ("customers", "payment_method", "orders", "order_details")


@contextmanager
def scratch_database(settings: Settings, suffix: str) -> Iterator[Settings]:
    """A database `<MYSQL_DATABASE>_<suffix>` for a test or benchmark, dropped afterwards.

    Yields settings pointing at it, with a connector name of its own; its CDC topics are
    `mysql.<database>_<suffix>.<table>`, so runs never see each other's rows.
    """
    scratch = settings.model_copy(update={
        "mysql_database": f"{settings.mysql_database}_{suffix}",
        "cdc_connector_name": f"{settings.cdc_connector_name}-{suffix}"})
    user, password = settings.mysql_login("owner")
    admin = mysql.connector.connect(host=settings.mysql_host, port=settings.mysql_port, user=user, password=password)
    admin.cursor().execute(f"CREATE DATABASE `{scratch.mysql_database}`")
    try:
        yield scratch
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS `{scratch.mysql_database}`")
        admin.close()


def connect(settings: Settings, *, role: MysqlRole = "owner", autocommit: bool = True) -> Connection:
    """A connection as `role`'s user (config/settings.py): the owner by default."""
    user, password = settings.mysql_login(role)
    return mysql.connector.connect(
        host=settings.mysql_host, port=settings.mysql_port, user=user,
        password=password, database=settings.mysql_database,
        autocommit=autocommit, allow_local_infile=True,
        time_zone="+00:00")  # NOW(3) in UTC: Debezium reads DATETIME values as UTC


def schema_statements(sql: str) -> list[str]:
    """The statements of a schema file (no `;` inside statements there), comments dropped."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [statement.strip() for statement in "\n".join(lines).split(";") if statement.strip()]


def apply_schema(connection: Connection) -> list[str]:
    """Create the tables (the four of the shop and Debezium's signal table) if missing (idempotent).
    Returns the tables now present."""
    cursor = connection.cursor()
    for statement in schema_statements(SCHEMA.read_text()):
        cursor.execute(statement)
    cursor.execute("SHOW TABLES")
    return sorted(row[0] for row in cursor.fetchall())


def _chunks(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


def bulk_load(connection: Connection, table: str, columns: tuple[str, ...],
              rows: Iterable[tuple], total: int, *, chunk_rows: int = 100_000,
              progress: bool = True) -> int:
    """Load rows with LOAD DATA LOCAL INFILE, a chunk per statement; rows whose key
    exists are skipped (IGNORE), so loading the same seeded rows again adds nothing.
    Returns the number of rows inserted."""
    cursor = connection.cursor()
    inserted = 0
    with tempfile.TemporaryDirectory() as folder, \
            tqdm(total=total, unit="rows", desc=table, disable=not progress) as bar:
        path = Path(folder) / f"{table}.csv"
        for chunk in _chunks(rows, chunk_rows):
            with path.open("w", newline="") as handle:
                csv.writer(handle, lineterminator="\n").writerows(chunk)
            cursor.execute(
                f"LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE {table} "
                "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' "
                f"({', '.join(columns)})", (str(path),))
            inserted += cursor.rowcount
            bar.update(len(chunk))
    return inserted


def load_reference(connection: Connection, customers: int, seed: int, *, progress: bool = True) -> int:
    """The 12 payment methods and customers 1..`customers` from the random seed `seed` (idempotent).
    Customers inserted; none generated when every one of those ids is there already."""
    bulk_load(connection, "payment_method", ("id", "name", "provider"), reference.PAYMENT_METHODS,
              len(reference.PAYMENT_METHODS), progress=False)
    if customers_present(connection, customers):
        return 0
    return bulk_load(connection, "customers", reference.CUSTOMER_COLUMNS,
                     reference.customers(customers, seed), customers, progress=progress)


def customers_present(connection: Connection, customers: int) -> bool:
    """Whether customers 1..`customers` are all in the table (one range count on the key)."""
    cursor = connection.cursor()
    cursor.execute("SELECT COUNT(*) FROM customers WHERE id BETWEEN 1 AND %s", (customers,))
    return cursor.fetchone()[0] == customers


def count_rows(connection: Connection, table: str) -> int:
    cursor = connection.cursor()
    cursor.execute(f"SELECT COUNT(*) FROM {table}")
    return cursor.fetchone()[0]
