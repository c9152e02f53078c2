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
from gristmill.warehouse.base import CountingReader, Warehouse

WHO = "The PostgreSQL warehouse"


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
    SIMPLE_TYPES = _SIMPLE_TYPES
    JSON_TYPE = "JSONB"
    DECIMAL_TYPE = "NUMERIC"
    MAX_DECIMAL_PRECISION = 1000

    def __init__(self, config: WarehouseConfig, root: Path) -> None:
        super().__init__(config, root)
        if not config.url:
            raise ConfigError(
                'The postgres warehouse needs url = "${WAREHOUSE_URL}" under [warehouse].'
            )
        self.url = config.url
        self._conn = connect(self.url, WHO)

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
        stream = CountingReader.over(batches)
        if stream is None:
            return 0
        # A connection of its own, so that several streams load one table at once.
        with closing(connect(self.url, WHO)) as conn, closing(conn.cursor()) as cursor:
            try:
                cursor.adbc_ingest(table, stream.reader, mode="append", db_schema_name=schema)
                conn.commit()
            except dbapi(WHO).Error as exc:
                raise BackendError(
                    f"PostgreSQL rejected the load into {schema}.{table}: {str(exc).splitlines()[0]}"
                ) from None
        return stream.rows

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        with closing(self._conn.cursor()) as cursor:
            _run(cursor, sql, params)
            table = faithful(cursor.fetch_arrow_table())
        self._conn.rollback()
        return table

    def close(self) -> None:
        self._conn.close()
