"""What the PostgreSQL source, the PostgreSQL warehouse and the diff share: one
connection over ADBC's low-level API, and how its Arrow output maps to faithful Arrow
types.

ADBC's DB-API module is not used: importing it imports pyarrow.dataset, pandas and
polars, a third of a second in every process that reads one changed row.
"""

from __future__ import annotations

import re
import struct
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import pyarrow as pa

from gristmill.errors import ConnectionFailedError, MissingDependencyError

_STOP_WHEN_ABANDONED = (
    "SELECT set_config(name, '1s', false) FROM pg_settings"
    " WHERE name = 'client_connection_check_interval'"
)
"""A statement whose process died (killed, its host gone) stops within a second instead of
running on, holding its locks (PostgreSQL 14 and later; older servers lack the setting)."""

_T = TypeVar("_T")


class DriverError(Exception):
    """PostgreSQL or the driver refused a statement. `first_line` is the message without
    the driver's context lines; callers turn it into a BackendError that says what they
    were doing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.first_line = message.split("\n")[0]


def describe_url(url: str) -> str:
    """host:port/database, for messages: never the user's password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def with_connect_timeout(url: str) -> str:
    """`url` with libpq's connect_timeout set to gristmill's default, unless it sets its own:
    without one, a host that does not answer holds the connection for minutes."""
    from gristmill import config

    if "://" not in url:  # a "host=... dbname=..." string
        if re.search(r"\bconnect_timeout\s*=", url):
            return url
        return f"{url} connect_timeout={config.CONNECT_TIMEOUT_SECONDS}"
    if "connect_timeout" in parse_qs(urlsplit(url).query):
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}connect_timeout={config.CONNECT_TIMEOUT_SECONDS}"


def _driver(purpose: str) -> Any:
    try:
        import adbc_driver_manager
        import adbc_driver_postgresql
    except ImportError:
        raise MissingDependencyError("adbc-driver-postgresql", "postgres", purpose) from None
    return adbc_driver_manager, adbc_driver_postgresql


def _scalar(dtype: pa.DataType, data: bytes) -> pa.Array:
    return pa.Array.from_buffers(dtype, 1, [None, pa.py_buffer(data)])


def _parameters(values: Sequence[Any]) -> pa.RecordBatch:
    """One row of bound parameters. Text, integers, floats, booleans and NULLs are built
    from raw buffers: converting Python objects makes pyarrow import pandas."""
    columns = []
    for value in values:
        if value is None:
            columns.append(pa.nulls(1, pa.string()))
        elif isinstance(value, str):
            data = value.encode()
            offsets = pa.py_buffer(struct.pack("<2i", 0, len(data)))
            columns.append(
                pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])
            )
        elif isinstance(value, bool):
            columns.append(_scalar(pa.bool_(), bytes([value])))
        elif isinstance(value, int):
            columns.append(_scalar(pa.int64(), struct.pack("<q", value)))
        elif isinstance(value, float):
            columns.append(_scalar(pa.float64(), struct.pack("<d", value)))
        else:
            columns.append(pa.array([value]))
    return pa.RecordBatch.from_arrays(columns, names=[str(i) for i in range(len(columns))])


class PostgresDatabase:
    """ADBC's database handle for one url; its connections share what it learnt at
    opening and cost one handshake each (3 ms).

    By default it reads the server's type catalog first: 40 ms, a tenth of a small
    incremental sync. With `builtin_types` it knows PostgreSQL's own types from a table
    of the driver's and reads nothing; a user-defined type (an enum, a composite) then
    arrives opaque, and the caller casts it to text."""

    def __init__(self, url: str, who: str, builtin_types: bool = False) -> None:
        manager, postgres = _driver(who)
        self.url = url
        self.who = who
        self._manager = manager
        self._lock = threading.Lock()
        options = {"adbc.postgresql.type_resolver_mode": "builtin"} if builtin_types else None
        with self._connect_errors():
            self._db = postgres.connect(with_connect_timeout(url), db_kwargs=options)

    @contextmanager
    def _connect_errors(self) -> Iterator[None]:
        try:
            yield
        except self._manager.Error as exc:
            reason = str(exc).split("\n")[0].removeprefix("IO: [libpq] Failed to connect: ")
            raise ConnectionFailedError(
                f"{self.who}: cannot connect to PostgreSQL at {describe_url(self.url)}: "
                f"{reason}. Check the host, port, user and password in its url."
            ) from None

    def connect(self) -> PostgresConnection:
        """A new connection; it may be used by another thread than the one opening it."""
        with self._lock, self._connect_errors():
            handle = self._manager.AdbcConnection(self._db)
            handle.set_autocommit(False)
        connection = PostgresConnection(self._manager._lib, handle)
        try:
            connection.rows(_STOP_WHEN_ABANDONED)
            connection.commit()
        except DriverError as exc:
            connection.close()
            raise ConnectionFailedError(
                f"{self.who}: PostgreSQL at {describe_url(self.url)}: {exc.first_line}"
            ) from None
        return connection

    def close(self) -> None:
        self._db.close()


class PostgresConnection:
    """A connection with an open transaction (autocommit off, as in DB-API): `commit` or
    `rollback` ends it and begins the next."""

    def __init__(self, lib: Any, connection: Any) -> None:
        self._lib = lib
        self._conn = connection
        self._own_database: PostgresDatabase | None = None

    @classmethod
    def open(cls, url: str, who: str) -> PostgresConnection:
        """A lone connection, with a database handle of its own that it closes."""
        database = PostgresDatabase(url, who)
        connection = database.connect()
        connection._own_database = database
        return connection

    def _call(self, statement: Any, func: Callable[[], _T]) -> _T:
        """A blocking driver call that Ctrl-C cancels, with driver errors translated."""
        try:
            result: _T = self._lib._blocking_call(func, (), {}, statement.cancel)
        except self._lib.Error as exc:
            raise DriverError(str(exc)) from None
        return result

    def _statement(self, sql: str, params: Sequence[Any]) -> Any:
        statement = self._lib.AdbcStatement(self._conn)
        statement.set_sql_query(sql)
        if params:
            statement.bind(_parameters(params))
        return statement

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        statement = self._statement(sql, params)
        try:
            self._call(statement, statement.execute_update)
        finally:
            statement.close()

    def batches(self, sql: str, params: Sequence[Any] = ()) -> Iterator[pa.RecordBatch]:
        """The result, streamed: the statement stays open until the batches are read."""
        from adbc_driver_manager._reader import AdbcRecordBatchReader

        statement = self._statement(sql, params)
        try:
            handle, _ = self._call(statement, statement.execute_query)
            reader = AdbcRecordBatchReader._import_from_c(handle.address)
            try:
                while True:
                    try:
                        batch = self._call(statement, reader.read_next_batch)
                    except StopIteration:
                        return
                    yield batch
            finally:
                reader.close()
        finally:
            statement.close()

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        from adbc_driver_manager._reader import AdbcRecordBatchReader

        statement = self._statement(sql, params)
        try:
            handle, _ = self._call(statement, statement.execute_query)
            with AdbcRecordBatchReader._import_from_c(handle.address) as reader:
                table: pa.Table = self._call(statement, reader.read_all)
                return table
        finally:
            statement.close()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        table = self.arrow(sql, params)
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def ingest(self, schema: str, table: str, reader: pa.RecordBatchReader) -> None:
        """Append the reader's batches to an existing table with binary COPY."""
        lib = self._lib
        statement = lib.AdbcStatement(self._conn)
        try:
            statement.set_options(
                **{
                    lib.INGEST_OPTION_TARGET_TABLE: table,
                    lib.INGEST_OPTION_MODE: lib.INGEST_OPTION_MODE_APPEND,
                    "adbc.ingest.target_db_schema": schema,
                }
            )
            statement.bind_stream(reader)
            self._call(statement, statement.execute_update)
        finally:
            statement.close()

    def commit(self) -> None:
        try:
            self._conn.commit()
        except self._lib.Error as exc:
            raise DriverError(str(exc)) from None

    def rollback(self) -> None:
        try:
            self._conn.rollback()
        except self._lib.Error as exc:
            raise DriverError(str(exc)) from None

    def close(self) -> None:
        self._conn.close()
        if self._own_database is not None:
            self._own_database.close()


UNBOUNDED_NUMERIC = pa.opaque(pa.string(), "numeric", "PostgreSQL")
"""An unconstrained NUMERIC, as its exact text: any number of digits, NaN and ±Infinity.
The PostgreSQL warehouse stores it as NUMERIC; DuckDB, which has no such type, as
DECIMAL(38,9) with every value checked (see `Dialect.load_type`)."""

_TIMESTAMP_SHIFT = 946_684_800_000_000
"""PostgreSQL counts microseconds from 2000-01-01, Arrow from 1970-01-01."""
_DATE_SHIFT = 10_957
_MIN_TIMESTAMP = -211_813_488_000_000_000 - _TIMESTAMP_SHIFT
"""4714-11-24 BC, PostgreSQL's first timestamp, in Arrow's microseconds: anything below
is a value the driver's shift from 2000 to 1970 wrapped around."""
_MIN_DATE = -2_451_545 - _DATE_SHIFT


def numeric_type(typmod: int) -> pa.DataType:
    """The exact Arrow type of NUMERIC with this type modifier."""
    if typmod < 4:
        return UNBOUNDED_NUMERIC
    precision = ((typmod - 4) >> 16) & 0xFFFF
    scale = (((typmod - 4) & 0x7FF) ^ 1024) - 1024  # signed: numeric(3,-2) holds 12300
    if scale < 0:
        precision, scale = precision - scale, 0
    if precision <= 38:
        return pa.decimal128(precision, scale)
    if precision <= 76:
        return pa.decimal256(precision, scale)
    return pa.opaque(pa.string(), f"numeric({precision},{scale})", "PostgreSQL")


def wire_type(field: pa.Field, money_scale: int = 2) -> pa.DataType:
    """The faithful Arrow type for a column as the ADBC driver describes it: NUMERIC
    arrives as an opaque string carrying its typmod, money as its integer count of cents
    (`money_scale` digits: the server's lc_monetary decides), other unknown types as
    opaque bytes, read as their text."""
    dtype = field.type
    meta = field.metadata or {}
    kind = meta.get(b"POSTGRESQL:type")
    if kind == b"oid":
        return pa.uint32()  # the driver says int32: 4294967295 would arrive as -1
    if kind == b"money":
        return pa.decimal128(19, money_scale)
    if kind == b"_money":
        return pa.list_(pa.decimal128(19, money_scale))
    if isinstance(dtype, pa.BaseExtensionType) and dtype.extension_name == "arrow.opaque":
        if kind == b"numeric":
            return numeric_type(int(meta.get(b"POSTGRESQL:typmod", b"-1")))
        return pa.string()
    if pa.types.is_list(dtype) and isinstance(dtype.value_type, pa.OpaqueType):
        if dtype.value_type.type_name == "numeric":
            return pa.list_(UNBOUNDED_NUMERIC)
        return pa.list_(pa.string())
    return dtype


def to_type(column: pa.Array | pa.ChunkedArray, dtype: pa.DataType) -> Any:
    if isinstance(column.type, pa.BaseExtensionType) and not isinstance(
        dtype, pa.BaseExtensionType
    ):
        column = (
            pa.chunked_array([c.storage for c in column.chunks], column.type.storage_type)
            if isinstance(column, pa.ChunkedArray)
            else column.storage
        )
    if column.type == dtype:
        return column
    if column.type == pa.int32() and dtype == pa.uint32():
        return column.view(dtype)  # an oid, which the driver calls int32
    return column.cast(dtype)


def infinities(column: pa.Array, name: str) -> pa.Array:
    """A timestamp or date column read from PostgreSQL with its ±infinity in gristmill's
    encoding (`gristmill.types`). The driver shifts PostgreSQL's own encoding (the
    extreme integers) from 2000 to 1970 without checking, which wraps them around; a
    timestamp after 294246 AD wraps the same way and has no Arrow value at all."""
    import pyarrow.compute as pc

    from gristmill.types import DATE_INFINITY, TIMESTAMP_INFINITY

    if pa.types.is_list(column.type) and isinstance(column, pa.ListArray):
        if not pa.types.is_temporal(column.type.value_type):
            return column
        values = infinities(column.values, name)
        return pa.ListArray.from_arrays(column.offsets, values, mask=column.is_null())
    if pa.types.is_timestamp(column.type):
        storage, floor, shift, top = (
            pa.int64(),
            _MIN_TIMESTAMP,
            _TIMESTAMP_SHIFT,
            TIMESTAMP_INFINITY,
        )
    elif pa.types.is_date32(column.type):
        storage, floor, shift, top = pa.int32(), _MIN_DATE, _DATE_SHIFT, DATE_INFINITY
    else:
        return column
    raw = column.view(storage)
    lowest = pc.min(raw).as_py()
    if lowest is None or lowest >= floor:
        return column
    wrapped_infinity = top + shift - 2**storage.bit_width
    wrapped_minus_infinity = -top - 1 + shift
    beyond = pc.and_(
        pc.less(raw, floor),
        pc.and_(pc.not_equal(raw, wrapped_infinity), pc.not_equal(raw, wrapped_minus_infinity)),
    )
    if pc.any(beyond).as_py():
        from gristmill.errors import TypeMappingError

        raise TypeMappingError(
            name, "a timestamp after 294246 AD is beyond the range of Arrow, DuckDB and Python"
        )
    fixed = pc.if_else(
        pc.equal(raw, wrapped_infinity),
        pa.scalar(top, storage),
        pc.if_else(pc.equal(raw, wrapped_minus_infinity), pa.scalar(-top, storage), raw),
    )
    return fixed.view(column.type)
