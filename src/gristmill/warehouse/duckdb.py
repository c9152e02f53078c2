"""DuckDB: the embedded default warehouse, a single file under `.gristmill/`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConnectionFailedError
from gristmill.warehouse.base import Warehouse


class _DuckDBTransaction:
    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        _run(self._cursor, sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return _run(self._cursor, sql, params).fetchall()


def _run(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]
) -> duckdb.DuckDBPyConnection:
    try:
        return cursor.execute(sql, list(params) if params else None)
    except duckdb.Error as exc:
        raise BackendError(f"DuckDB rejected: {sql.strip()[:300]}\n  {exc}") from exc


class DuckDBWarehouse(Warehouse):
    NAME = "duckdb"
    DIALECT = "duckdb"
    SUPPORTS_TRANSACTIONAL_DDL = True
    SUPPORTS_PARALLEL_APPEND = True

    def __init__(self, config: WarehouseConfig, root: Path) -> None:
        super().__init__(config, root)
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = duckdb.connect(str(self.path))
        except duckdb.IOException as exc:
            raise ConnectionFailedError(
                f"Cannot open the DuckDB warehouse {self.path}: {exc}. "
                "Is another gristmill process writing to it?"
            ) from exc
        # One DuckDB connection is not safe to share across threads: each thread
        # gets its own cursor on the same database.
        self._local = threading.local()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
        return cursor

    def column_type(self, dtype: pa.DataType) -> str:
        return duckdb_type(dtype)

    @contextmanager
    def transaction(self) -> Iterator[_DuckDBTransaction]:
        cursor = self._cursor()
        cursor.begin()
        try:
            yield _DuckDBTransaction(cursor)
        except BaseException:
            cursor.rollback()
            raise
        try:
            cursor.commit()
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB could not commit: {exc}") from exc

    def append(self, schema: str, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        iterator = iter(batches)
        first = next(iterator, None)
        if first is None:
            return 0
        rows = 0

        def counted() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            for batch in itertools.chain([first], iterator):
                rows += batch.num_rows
                yield batch

        # One INSERT per stream, scanning a batch reader: DuckDB pulls batches as it
        # writes, so memory holds a batch or two, never the stream.
        reader = pa.RecordBatchReader.from_batches(first.schema, counted())
        cursor = self._con.cursor()
        try:
            cursor.register("_gm_stream", reader)
            _run(
                cursor,
                f"INSERT INTO {self.qualified(schema, table)} BY NAME SELECT * FROM _gm_stream",
                (),
            )
        finally:
            cursor.close()
        return rows

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        try:
            relation = self._cursor().sql(sql, params=list(params) if params else None)
            table: pa.Table = relation.to_arrow_table()
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB rejected: {sql.strip()[:300]}\n  {exc}") from exc
        return table

    def close(self) -> None:
        self._con.close()


def duckdb_type(dtype: pa.DataType) -> str:
    """The DuckDB column type for an Arrow type."""
    if isinstance(dtype, pa.BaseExtensionType):
        name = dtype.extension_name
        if name == "arrow.json":
            return "JSON"
        if name == "arrow.uuid":
            return "UUID"
        return duckdb_type(dtype.storage_type)
    simple = _SIMPLE_TYPES.get(dtype)
    if simple:
        return simple
    if pa.types.is_decimal(dtype):
        return f"DECIMAL({min(dtype.precision, 38)},{dtype.scale})"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_time(dtype):
        return "TIME"
    if pa.types.is_duration(dtype) or pa.types.is_interval(dtype):
        return "INTERVAL"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"{duckdb_type(dtype.value_type)}[]"
    if pa.types.is_struct(dtype):
        fields = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in dtype)
        return f"STRUCT({fields})"
    if pa.types.is_dictionary(dtype):
        return duckdb_type(dtype.value_type)
    raise BackendError(f"No DuckDB column type for the Arrow type {dtype}")


_SIMPLE_TYPES: dict[pa.DataType, str] = {
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "UTINYINT",
    pa.uint16(): "USMALLINT",
    pa.uint32(): "UINTEGER",
    pa.uint64(): "UBIGINT",
    pa.float16(): "FLOAT",
    pa.float32(): "FLOAT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.string_view(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.large_binary(): "BLOB",
    pa.date32(): "DATE",
    pa.date64(): "DATE",
    pa.null(): "VARCHAR",
}
