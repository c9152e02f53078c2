"""PostgreSQL: the warehouse on a real server, loaded with ADBC's binary COPY."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConfigError
from gristmill.postgres_adbc import connect, dbapi, faithful
from gristmill.warehouse.base import Warehouse

WHO = "The PostgreSQL warehouse"


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with closing(self._conn.cursor()) as cursor:
            _run(cursor, sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with closing(self._conn.cursor()) as cursor:
            _run(cursor, sql, params)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows


def _run(cursor: Any, sql: str, params: Sequence[Any]) -> None:
    driver = dbapi(WHO)
    try:
        cursor.execute(sql, list(params) if params else None)
    except driver.Error as exc:
        message = str(exc).split("\n")[0]
        raise BackendError(f"PostgreSQL rejected: {sql.strip()[:300]}\n  {message}") from None


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
        self._conn = connect(self.url, WHO)

    def column_type(self, dtype: pa.DataType) -> str:
        return postgres_type(dtype)

    @contextmanager
    def transaction(self) -> Iterator[_PostgresTransaction]:
        try:
            yield _PostgresTransaction(self._conn)
        except BaseException:
            self._conn.rollback()
            raise
        try:
            self._conn.commit()
        except dbapi(WHO).Error as exc:
            raise BackendError(f"PostgreSQL could not commit: {exc}") from exc

    def append(self, schema: str, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        iterator = iter(batches)
        first = next(iterator, None)
        if first is None:
            return 0
        rows = 0

        def counted() -> Iterator[pa.RecordBatch]:
            nonlocal rows
            yield first
            rows += first.num_rows
            for batch in iterator:
                rows += batch.num_rows
                yield batch

        reader = pa.RecordBatchReader.from_batches(first.schema, counted())
        # A connection of its own, so that several streams load one table at once.
        with closing(connect(self.url, WHO)) as conn, closing(conn.cursor()) as cursor:
            try:
                cursor.adbc_ingest(table, reader, mode="append", db_schema_name=schema)
                conn.commit()
            except dbapi(WHO).Error as exc:
                raise BackendError(
                    f"PostgreSQL rejected the load into {schema}.{table}: {str(exc).splitlines()[0]}"
                ) from None
        return rows

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with closing(self._conn.cursor()) as cursor:
            _run(cursor, sql, params)
            table = faithful(cursor.fetch_arrow_table())
        self._conn.rollback()
        return table

    def close(self) -> None:
        self._conn.close()


def postgres_type(dtype: pa.DataType) -> str:
    """The PostgreSQL column type for an Arrow type."""
    if isinstance(dtype, pa.BaseExtensionType):
        if dtype.extension_name == "arrow.json":
            return "JSONB"
        if dtype.extension_name == "arrow.uuid":
            return "UUID"
        return postgres_type(dtype.storage_type)
    simple = _SIMPLE_TYPES.get(dtype)
    if simple:
        return simple
    if pa.types.is_decimal(dtype):
        return f"NUMERIC({dtype.precision},{dtype.scale})"
    if pa.types.is_timestamp(dtype):
        return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
    if pa.types.is_time(dtype):
        return "TIME"
    if pa.types.is_duration(dtype) or pa.types.is_interval(dtype):
        return "INTERVAL"
    if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
        return f"{postgres_type(dtype.value_type)}[]"
    if pa.types.is_struct(dtype):
        return "JSONB"
    if pa.types.is_dictionary(dtype):
        return postgres_type(dtype.value_type)
    raise BackendError(f"No PostgreSQL column type for the Arrow type {dtype}")


_SIMPLE_TYPES: dict[pa.DataType, str] = {
    pa.bool_(): "BOOLEAN",
    pa.int8(): "SMALLINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.uint8(): "SMALLINT",
    pa.uint16(): "INTEGER",
    pa.uint32(): "BIGINT",
    pa.uint64(): "NUMERIC(20,0)",
    pa.float16(): "REAL",
    pa.float32(): "REAL",
    pa.float64(): "DOUBLE PRECISION",
    pa.string(): "TEXT",
    pa.large_string(): "TEXT",
    pa.string_view(): "TEXT",
    pa.binary(): "BYTEA",
    pa.large_binary(): "BYTEA",
    pa.date32(): "DATE",
    pa.date64(): "DATE",
    pa.null(): "TEXT",
}
