"""The Warehouse interface shared by every warehouse backend.

A backend maps Arrow types to its column types, appends Arrow batches into a table
(from several threads at once where it can), and runs statements inside a
transaction. Everything built on those primitives (table creation, sync state,
the merge and delete statements of a sync) lives here, once, in portable SQL.
"""

from __future__ import annotations

import itertools
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.dialects import Dialect, dialect

if TYPE_CHECKING:
    from gristmill.execution.staging import StagingArea

log = logging.getLogger(__name__)

META_SCHEMA = "_gristmill"
"""gristmill's own tables (sync state, quarantined rows) beside the default raw schema."""
STATE_TABLE = "sync_state"

BeyondDecimal = Literal["raise", "float"]
"""What a query result does with a NUMERIC column that no Arrow decimal holds (PostgreSQL's
NaN, infinities, numbers of more than 76 digits): "raise" an error that names the column,
or "float": that column arrives as doubles, for statistics and models, which compute in
double precision anyway."""


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def fetch_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """The result of a query as an Arrow table, with its column names."""
        ...


class CountingReader:
    """A record batch reader over an iterator of batches that counts the rows it hands out,
    so that a backend can stream any number of batches into one bulk load."""

    def __init__(self, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> None:
        self.rows = 0

        def counted() -> Iterator[pa.RecordBatch]:
            for batch in batches:
                self.rows += batch.num_rows
                yield batch

        self.reader = pa.RecordBatchReader.from_batches(schema, counted())

    @classmethod
    def over(cls, batches: Iterable[pa.RecordBatch]) -> CountingReader | None:
        """A reader over `batches`, or None when there are none."""
        iterator = iter(batches)
        first = next(iterator, None)
        if first is None:
            return None
        return cls(first.schema, itertools.chain([first], iterator))


class _Rollback(Exception):
    """Leaves a read-only transaction by rolling it back."""


class Warehouse(ABC):
    NAME: ClassVar[str]
    DIALECT: ClassVar[str]
    """The engine's dialect (and sqlglot's name of it)."""
    SUPPORTS_TRANSACTIONAL_DDL: ClassVar[bool] = True
    SUPPORTS_PARALLEL_APPEND: ClassVar[bool] = True
    """Whether `append` may be called from several threads at once on one table."""
    SUPPORTS_ARROW_RELATIONS: ClassVar[bool] = False
    """Whether `register_arrow` can show an in-memory Arrow table to SQL."""
    READS_STAGING: ClassVar[bool] = False
    """Whether the warehouse's own SQL reads and writes Parquet files in an execution
    engine's staging (`attach_staging`): what a training set built on workers needs."""

    def __init__(self, config: WarehouseConfig, root: Path) -> None:
        self.config = config
        self.root = root
        # Projects that share a warehouse keep apart by raw schema: their sync states too.
        raw = config.raw_schema
        self.meta_schema = META_SCHEMA if raw == "raw" else f"{META_SCHEMA}_{raw}"
        self.dialect: Dialect = dialect(self.DIALECT)

    # -- what each backend provides ------------------------------------------------
    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction: committed when the block exits, rolled back on an exception."""

    @abstractmethod
    def append(self, schema: str, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Append `batches` to an existing table outside any transaction; return the rows."""

    def register_arrow(self, name: str, table: pa.Table) -> str:
        """Show `table` to this thread's statements as the relation returned, without
        copying it, until `unregister_arrow(name)`."""
        raise NotImplementedError(f"The {self.NAME} warehouse cannot read Arrow tables in place.")

    def unregister_arrow(self, name: str) -> None:
        raise NotImplementedError(f"The {self.NAME} warehouse cannot read Arrow tables in place.")

    def attach_staging(self, area: StagingArea) -> None:
        """Let this warehouse's SQL read and write the files of `area` (READS_STAGING)."""
        raise NotImplementedError(f"The {self.NAME} warehouse cannot read staging files.")

    @abstractmethod
    def query_arrow(
        self, sql: str, params: Sequence[Any] = (), *, beyond_decimal: BeyondDecimal = "raise"
    ) -> pa.Table:
        """Run a query and return its result as an Arrow table, every value exactly: a
        NUMERIC without a declared precision and scale (PostgreSQL's `amount / 7`) as the
        narrowest decimal that holds each of its values (see BeyondDecimal for the rest)."""

    def query_batches(
        self, sql: str, rows: int = 100_000, *, beyond_decimal: BeyondDecimal = "raise"
    ) -> Iterator[pa.RecordBatch]:
        """A query's result in batches of about `rows` rows. Engines that can stream do
        (DuckDB); the default reads the whole result first."""
        yield from self.query_arrow(sql, beyond_decimal=beyond_decimal).to_batches(
            max_chunksize=rows
        )

    @abstractmethod
    def set_search_path(self, tx: Transaction, schemas: Sequence[str]) -> None:
        """Resolve unqualified table names in `schemas`, in order, for the rest of `tx`."""

    @abstractmethod
    def close(self) -> None: ...

    # -- shared behaviour ------------------------------------------------------------
    def column_type(self, dtype: pa.DataType) -> str:
        """The column type that stores Arrow `dtype` without loss."""
        return self.dialect.column_type(dtype)

    def quote(self, identifier: str) -> str:
        return self.dialect.quote(identifier)

    def qualified(self, schema: str, table: str) -> str:
        return self.dialect.qualified(schema, table)

    def literal(self, value: Any) -> str:
        return self.dialect.literal(value)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.transaction() as tx:
            tx.execute(sql, params)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.transaction() as tx:
            return tx.fetchall(sql, params)

    def ensure_schema(self, schema: str) -> None:
        self.execute(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)}")

    def table_exists(self, schema: str, table: str) -> bool:
        rows = self.fetchall(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = $1 AND table_name = $2",
            [schema, table],
        )
        return bool(rows)

    def tables(self, schema: str) -> list[str]:
        rows = self.fetchall(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1"
            " ORDER BY table_name",
            [schema],
        )
        return [r[0] for r in rows]

    def create_table_sql(self, schema: str, table: str, arrow_schema: pa.Schema) -> str:
        columns = ", ".join(
            f"{self.quote(f.name)} {self.column_type(f.type)}" for f in arrow_schema
        )
        return f"CREATE TABLE {self.qualified(schema, table)} ({columns})"

    def recreate_table(self, schema: str, table: str, arrow_schema: pa.Schema) -> None:
        with self.transaction() as tx:
            tx.execute(f"DROP TABLE IF EXISTS {self.qualified(schema, table)}")
            tx.execute(self.create_table_sql(schema, table, arrow_schema))

    def drop_table(self, schema: str, table: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.qualified(schema, table)}")

    @contextmanager
    def read_only(self) -> Iterator[Transaction]:
        """A transaction that is always rolled back: for queries that may fail midway."""
        rollback = _Rollback()
        try:
            with self.transaction() as tx:
                yield tx
                raise rollback
        except _Rollback:
            pass

    def relations(self) -> dict[tuple[str, str], str]:
        """Every table and view: (schema, name) -> 'table' or 'view'."""
        rows = self.fetchall(
            "SELECT table_schema, table_name, table_type FROM information_schema.tables"
            " WHERE table_schema NOT IN ('information_schema', 'pg_catalog')"
        )
        return {(s, n): "view" if "VIEW" in t.upper() else "table" for s, n, t in rows}

    def columns(self) -> dict[str, dict[str, dict[str, str]]]:
        """schema -> table -> column -> type, for every table and view."""
        rows = self.fetchall(
            "SELECT table_schema, table_name, column_name, data_type"
            " FROM information_schema.columns"
            " WHERE table_schema NOT IN ('information_schema', 'pg_catalog')"
            " ORDER BY table_schema, table_name, ordinal_position"
        )
        result: dict[str, dict[str, dict[str, str]]] = {}
        for schema, table, column, dtype in rows:
            result.setdefault(schema, {}).setdefault(table, {})[column] = dtype
        return result

    @contextmanager
    def alone(self) -> Iterator[bool]:
        """Whether no other gristmill process uses the warehouse, held for the block.

        DuckDB's file admits one process at a time, so its warehouse is always alone."""
        yield True

    def drop_scratch(self, schemas: Sequence[str], prefixes: Sequence[str]) -> list[str]:
        """Drop the scratch tables and views (names starting with one of `prefixes`) in
        `schemas` that a gristmill process killed mid-way left behind; none while another
        gristmill process uses the warehouse, as they may be its own. Returns those dropped."""
        with self.alone() as alone:
            if not alone or not schemas:
                return []
            marks = ", ".join(f"${i}" for i in range(1, len(schemas) + 1))
            rows = self.fetchall(
                "SELECT table_schema, table_name, table_type FROM information_schema.tables"
                f" WHERE table_schema IN ({marks}) AND table_name LIKE '\\_gm\\_%' ESCAPE '\\'",
                list(schemas),
            )
            dropped = []
            for schema, name, kind in rows:
                if name.startswith(tuple(prefixes)):
                    kind = "view" if "VIEW" in kind.upper() else "table"
                    self.execute(self.drop_relation_sql(schema, name, kind))
                    dropped.append(f"{schema}.{name}")
        if dropped:
            log.info("dropped what a killed gristmill process left: %s", ", ".join(dropped))
        return dropped

    def drop_relation_sql(self, schema: str, name: str, kind: str) -> str:
        keyword = "VIEW" if kind == "view" else "TABLE"
        return f"DROP {keyword} IF EXISTS {self.qualified(schema, name)}{self.dialect.DROP_CASCADE}"

    def fingerprint(self, schema: str, table: str) -> str:
        """A value that changes when the rows of a table change (in any order)."""
        count, digest = self.fetchall(
            self.dialect.FINGERPRINT_SQL.format(relation=self.qualified(schema, table))
        )[0]
        return f"{count}:{digest}"

    def row_count(self, schema: str, table: str) -> int:
        return int(self.fetchall(f"SELECT count(*) FROM {self.qualified(schema, table)}")[0][0])

    # -- sync state: lives in the warehouse so that it commits with the data ----------
    def ensure_state_table(self) -> None:
        self.ensure_schema(self.meta_schema)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified(self.meta_schema, STATE_TABLE)} ("
            " source TEXT NOT NULL, source_table TEXT NOT NULL, state TEXT NOT NULL,"
            " PRIMARY KEY (source, source_table))"
        )

    def read_states(self) -> dict[tuple[str, str], dict[str, Any]]:
        """Every table's sync state: (source, source table) -> state."""
        if not self.table_exists(self.meta_schema, STATE_TABLE):
            return {}
        rows = self.fetchall(
            f"SELECT source, source_table, state FROM {self.qualified(self.meta_schema, STATE_TABLE)}"
        )
        return {(source, table): json.loads(state) for source, table, state in rows}

    def read_state(self, source: str, table: str) -> dict[str, Any] | None:
        rows = self.fetchall(
            f"SELECT state FROM {self.qualified(self.meta_schema, STATE_TABLE)}"
            " WHERE source = $1 AND source_table = $2",
            [source, table],
        )
        return json.loads(rows[0][0]) if rows else None

    def write_state(self, tx: Transaction, source: str, table: str, state: dict[str, Any]) -> None:
        target = self.qualified(self.meta_schema, STATE_TABLE)
        tx.execute(f"DELETE FROM {target} WHERE source = $1 AND source_table = $2", [source, table])
        tx.execute(f"INSERT INTO {target} VALUES ($1, $2, $3)", [source, table, json.dumps(state)])

    def delete_state(self, source: str, table: str) -> None:
        self.execute(
            f"DELETE FROM {self.qualified(self.meta_schema, STATE_TABLE)}"
            " WHERE source = $1 AND source_table = $2",
            [source, table],
        )
