"""PostgreSQL: the warehouse on a real server, loaded with ADBC's binary COPY.

Some values need help on their way through the driver's COPY: an infinite timestamp or
date (the driver shifts every value from 1970 to 2000, and an infinity overflows), a
NUMERIC carried as text (the driver writes no text into a NUMERIC) and a record (which
it cannot write at all). Timestamps and dates are therefore sent as PostgreSQL's own
binary form, the integers counted from 2000 with infinity at the extremes; text NUMERICs
and records (as JSON) land in a temporary table and are cast on the way into the table.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConfigError, GristmillError, TypeMappingError
from gristmill.postgres_adbc import DriverError, PostgresConnection, PostgresDatabase, faithful
from gristmill.types import DATE_INFINITY, TIMESTAMP_INFINITY, is_numeric_text
from gristmill.warehouse.base import CountingReader, Transaction, Warehouse

WHO = "The PostgreSQL warehouse"


class _PostgresTransaction:
    def __init__(self, conn: PostgresConnection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        _run(self._conn.execute, sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return _run(self._conn.rows, sql, params)

    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return faithful(_run(self._conn.arrow, sql, params))


_R = TypeVar("_R")


def _run(call: Callable[[str, Sequence[Any]], _R], sql: str, params: Sequence[Any]) -> _R:
    try:
        return call(sql, params)
    except DriverError as exc:
        raise BackendError(
            f"PostgreSQL rejected: {sql.strip()[:300]}\n  {exc.first_line}", str(exc)
        ) from None


class PostgresWarehouse(Warehouse):
    NAME = "postgres"
    DIALECT = "postgres"
    SUPPORTS_TRANSACTIONAL_DDL = True
    SUPPORTS_PARALLEL_APPEND = True

    def __init__(self, config: WarehouseConfig, root: Path) -> None:
        super().__init__(config, root)
        if not config.url:
            raise ConfigError(
                'The postgres warehouse needs url = "${WAREHOUSE_URL}" under [warehouse].'
            )
        self.url = config.url
        self._database = PostgresDatabase(self.url, WHO)
        # A connection per thread, so that steps of a run can work at once.
        self._local = threading.local()
        self._connections: list[PostgresConnection] = []
        self._lock = threading.Lock()
        self._connection()

    def _connection(self) -> PostgresConnection:
        conn: PostgresConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._database.connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        conn = self._connection()
        try:
            yield _PostgresTransaction(conn)
        except BaseException:
            conn.rollback()
            raise
        try:
            conn.commit()
        except DriverError as exc:
            raise BackendError(f"PostgreSQL could not commit: {exc.first_line}", str(exc)) from None

    def append(self, schema: str, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        stream = CountingReader.over(batches)
        if stream is None:
            return 0
        arrow_schema = stream.reader.schema
        copied = pa.schema([f.with_type(_copy_type(f.type)) for f in arrow_schema])
        failed: list[GristmillError] = []

        def copies() -> Iterator[pa.RecordBatch]:
            try:
                for batch in stream.reader:
                    yield _for_copy(batch, copied)
            except GristmillError as exc:
                # The driver passes an error of the batches on only as text: keep it whole.
                failed.append(exc)
                raise

        reader = pa.RecordBatchReader.from_batches(copied, copies())
        as_text = [f for f, c in zip(arrow_schema, copied, strict=True) if _lands_as_text(f.type)]
        # A connection of its own, so that several streams load one table at once.
        with closing(self._database.connect()) as conn:
            try:
                if as_text:
                    self._append_through_text(conn, schema, table, reader, as_text)
                else:
                    conn.ingest(schema, table, reader)
                conn.commit()
            except DriverError as exc:
                if failed:
                    raise failed[0] from None
                raise BackendError(
                    f"PostgreSQL rejected the load into {schema}.{table}: {exc.first_line}"
                ) from None
        return stream.rows

    def _append_through_text(
        self,
        conn: PostgresConnection,
        schema: str,
        table: str,
        reader: pa.RecordBatchReader,
        as_text: list[pa.Field],
    ) -> None:
        """Load through a temporary table whose `as_text` columns are TEXT, cast on the
        way into the table."""
        landing = f"_gm_landing_{uuid.uuid4().hex[:12]}"
        target = self.qualified(schema, table)
        conn.execute(f"CREATE TEMPORARY TABLE {self.quote(landing)} (LIKE {target}) ON COMMIT DROP")
        for f in as_text:
            conn.execute(
                f"ALTER TABLE {self.quote(landing)} ALTER COLUMN {self.quote(f.name)} TYPE TEXT"
            )
        temporary = conn.rows(
            "SELECT nspname::text FROM pg_namespace WHERE oid = pg_my_temp_schema()"
        )
        conn.ingest(temporary[0][0], landing, reader)
        cast = {f.name: self.column_type(f.type) for f in as_text}
        names = reader.schema.names
        columns = ", ".join(self.quote(n) for n in names)
        values = ", ".join(
            f"CAST({self.quote(n)} AS {cast[n]})" if n in cast else self.quote(n) for n in names
        )
        conn.execute(f"INSERT INTO {target} ({columns}) SELECT {values} FROM {self.quote(landing)}")

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        conn = self._connection()
        table = _PostgresTransaction(conn).fetch_arrow(sql, params)
        conn.rollback()
        return table

    def set_search_path(self, tx: Transaction, schemas: Sequence[str]) -> None:
        tx.execute(f"SET LOCAL search_path TO {', '.join(self.quote(s) for s in schemas)}")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._database.close()


_TIMESTAMP_SHIFT = 946_684_800_000_000
"""PostgreSQL counts microseconds from 2000-01-01, Arrow from 1970-01-01."""
_DATE_SHIFT = 10_957


def _lands_as_text(dtype: pa.DataType) -> bool:
    return (
        is_numeric_text(dtype)
        or pa.types.is_struct(dtype)
        or (pa.types.is_list(dtype) and is_numeric_text(dtype.value_type))
    )


def _copy_type(dtype: pa.DataType) -> pa.DataType:
    """The Arrow type in which the driver's COPY sends a column of `dtype`."""
    if pa.types.is_timestamp(dtype) and dtype.unit == "us":
        return pa.int64()
    if pa.types.is_date32(dtype):
        return pa.int32()
    if _lands_as_text(dtype):
        return pa.string()
    return dtype


def _for_copy(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    return pa.record_batch(
        [_copy_column(c, f.name) for c, f in zip(batch.columns, schema, strict=True)],
        schema=schema,
    )


def _copy_column(column: pa.Array, name: str) -> pa.Array:
    import pyarrow.compute as pc

    dtype = column.type
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        if pc.any(pc.match_substring(column, "\x00")).as_py():
            raise TypeMappingError(
                name, "it holds the NUL character, which PostgreSQL text cannot hold", ("bytes",)
            )
        return column
    if pa.types.is_timestamp(dtype) and dtype.unit == "us":
        storage, shift, top = pa.int64(), _TIMESTAMP_SHIFT, TIMESTAMP_INFINITY
    elif pa.types.is_date32(dtype):
        storage, shift, top = pa.int32(), _DATE_SHIFT, DATE_INFINITY
    elif pa.types.is_list(dtype) and pa.types.is_temporal(dtype.value_type):
        _no_infinity_inside(column, name)
        return column
    elif pa.types.is_struct(dtype):
        # A record (a JSON object of a file) is stored as JSONB: sent as its JSON text.
        import json

        return pa.array(
            [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()],
            pa.string(),
        )
    elif _lands_as_text(dtype) and pa.types.is_list(dtype):
        # PostgreSQL's array text: {1.5,NaN,NULL}
        values = pc.fill_null(column.values.storage, "NULL")
        items = pa.ListArray.from_arrays(column.offsets, values, mask=column.is_null())
        return pc.binary_join_element_wise("{", pc.binary_join(items, ","), "}", "")
    elif _lands_as_text(dtype):
        return column.storage
    else:
        return column
    raw = column.view(storage)
    infinite, minus_infinite = pc.equal(raw, top), pc.equal(raw, -top)
    finite = pc.if_else(pc.or_(infinite, minus_infinite), pa.scalar(0, storage), raw)
    try:
        shifted = pc.subtract_checked(finite, pa.scalar(shift, storage))
    except pa.ArrowInvalid:
        raise BackendError(
            f"Column '{name}' holds a {'timestamp' if storage == pa.int64() else 'date'} "
            "before PostgreSQL's first (4714 BC)."
        ) from None
    # PostgreSQL's own infinities are the extreme integers.
    return pc.if_else(
        infinite,
        pa.scalar(top, storage),
        pc.if_else(minus_infinite, pa.scalar(-top - 1, storage), shifted),
    )


def _no_infinity_inside(column: pa.ListArray, name: str) -> None:
    """The driver sends an array's elements as Arrow has them, shifted to 2000: an infinity
    inside an array would overflow, so it stops the table by name instead."""
    import pyarrow.compute as pc

    values = column.values
    if pa.types.is_timestamp(values.type) and values.type.unit == "us":
        storage, top = pa.int64(), TIMESTAMP_INFINITY
    elif pa.types.is_date32(values.type):
        storage, top = pa.int32(), DATE_INFINITY
    else:
        return
    raw = values.view(storage)
    if pc.any(pc.or_(pc.equal(raw, top), pc.equal(raw, -top))).as_py():
        raise TypeMappingError(name, "an array holds infinity, which arrays cannot carry here")
