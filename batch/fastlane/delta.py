"""The fast lane's reads and writes of the lake, through delta-rs (no JVM), and its small
JSON objects (marks, its lease) through MinIO's client.

A write is one Delta commit, made atomic on MinIO by its conditional writes
(`aws_conditional_put: etag`), never by an unsafe rename. Writes MERGE only the rows that
differ from the table's, so a re-run that brings no news commits nothing; when every row
left is new they are appended. A commit may carry Delta transaction ids (an app id and a
version), which is how the archive knows which Kafka offsets it holds.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake
from deltalake.exceptions import TableNotFoundError
from minio import Minio
from minio.error import S3Error

from batch.fastlane.silver import changed_rows
from batch.rules import DELETE, KNOWN, merge_condition
from batch.runs import Written
from config import Settings
from config.settings import MinioRole

# Every lake table keeps a change feed (the Spark jobs read the hot tables through it), and a
# checkpoint every ten commits, as Spark's default.
TABLE_CONFIGURATION = {"delta.enableChangeDataFeed": "true", "delta.checkpointInterval": "10"}
# What the fast lane can write; any other writer feature (deletion vectors, identity columns, ...)
# makes it refuse the table.
WRITABLE_FEATURES = {"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns",
                     "timestampNtz"}


class UnwritableTable(RuntimeError):
    """A table whose protocol asks for a feature delta-rs cannot write."""


def storage_options(settings: Settings, role: MinioRole = "writer") -> dict[str, str]:
    """delta-rs' options for the lake on MinIO with `role`'s keys; none for a `file://` lake."""
    if settings.lake_uri.startswith("file://"):
        return {}
    access_key, secret_key = settings.minio_login(role)
    return {"AWS_ENDPOINT_URL": f"http://{settings.minio_endpoint}", "AWS_ACCESS_KEY_ID": access_key,
            "AWS_SECRET_ACCESS_KEY": secret_key, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
            "aws_conditional_put": "etag"}


def uri(location: str) -> str:
    """A lake location (`s3a://silver/orders`, the Spark jobs' scheme) as delta-rs names it (a
    local lake's `file://` location as a path)."""
    if location.startswith("file://"):
        return location.removeprefix("file://")
    return "s3://" + location.removeprefix("s3a://")


def partitions_of(columns: Sequence[str], *frames: pl.DataFrame) -> str | None:
    """A MERGE's condition on the target `t` confining it to the partitions `frames`' rows lie
    in (None: the table has no partitions)."""
    if not columns:
        return None
    values = pl.concat([frame.select(columns) for frame in frames], how="vertical_relaxed").unique()
    return " AND ".join(partition_in(name, values[name]) for name in columns)


def partition_in(name: str, values: pl.Series, table: str | None = "t") -> str:
    """`table.name` among `values` (a null among them: or null) as a delta-rs SQL condition."""
    column = f"`{name}`" if table is None else f"{table}.`{name}`"
    known = values.drop_nulls()
    if values.dtype == pl.Date:
        literals = [f"CAST('{value.isoformat()}' AS DATE)" for value in known]
    elif values.dtype.is_integer():
        literals = [str(value) for value in known]
    else:
        literals = ["'" + str(value).replace("'", "''") + "'" for value in known]
    conditions = [f"{column} IN ({', '.join(literals)})"] if literals else []
    if values.null_count():
        conditions.append(f"{column} IS NULL")
    return "(" + " OR ".join(conditions or ["FALSE"]) + ")"


def within_range(column: str, values: pl.Series, arrow_type: pa.DataType) -> pc.Expression:
    """`column` between the least and the greatest of `values` (or null, when one is), as a
    pyarrow filter (`values` not empty)."""
    known = values.drop_nulls()
    if known.is_empty():
        return pc.field(column).is_null()
    between = ((pc.field(column) >= pa.scalar(known.min(), arrow_type))
               & (pc.field(column) <= pa.scalar(known.max(), arrow_type)))
    return between | pc.field(column).is_null() if values.null_count() else between


def arrow_schema(table: DeltaTable) -> pa.Schema:
    """The table's columns as pyarrow types (its log alone: no file is listed)."""
    return pa.schema(table.schema().to_arrow())


class Lake:
    """The lake's Delta tables as delta-rs opens them, each kept open (and brought up to date
    before use) for the life of the process."""

    def __init__(self, settings: Settings, role: MinioRole = "writer") -> None:
        self.settings = settings
        self.options = storage_options(settings, role)
        self.opened: dict[str, DeltaTable] = {}
        self.current: set[str] | None = None  # within `one_look`: the tables brought up to date

    def table(self, location: str, version: int | None = None) -> DeltaTable | None:
        """The table, up to date (at `version` when given); None when it does not exist."""
        table = self.opened.get(location)
        if table is None:
            try:
                table = self.opened[location] = DeltaTable(uri(location), storage_options=self.options,
                                                           version=version)
            except TableNotFoundError:
                return None
        elif version is None:
            if self.current is None or location not in self.current:
                table.update_incremental()
        elif table.version() != version:
            table.load_as_version(version)
        if self.current is not None:
            (self.current.add if version is None else self.current.discard)(location)
        return table

    @contextmanager
    def one_look(self) -> Iterator[None]:
        """Within it, each table's log is read from the store at its first use only, not at each
        (a micro-batch's dozens of reads and writes): the lake's own commits move the tables
        it holds on as they land, and another writer's commit meanwhile is seen by the next
        micro-batch (or refused as a conflict when it touched what a write read)."""
        self.current = set()
        try:
            yield
        finally:
            self.current = None

    def version(self, location: str) -> int | None:
        table = self.table(location)
        return None if table is None else table.version()

    def check_writable(self, location: str) -> None:
        """Refuse a table whose protocol asks for a writer feature delta-rs cannot write."""
        table = self.table(location)
        if table is None:
            return
        protocol = table.protocol()
        unwritable = sorted(set(protocol.writer_features or ()) - WRITABLE_FEATURES)
        if unwritable or protocol.min_writer_version > 7:
            raise UnwritableTable(
                f"{location} needs writer features the fast lane cannot write ({', '.join(unwritable)}); "
                "rebuild it without them (`python -m batch --full` after dropping it) or leave it to Spark")

    def read(self, location: str, column: str | None = None, values: pl.Series | None = None, *,
             columns: Sequence[str] | None = None, where: pc.Expression | None = None,
             partitions: str | None = None, version: int | None = None) -> pl.DataFrame | None:
        """The table's rows (its `columns`, all when None) at `version` (the newest when None):
        those whose `column` is among `values` when given (null among them matching null), and
        that `where` holds for, in the partitions the SQL condition `partitions` names (files in
        no other are listed to pyarrow); None when it does not exist. The parquet files'
        statistics prune by `where` and, for keys other than text, by the values' range; the
        values themselves are matched in Polars: a pyarrow filter naming them costs a pass over
        them for every file."""
        table = self.table(location, version)
        if table is None:
            return None
        dataset = table.to_pyarrow_dataset(file_pruning_predicate=partitions)
        selected = None if columns is None else list(columns)
        if column is None:
            return pl.from_arrow(dataset.to_table(columns=selected, filter=where))
        if values is None or values.is_empty():
            empty = dataset.schema.empty_table()
            return pl.from_arrow(empty if selected is None else empty.select(selected))
        wanted, arrow_type = values.unique(), dataset.schema.field(column).type
        # a range prunes keys given in order (ids); random strings (UUIDs) span every file's
        scan = None if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type) \
            else within_range(column, wanted, arrow_type)
        if where is not None:
            scan = where if scan is None else scan & where
        reading = None if selected is None else list(dict.fromkeys([*selected, column]))
        rows = pl.from_arrow(dataset.to_table(columns=reading, filter=scan))
        found = rows.filter(pl.col(column).is_in(wanted.cast(rows.schema[column]).implode(), nulls_equal=True))
        return found if selected is None else found.select(selected)

    def transaction_version(self, location: str, app_id: str) -> int | None:
        table = self.table(location)
        return None if table is None else table.transaction_version(app_id)

    def append(self, location: str, rows: pl.DataFrame, *, partition_by: Sequence[str] = (),
               transactions: Mapping[str, int] | None = None) -> int:
        """Append `rows` in one commit carrying `transactions` (app id -> version); the table's
        version after it."""
        table = self.table(location)
        commit = CommitProperties(app_transactions=[Transaction(app, version)
                                                    for app, version in (transactions or {}).items()])
        data = self.conformed(table, rows).to_arrow()
        if table is None:
            write_deltalake(uri(location), data, partition_by=list(partition_by) or None, mode="append",
                            configuration=TABLE_CONFIGURATION, storage_options=self.options, commit_properties=commit)
            return self.version(location)
        write_deltalake(table, data, mode="append", commit_properties=commit, schema_mode="merge")
        return table.version()

    def upsert(self, location: str, rows: pl.DataFrame, keys: Sequence[str], *,
               deletes: pl.DataFrame | None = None, partition_by: Sequence[str] = (),
               current: pl.DataFrame | None = None, nullable_keys: Sequence[str] = ()) -> Written:
        """MERGE `rows` into the table by `keys` and delete the `deletes` keys; the first write
        creates the table. Rows identical to the table's are left out; with nothing left, no
        commit. `current`: every row the table holds of `rows`' and `deletes`' keys, if read
        already: a partitioned table's MERGE then reads and rewrites only the partitions those
        rows and `rows` lie in. `nullable_keys`, keys a row may lack (a quarantine's), matched
        null to null."""
        table = self.table(location)
        if table is None:
            write_deltalake(uri(location), rows.to_arrow(), partition_by=list(partition_by) or None,
                            configuration=TABLE_CONFIGURATION, storage_options=self.options)
            return Written(inserted=rows.height, commits=1, version=self.version(location))
        rows = self.conformed(table, rows)
        within = None if current is None else partitions_of(table.metadata().partition_columns, rows, current)
        if current is None:
            current = self.of_keys(location, rows, keys)
        source = changed_rows(rows, current, keys).with_columns(pl.lit(False).alias(DELETE))
        if deletes is not None and not deletes.is_empty():
            gone = deletes.select(keys).cast(dict(rows.select(keys).schema))
            source = pl.concat([source, gone.with_columns(pl.lit(True).alias(DELETE), pl.lit(True).alias(KNOWN))],
                               how="diagonal")
        if source.is_empty():
            return Written(version=table.version())
        if not source[KNOWN].any():
            write_deltalake(table, source.drop(DELETE, KNOWN).to_arrow(), mode="append", schema_mode="merge")
            return Written(inserted=source.height, commits=1, version=table.version())
        matched = merge_condition(keys, nullable_keys) + ("" if within is None else f" AND {within}")
        values = {f"`{name}`": f"s.`{name}`" for name in rows.columns}
        metrics = (table.merge(source.to_arrow(), matched, source_alias="s", target_alias="t",
                               merge_schema=True, streamed_exec=False)
                   .when_matched_delete(f"s.{DELETE}")
                   .when_matched_update(values)
                   .when_not_matched_insert(values, f"NOT s.{DELETE}")
                   .execute())
        return Written(metrics.get("num_target_rows_inserted", 0), metrics.get("num_target_rows_updated", 0),
                       metrics.get("num_target_rows_deleted", 0), 1, table.version())

    def of_keys(self, location: str, rows: pl.DataFrame, keys: Sequence[str], *,
                partitions: str | None = None, version: int | None = None) -> pl.DataFrame | None:
        """The table's rows whose key is among `rows`' keys (in `partitions` at `version`, as
        `read`); None when it does not exist."""
        stored = self.read(location, keys[0], rows[keys[0]], partitions=partitions, version=version)
        if stored is None or len(keys) == 1:
            return stored
        return stored.join(rows.select(keys).unique().cast(dict(stored.select(keys).schema)), on=list(keys),
                           how="semi", nulls_equal=True)

    @staticmethod
    def conformed(table: DeltaTable | None, rows: pl.DataFrame) -> pl.DataFrame:
        """`rows` cast to the table's types where it has their columns (a table Spark made
        holds ints where Polars counts in longs); a column it lacks is added by the write."""
        if table is None:
            return rows
        stored = pl.from_arrow(arrow_schema(table).empty_table()).schema
        return rows.cast({name: dtype for name, dtype in stored.items()
                          if name in rows.columns and rows.schema[name] != dtype})

    def compact(self, location: str, most_files: int) -> tuple[int, int] | None:
        """Compact the table once it holds more than `most_files` files, then checkpoint it: the
        versions it went from and to, None when it did not."""
        table = self.table(location)
        if table is None or len(table.file_uris()) <= most_files:
            return None
        before = table.version()
        table.optimize.compact()
        table.create_checkpoint()
        return before, table.version()


class Objects:
    """The lake's small JSON objects (marks, the fast lane's lease) on MinIO, or as files beside
    the tables of a `file://` lake (tests of the lane's orchestration, no services)."""

    def __init__(self, settings: Settings, role: MinioRole = "writer") -> None:
        self.settings = settings
        self.client: Minio | None = None
        if not settings.lake_uri.startswith("file://"):
            access_key, secret_key = settings.minio_login(role)
            self.client = Minio(settings.minio_endpoint, access_key=access_key, secret_key=secret_key, secure=False)

    @staticmethod
    def split(location: str) -> tuple[str, str]:
        bucket, _, key = location.removeprefix("s3a://").partition("/")
        return bucket, key

    def read(self, location: str) -> dict | None:
        if self.client is None:
            local = Path(uri(location))
            return orjson.loads(local.read_bytes()) if local.is_file() else None
        bucket, key = self.split(location)
        try:
            response = self.client.get_object(bucket, key)
        except S3Error as error:
            if error.code in ("NoSuchKey", "NoSuchBucket"):
                return None
            raise
        try:
            return orjson.loads(response.read())
        finally:
            response.close()
            response.release_conn()

    def modification_times(self, folder: str) -> dict[str, float]:
        """The names in a folder -> when each was last written (epoch seconds); empty when
        there is no such folder."""
        if self.client is None:
            local = Path(uri(folder))
            return {entry.name: entry.stat().st_mtime for entry in local.iterdir()} if local.is_dir() else {}
        bucket, prefix = self.split(folder.rstrip("/") + "/")
        try:
            return {item.object_name.removeprefix(prefix): item.last_modified.timestamp()
                    for item in self.client.list_objects(bucket, prefix=prefix) if not item.is_dir}
        except S3Error as error:
            if error.code == "NoSuchBucket":
                return {}
            raise

    def write(self, location: str, content: dict) -> None:
        body = orjson.dumps(content)
        if self.client is None:  # whole or not at all, as an object store's put
            local = Path(uri(location))
            local.parent.mkdir(parents=True, exist_ok=True)
            local.with_suffix(".tmp").write_bytes(body)
            local.with_suffix(".tmp").replace(local)
            return
        bucket, key = self.split(location)
        self.client.put_object(bucket, key, io.BytesIO(body), len(body), content_type="application/json")

    def read_marks(self, layer: str, name: str = "_marks") -> dict[str, str]:
        """A lake job's marks (the Spark jobs' format, batch.store.marks: `{"marks": {table: mark}, "written_at"}`)."""
        stored = self.read(self.settings.lake_path(layer, f"{name}.json"))
        return {} if stored is None else stored["marks"]

    def write_marks(self, layer: str, marks: dict[str, str], name: str = "_marks") -> None:
        stored = self.read_marks(layer, name)
        if all(stored.get(table) == mark for table, mark in marks.items()):
            return
        self.write(self.settings.lake_path(layer, f"{name}.json"),
                   {"marks": {**stored, **marks}, "written_at": datetime.now(timezone.utc).isoformat()})
