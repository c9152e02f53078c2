"""DuckDB: the embedded default warehouse, a single file under `.gristmill/`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb
import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError, ConnectionFailedError, WarehouseBusyError
from gristmill.warehouse.base import BeyondDecimal, CountingReader, Transaction, Warehouse

if TYPE_CHECKING:
    from gristmill.execution.staging import StagingArea

T = TypeVar("T")


class _DuckDBTransaction:
    def __init__(self, cursor: duckdb.DuckDBPyConnection) -> None:
        self._cursor = cursor
        self.failed: BackendError | None = None
        """The error of a statement that failed, which may have aborted the transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._guard(lambda: _run(self._cursor, sql, params))

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._guard(lambda: _run(self._cursor, sql, params).fetchall())

    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        return self._guard(lambda: _arrow(self._cursor, sql, params))

    def _guard(self, statement: Callable[[], T]) -> T:
        try:
            return statement()
        except BackendError as exc:
            self.failed = exc
            raise


def _run(
    cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]
) -> duckdb.DuckDBPyConnection:
    try:
        return cursor.execute(sql, list(params) if params else None)
    except duckdb.Error as exc:
        raise _rejected(sql, exc) from exc


def _rejected(sql: str, exc: duckdb.Error) -> BackendError:
    return BackendError(f"DuckDB rejected: {sql.strip()[:300]}\n  {exc}", str(exc))


def _arrow(cursor: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> pa.Table:
    try:
        relation = cursor.sql(sql, params=list(params) if params else None)
        table: pa.Table = relation.to_arrow_table()
    except duckdb.Error as exc:
        raise _rejected(sql, exc) from exc
    return table


ROW_GROUP_ROWS = 122_880
"""DuckDB's rows per row group (its `row_group_size`)."""


def whole_row_groups(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """`batches` regrouped into batches of exactly ROW_GROUP_ROWS rows (the last one
    fewer). Batches of between one and two row groups leave DuckDB a partial row group
    each, which it rewrites when it checkpoints at close: 2.4 s and 550 MB more for 10
    million rows in batches of 156,000, as ADBC's PostgreSQL reader makes them."""
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        pending.append(batch)
        rows += batch.num_rows
        while rows >= ROW_GROUP_ROWS:
            held = pa.Table.from_batches(pending)
            yield held.slice(0, ROW_GROUP_ROWS).combine_chunks().to_batches()[0]
            rest = held.slice(ROW_GROUP_ROWS)
            pending, rows = rest.to_batches(), rest.num_rows
    if rows:
        yield from pending


LOCK_WAIT_SECONDS = 10.0
"""How long opening the warehouse file waits for another process to let go of it."""


class DuckDBWarehouse(Warehouse):
    NAME = "duckdb"
    DIALECT = "duckdb"
    SUPPORTS_TRANSACTIONAL_DDL = True
    SUPPORTS_PARALLEL_APPEND = True
    SUPPORTS_ARROW_RELATIONS = True
    READS_STAGING = True

    def __init__(self, config: WarehouseConfig, root: Path) -> None:
        super().__init__(config, root)
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = self._connect(config)
        # UTC inside: CAST(timestamptz AS DATE) is the UTC date wherever gristmill runs
        # (DuckDB takes the machine's zone by default).
        self._con.execute("SET GLOBAL TimeZone = 'UTC'")
        # One DuckDB connection is not safe to share across threads: each thread
        # gets its own cursor on the same database.
        self._local = threading.local()

    def _connect(self, config: WarehouseConfig) -> duckdb.DuckDBPyConnection:
        """The file, waiting up to LOCK_WAIT_SECONDS while another process holds it (a
        `gristmill stream` committing a batch holds it for a moment at a time)."""
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return duckdb.connect(str(self.path), config={"memory_limit": config.memory_limit})
            except duckdb.IOException as exc:
                held = "Could not set lock" in str(exc)
                if held and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                error = WarehouseBusyError if held else ConnectionFailedError
                raise error(
                    f"Cannot open the DuckDB warehouse {self.path}: {exc}. "
                    + (
                        f"Another process has held it for over {LOCK_WAIT_SECONDS:g} s (a"
                        " gristmill command, or a DuckDB connection left open): close it or"
                        " wait for it to finish."
                        if held
                        else "Check the path and its permissions."
                    )
                ) from exc

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the warehouse, for a caller that registers functions
        on it (the diff registers PostgreSQL's text hash)."""
        return self._con.cursor()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
        return cursor

    @contextmanager
    def transaction(self) -> Iterator[_DuckDBTransaction]:
        cursor = self._cursor()
        cursor.begin()
        tx = _DuckDBTransaction(cursor)
        try:
            yield tx
        except BaseException:
            cursor.rollback()
            raise
        if tx.failed is not None:
            # DuckDB "commits" a transaction a failed statement aborted by silently
            # dropping its work: roll back and say so instead.
            cursor.rollback()
            raise BackendError(
                f"A statement failed inside the transaction, which was rolled back:"
                f" {tx.failed.detail}",
                tx.failed.detail,
            )
        try:
            cursor.commit()
        except duckdb.Error as exc:
            raise BackendError(f"DuckDB could not commit: {exc}") from exc

    def append(self, schema: str, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        stream = CountingReader.over(whole_row_groups(batches))
        if stream is None:
            return 0
        # One INSERT per stream, scanning a batch reader: DuckDB pulls batches as it
        # writes, so memory holds a batch or two, never the stream.
        cursor = self._con.cursor()
        try:
            cursor.register("_gm_stream", stream.reader)
            target = self.qualified(schema, table)
            _run(cursor, f"INSERT INTO {target} BY NAME SELECT * FROM _gm_stream", ())
        finally:
            cursor.close()
        return stream.rows

    def register_arrow(self, name: str, table: pa.Table) -> str:
        self._cursor().register(name, table)
        return self.quote(name)

    def unregister_arrow(self, name: str) -> None:
        self._cursor().unregister(name)

    def attach_staging(self, area: StagingArea) -> None:
        # A filesystem registered on the connection serves its cursors too.
        area.attach(self._con)

    def query_arrow(
        self, sql: str, params: Sequence[Any] = (), *, beyond_decimal: BeyondDecimal = "raise"
    ) -> pa.Table:
        # Every DuckDB DECIMAL has a declared width of at most 38 digits.
        return _arrow(self._cursor(), sql, params)

    def query_batches(
        self, sql: str, rows: int = 100_000, *, beyond_decimal: BeyondDecimal = "raise"
    ) -> Iterator[pa.RecordBatch]:
        # A cursor of its own: the caller may write through this warehouse meanwhile.
        cursor = self._con.cursor()
        try:
            try:
                reader: pa.RecordBatchReader = cursor.sql(sql).to_arrow_reader(rows)
            except duckdb.Error as exc:
                raise _rejected(sql, exc) from exc
            yield from reader
        finally:
            cursor.close()

    def set_search_path(self, tx: Transaction, schemas: Sequence[str]) -> None:
        # A session setting: it stays on this thread's cursor, where every other
        # statement gristmill sends names its schema anyway.
        tx.execute(f"SET search_path = '{','.join(schemas)}'")

    def close(self) -> None:
        self._con.close()
