"""MySQL and MariaDB, read with PyMySQL through an unbuffered server-side cursor.

Types come from information_schema, so that DECIMAL keeps its precision, TINYINT(1)
is a boolean, TIMESTAMP (stored in UTC) is time-zone aware while DATETIME is not, and
JSON (an alias of LONGTEXT with a json_valid check on MariaDB) stays JSON. A value its
type cannot keep (the zero date, a TINYINT(1) holding 5) stops the table, naming the
column_types override that reads it (see README, Types).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa

from gristmill import config as gristmill_config
from gristmill.config import SourceConfig
from gristmill.errors import (
    BackendError,
    ConfigError,
    ConnectionFailedError,
    MissingDependencyError,
    TypeMappingError,
)
from gristmill.ingest.sources.base import SourceTable, SqlSource
from gristmill.types import cast_exact

_INTS = {"tinyint": 8, "smallint": 16, "mediumint": 32, "int": 32, "integer": 32, "bigint": 64}
_STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set"}
GEOMETRY_TYPES = {
    "geometry",
    "point",
    "linestring",
    "polygon",
    "multipoint",
    "multilinestring",
    "multipolygon",
    "geometrycollection",
    "geomcollection",  # MySQL 8's name of it
}
"""Spatial types (information_schema's data_type): their bytes as the server stores them
(a 4-byte SRID, then WKB)."""
_BINARIES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}


def _pymysql() -> Any:
    try:
        import pymysql
    except ImportError:
        raise MissingDependencyError("pymysql", "mysql", "The MySQL source") from None
    return pymysql


def arrow_type(
    data_type: str, column_type: str, precision: int | None, scale: int | None, is_json: bool
) -> pa.DataType:
    """The Arrow type for a column as information_schema.COLUMNS describes it."""
    unsigned = "unsigned" in column_type
    if is_json or data_type == "json":
        return pa.json_(pa.string())
    if column_type.startswith("tinyint(1)") or column_type == "bit(1)":
        return pa.bool_()
    if data_type in _INTS:
        bits = _INTS[data_type] * (2 if unsigned else 1)
        return pa.decimal128(20, 0) if bits > 64 else getattr(pa, f"int{max(bits, 8)}")()
    if data_type == "decimal":
        digits = precision or 10
        return (pa.decimal128 if digits <= 38 else pa.decimal256)(digits, scale or 0)
    if data_type == "float":
        return pa.float32()
    if data_type in ("double", "real"):
        return pa.float64()
    if data_type == "date":
        return pa.date32()
    if data_type == "datetime":
        return pa.timestamp("us")
    if data_type == "timestamp":
        return pa.timestamp("us", tz="UTC")
    if data_type == "time":
        return pa.duration("us")
    if data_type == "year":
        return pa.int16()
    if data_type in _BINARIES or data_type in GEOMETRY_TYPES or data_type == "bit":
        return pa.binary()
    return pa.string()


def _connect_timeout(source: str, query: str) -> float:
    """The url's `?connect_timeout=SECONDS`, or gristmill's default."""
    given = parse_qs(query).get("connect_timeout")
    if not given:
        return float(gristmill_config.CONNECT_TIMEOUT_SECONDS)
    try:
        return float(given[0])
    except ValueError:
        raise ConfigError(
            f"Source '{source}': connect_timeout={given[0]} in its url is not a number of seconds."
        ) from None


class MySQLSource(SqlSource):
    KIND = "mysql"
    DIALECT = "mysql"
    INLINES_CURSOR = True
    READS_ON_WORKERS = True
    SUPPORTS_PARALLEL_STREAMS = False
    PLACEHOLDER = "%s"

    def __init__(self, name: str, config: SourceConfig, root: Path) -> None:
        super().__init__(name, config, root)
        if not config.url:
            raise ConfigError(f"Source '{name}' (mysql) needs url = \"${{APP_DB_URL}}\".")
        parts = urlsplit(config.url)
        self.database = config.schema_name or unquote(parts.path.lstrip("/"))
        if not self.database:
            raise ConfigError(
                f"Source '{name}': the url names no database (mysql://host/DATABASE)."
            )
        self._params = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 3306,
            "user": unquote(parts.username or "root"),
            "password": unquote(parts.password or ""),
            "database": self.database,
            "charset": "utf8mb4",
            "init_command": "SET time_zone = '+00:00'",
            "connect_timeout": _connect_timeout(name, parts.query),
        }
        self.where = f"{self._params['host']}:{self._params['port']}/{self.database}"
        self._conn = self._connect()

    def _connect(self, streaming: bool = False) -> Any:
        pymysql = _pymysql()
        cursor_class = pymysql.cursors.SSCursor if streaming else pymysql.cursors.Cursor
        timeout = self._params["connect_timeout"]
        try:
            # PyMySQL bounds only the TCP connect by connect_timeout: the handshake is bounded
            # by a read timeout, lifted once connected (a long query may send nothing for
            # minutes before its first row).
            connection = pymysql.connect(
                **self._params, read_timeout=timeout, cursorclass=cursor_class
            )
        except pymysql.err.MySQLError as exc:
            reason = exc.args[1] if len(exc.args) > 1 else str(exc)
            raise ConnectionFailedError(
                f"Source '{self.name}': cannot connect to MySQL at {self.where}: {reason}. "
                "Check the host, port, user and password in its url."
            ) from None
        connection._read_timeout = None
        return connection

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        pymysql = _pymysql()
        try:
            with self._conn.cursor() as cursor:
                cursor.execute(sql, list(params) or None)  # None: a % in the SQL is no placeholder
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            raise BackendError(f"Source '{self.name}': {exc.args[-1]}") from None

    def list_tables(self) -> list[str]:
        """The database's tables; views (and MariaDB's sequences) are synced only when named."""
        rows = self.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
            " AND table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') ORDER BY table_name",
            [self.database],
        )
        return [r[0] for r in rows]

    def describe(self, table: str) -> SourceTable:
        columns = self.query(
            "SELECT column_name, data_type, column_type, numeric_precision, numeric_scale,"
            " is_nullable, column_key FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            [self.database, table],
        )
        if not columns:
            raise self.missing_table(table)
        json_columns = self.json_columns(table)
        fields = [
            pa.field(
                name,
                arrow_type(
                    str(dtype).lower(), str(ctype).lower(), precision, scale, name in json_columns
                ),
                nullable=nullable == "YES",
            )
            for name, dtype, ctype, precision, scale, nullable, _ in columns
        ]
        key = tuple(r[0] for r in columns if r[6] == "PRI")
        return SourceTable(table, pa.schema(fields), key)

    def json_columns(self, table: str) -> set[str]:
        """The columns of `table` that MariaDB's JSON declared: LONGTEXT columns with a
        json_valid check named after them (MySQL's JSON is a type of its own)."""
        return {
            r[0]
            for r in self.query(
                "SELECT constraint_name FROM information_schema.check_constraints"
                " WHERE constraint_schema = %s AND table_name = %s"
                " AND check_clause LIKE 'json_valid(%%'",
                [self.database, table],
            )
        }

    def column_sql(self, name: str, dtype: pa.DataType) -> str:
        if dtype == pa.float32():
            # The text protocol prints a FLOAT to 6 digits (0.123457 for 0.12345679...): as
            # a DOUBLE it arrives as the very single-precision value the server holds.
            column = self.quote(name)
            return f"{self.dialect.cast(column, self.dialect.DOUBLE_TYPE)} AS {column}"
        return super().column_sql(name, dtype)

    def stream(
        self, sql: str, params: Sequence[Any], schema: pa.Schema, setup: Sequence[str] = ()
    ) -> Iterator[pa.RecordBatch]:
        pymysql = _pymysql()
        conn = self._connect(streaming=True)
        try:
            with conn.cursor() as cursor:
                for statement in setup:
                    cursor.execute(statement)
                cursor.execute(sql, list(params) or None)  # None: a % in the SQL is no placeholder
                while rows := cursor.fetchmany(self.BATCH_ROWS):
                    columns = list(zip(*rows, strict=True))
                    yield pa.record_batch(
                        [_column(v, f) for v, f in zip(columns, schema, strict=True)], schema=schema
                    )
        except pymysql.err.MySQLError as exc:
            raise BackendError(f"Source '{self.name}': {exc.args[-1]}") from None
        finally:
            conn.close()

    def close(self) -> None:
        self._conn.close()


def _column(values: Sequence[Any], f: pa.Field) -> pa.Array:
    """A column of values as PyMySQL converted them, in the type the table describes."""
    dtype = f.type
    if isinstance(dtype, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(dtype, pa.array(values, dtype.storage_type))
    if not pa.types.is_string(dtype) and any(isinstance(v, str) for v in values):
        # Text where a value was expected: a column read as text (column_types), or a
        # value PyMySQL could not convert, such as the zero date.
        for value in values:
            if isinstance(value, str) and value.startswith("0000-00-00"):
                raise TypeMappingError(
                    f.name, f"it holds the zero date '{value}', which no other database has"
                )
        return cast_exact(pa.array([_text(v) for v in values], pa.string()), dtype, f.name)
    if pa.types.is_boolean(dtype):
        values = _booleans(values, f.name)
    if pa.types.is_string(dtype) and any(isinstance(v, bytes) for v in values):
        values = _utf8(values, f.name)
    try:
        return pa.array(values, dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return cast_exact(pa.array([_text(v) for v in values], pa.string()), dtype, f.name)


def _utf8(values: Sequence[Any], name: str) -> list[Any]:
    """Bytes a text column gave (a type this source does not know) as the text they
    encode; bytes that are no UTF-8 text stop the column."""
    try:
        return [v.decode() if isinstance(v, bytes) else v for v in values]
    except UnicodeDecodeError:
        raise TypeMappingError(
            name, "it holds bytes that are not UTF-8 text", overrides=("bytes",)
        ) from None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _booleans(values: Sequence[Any], name: str) -> list[bool | None]:
    """TINYINT(1) or BIT(1) values as booleans; any but 0 and 1 stops the column."""
    numbers = [
        None if v is None else int.from_bytes(v) if isinstance(v, bytes) else int(v) for v in values
    ]
    for number in numbers:
        if number not in (None, 0, 1):
            raise TypeMappingError(
                name,
                f"it is a boolean (TINYINT(1)) holding {number}, which is neither 0 nor 1",
                ("int",),
            )
    return [None if n is None else n == 1 for n in numbers]
