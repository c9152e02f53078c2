"""PostgreSQL: the warehouse on a real server, loaded with ADBC's binary COPY.

Some values need help on their way through the driver's COPY: an infinite timestamp or
date (the driver shifts every value from 1970 to 2000, and an infinity overflows), a
NUMERIC carried as text (the driver writes no text into a NUMERIC) and a record (which
it cannot write at all). Timestamps and dates are therefore sent as PostgreSQL's own
binary form, the integers counted from 2000 with infinity at the extremes; text NUMERICs
and records (as JSON) land in a temporary table and are cast on the way into the table.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConfigError, GristmillError, TypeMappingError
from gristmill.postgres_adbc import (
    DriverError,
    PostgresConnection,
    PostgresDatabase,
    infinities,
    to_type,
    wire_type,
)
from gristmill.types import DATE_INFINITY, TIMESTAMP_INFINITY, is_numeric_text
from gristmill.warehouse.base import BeyondDecimal, CountingReader, Transaction, Warehouse

WHO = "The PostgreSQL warehouse"
DECIMAL128_DIGITS = 38
DECIMAL256_DIGITS = 76
_FINITE = r"^-?[0-9]+(\.[0-9]+)?$"
"""How PostgreSQL prints a finite NUMERIC (never with an exponent)."""


class _PostgresTransaction:
    def __init__(self, conn: PostgresConnection) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        _run(self._conn.execute, sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        table = _run(self._conn.arrow, sql, params)
        columns = [
            [None if v is None else Decimal(v) for v in _text(c).to_pylist()]
            if _is_numeric(f)
            else to_type(c, wire_type(f)).to_pylist()
            for f, c in zip(table.schema, table.columns, strict=True)
        ]
        return list(zip(*columns, strict=True))

    def fetch_arrow(
        self, sql: str, params: Sequence[Any] = (), beyond_decimal: BeyondDecimal = "raise"
    ) -> pa.Table:
        return _result(_run(self._conn.arrow, sql, params), beyond_decimal)


def _result(table: pa.Table, beyond_decimal: BeyondDecimal = "raise") -> pa.Table:
    """A result as the driver gives it, in faithful Arrow types: NUMERIC arrives opaque
    (its text) and becomes the decimal of its declared precision and scale, or else the
    narrowest that holds every value (see BeyondDecimal); other unknown types text."""
    columns = [
        _numeric(f.name, f, c, beyond_decimal) if _is_numeric(f) else _other(f, c)
        for f, c in zip(table.schema, table.columns, strict=True)
    ]
    return pa.table(columns, names=table.column_names)


def _other(field: pa.Field, column: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column of any other type, with timestamps' and dates' infinities in gristmill's
    encoding (`gristmill.types`)."""
    dtype = wire_type(field)
    typed = to_type(column, dtype)
    if not pa.types.is_temporal(dtype) and not pa.types.is_list(dtype):
        return typed
    return pa.chunked_array([infinities(chunk, field.name) for chunk in typed.chunks], dtype)


def _is_numeric(field: pa.Field) -> bool:
    return (
        isinstance(field.type, pa.BaseExtensionType)
        and field.type.extension_name == "arrow.opaque"
        and (field.metadata or {}).get(b"POSTGRESQL:type") == b"numeric"
    )


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pa.chunked_array([c.storage for c in column.chunks], pa.string())


def _decimal(precision: int, scale: int) -> pa.DataType:
    if precision <= DECIMAL128_DIGITS:
        return pa.decimal128(max(precision, 1), scale)
    return pa.decimal256(precision, scale)


def _declared(field: pa.Field) -> tuple[int, int] | None:
    """NUMERIC(p,s) as declared, when a decimal of that shape exists."""
    typmod = int((field.metadata or {}).get(b"POSTGRESQL:typmod", b"-1")) - 4
    if typmod < 0:
        return None
    precision, scale = (typmod >> 16) & 0xFFFF, typmod & 0xFFFF
    # PostgreSQL 15 allows a negative scale, or one above the precision: shaped by value.
    if precision > DECIMAL256_DIGITS or scale > precision:
        return None
    return precision, scale


def _shape(text: pa.ChunkedArray) -> tuple[int, int]:
    """(precision, scale) of the narrowest decimal that holds every finite value."""
    import pyarrow.compute as pc

    digits = pc.utf8_ltrim(text, characters="-")
    point = pc.find_substring(digits, ".")
    length = pc.utf8_length(digits)
    has_point = pc.greater_equal(point, 0)
    integer = pc.if_else(has_point, point, length)
    # "0.25" and "0" have no integer digit that needs a place.
    integer = pc.if_else(pc.starts_with(digits, "0"), pc.subtract(integer, 1), integer)
    scale = pc.if_else(has_point, pc.subtract(pc.subtract(length, point), 1), 0)
    most_integer, most_scale = pc.max(integer).as_py() or 0, pc.max(scale).as_py() or 0
    return most_integer + most_scale, most_scale


def _numeric(
    name: str, field: pa.Field, column: pa.ChunkedArray, beyond_decimal: BeyondDecimal
) -> pa.ChunkedArray:
    import pyarrow.compute as pc

    text = _text(column)
    finite = pc.match_substring_regex(text, _FINITE)
    if pc.all(finite).as_py() is False:
        if beyond_decimal == "float":
            return pc.cast(text, pa.float64())
        [value] = pc.filter(text, pc.invert(finite)).slice(0, 1).to_pylist()
        raise _unheld(name, f"the value {Decimal(value)}")
    declared = _declared(field)
    if declared is not None:
        return text.cast(_decimal(*declared))
    precision, scale = _shape(text)
    if precision <= DECIMAL256_DIGITS:
        return text.cast(_decimal(precision, scale))
    if beyond_decimal == "float":
        return pc.cast(text, pa.float64())
    raise _unheld(name, f"numbers of {precision} digits at their common scale of {scale}")


def _unheld(name: str, what: str) -> BackendError:
    return BackendError(
        f"{WHO}: column {name} holds {what[:60]}, which no decimal holds exactly (NaN,"
        f" infinities and numbers of more than {DECIMAL256_DIGITS} digits have no Arrow"
        f" decimal). Say what you want in SQL: CAST({name} AS DOUBLE PRECISION) keeps it as a"
        f" double, CAST({name} AS NUMERIC(p,s)) rounds it to the scale you choose."
    )


_R = TypeVar("_R")


def _lock_key(meta_schema: str) -> int:
    """The advisory lock key of the gristmill projects that keep their state in `meta_schema`."""
    digest = hashlib.sha256(f"gristmill:{meta_schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


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
        # A session held for the warehouse's life, holding a shared lock that tells other
        # gristmill processes this one is at work (see `alone`); the server releases it
        # when the process dies.
        self._presence = self._database.connect()
        self._presence_key = _lock_key(self.meta_schema)
        self._presence_lock = threading.Lock()
        self._presence.rows("SELECT pg_advisory_lock_shared($1) IS NULL", [self._presence_key])
        self._presence.commit()

    def _connection(self) -> PostgresConnection:
        conn: PostgresConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._database.connect()
            # UTC inside, whatever the server's or the role's TimeZone: casts between
            # timestamptz, timestamp and date give the same values as on DuckDB.
            _run(conn.execute, "SET TIME ZONE 'UTC'", ())
            # JIT compiled the quickstart's training-set query for 5.5 s, to run it in 0.2 s
            # (100,000 rows: 11.6 s with it, 5.2 s without).
            _run(conn.execute, "SET jit = off", ())
            conn.commit()
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

    def query_arrow(
        self, sql: str, params: Sequence[Any] = (), *, beyond_decimal: BeyondDecimal = "raise"
    ) -> pa.Table:
        conn = self._connection()
        table = _PostgresTransaction(conn).fetch_arrow(sql, params, beyond_decimal)
        conn.rollback()
        return table

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """Alone when no other process holds the shared lock every warehouse object takes."""
        with self._presence_lock:
            key = self._presence_key
            alone = bool(self._presence.rows("SELECT pg_try_advisory_lock($1)", [key])[0][0])
            try:
                yield alone
            finally:
                if alone:
                    self._presence.rows("SELECT pg_advisory_unlock($1)", [key])
                self._presence.commit()

    def set_search_path(self, tx: Transaction, schemas: Sequence[str]) -> None:
        tx.execute(f"SET LOCAL search_path TO {', '.join(self.quote(s) for s in schemas)}")

    def close(self) -> None:
        with self._lock:
            self._presence.close()
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
