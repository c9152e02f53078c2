"""PostgreSQL: the warehouse on a real server, loaded with ADBC's binary COPY."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConfigError
from gristmill.postgres_adbc import DriverError, PostgresConnection, PostgresDatabase, faithful
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
        # A connection of its own, so that several streams load one table at once.
        with closing(self._database.connect()) as conn:
            try:
                conn.ingest(schema, table, stream.reader)
                conn.commit()
            except DriverError as exc:
                raise BackendError(
                    f"PostgreSQL rejected the load into {schema}.{table}: {exc.first_line}"
                ) from None
        return stream.rows

    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        conn = self._connection()
        table = _PostgresTransaction(conn).fetch_arrow(sql, params)
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
