"""The Warehouse interface shared by every warehouse backend.

A backend maps Arrow types to its column types, appends Arrow batches into a table
(from several threads at once where it can), and runs statements inside a
transaction. Everything built on those primitives (table creation, sync state,
the merge and delete statements of a sync) lives here, once, in portable SQL.
"""

from __future__ import annotations

import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar, Protocol

import pyarrow as pa

from gristmill.config import WarehouseConfig
from gristmill.errors import BackendError

META_SCHEMA = "_gristmill"
STATE_TABLE = "sync_state"


class Transaction(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


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


class Warehouse(ABC):
    NAME: ClassVar[str]
    DIALECT: ClassVar[str]
    """The sqlglot dialect of the SQL this warehouse runs."""
    SUPPORTS_TRANSACTIONAL_DDL: ClassVar[bool] = True
    SUPPORTS_PARALLEL_APPEND: ClassVar[bool] = True
    """Whether `append` may be called from several threads at once on one table."""

    def __init__(self, config: WarehouseConfig, root: Path) -> None:
        self.config = config
        self.root = root

    SIMPLE_TYPES: ClassVar[dict[pa.DataType, str]]
    """Column types of the Arrow types that take no parameters."""
    JSON_TYPE: ClassVar[str]
    UUID_TYPE: ClassVar[str] = "UUID"
    DECIMAL_TYPE: ClassVar[str] = "DECIMAL"
    MAX_DECIMAL_PRECISION: ClassVar[int] = 38

    # -- what each backend provides ------------------------------------------------
    def struct_type(self, dtype: pa.StructType) -> str:
        return self.JSON_TYPE

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Transaction]:
        """A transaction: committed when the block exits, rolled back on an exception."""

    @abstractmethod
    def append(self, schema: str, table: str, batches: Iterable[pa.RecordBatch]) -> int:
        """Append `batches` to an existing table outside any transaction; return the rows."""

    @abstractmethod
    def query_arrow(self, sql: str, params: Sequence[Any] = ()) -> pa.Table:
        """Run a query and return its result as an Arrow table."""

    @abstractmethod
    def close(self) -> None: ...

    # -- shared behaviour ------------------------------------------------------------
    def column_type(self, dtype: pa.DataType) -> str:
        """The column type that stores Arrow `dtype` without loss."""
        if isinstance(dtype, pa.BaseExtensionType):
            if dtype.extension_name == "arrow.json":
                return self.JSON_TYPE
            if dtype.extension_name == "arrow.uuid":
                return self.UUID_TYPE
            return self.column_type(dtype.storage_type)
        simple = self.SIMPLE_TYPES.get(dtype)
        if simple:
            return simple
        if pa.types.is_decimal(dtype):
            precision = min(dtype.precision, self.MAX_DECIMAL_PRECISION)
            return f"{self.DECIMAL_TYPE}({precision},{dtype.scale})"
        if pa.types.is_timestamp(dtype):
            return "TIMESTAMPTZ" if dtype.tz else "TIMESTAMP"
        if pa.types.is_time(dtype):
            return "TIME"
        if pa.types.is_duration(dtype) or pa.types.is_interval(dtype):
            return "INTERVAL"
        if pa.types.is_list(dtype) or pa.types.is_large_list(dtype):
            return f"{self.column_type(dtype.value_type)}[]"
        if pa.types.is_struct(dtype):
            return self.struct_type(dtype)
        if pa.types.is_dictionary(dtype):
            return self.column_type(dtype.value_type)
        raise BackendError(f"No {self.NAME} column type for the Arrow type {dtype}")

    @staticmethod
    def quote(identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def qualified(self, schema: str, table: str) -> str:
        return f"{self.quote(schema)}.{self.quote(table)}"

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

    def row_count(self, schema: str, table: str) -> int:
        return int(self.fetchall(f"SELECT count(*) FROM {self.qualified(schema, table)}")[0][0])

    # -- sync state: lives in the warehouse so that it commits with the data ----------
    def ensure_state_table(self) -> None:
        self.ensure_schema(META_SCHEMA)
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {self.qualified(META_SCHEMA, STATE_TABLE)} ("
            " source TEXT NOT NULL, source_table TEXT NOT NULL, state TEXT NOT NULL,"
            " PRIMARY KEY (source, source_table))"
        )

    def read_state(self, source: str, table: str) -> dict[str, Any] | None:
        rows = self.fetchall(
            f"SELECT state FROM {self.qualified(META_SCHEMA, STATE_TABLE)}"
            " WHERE source = $1 AND source_table = $2",
            [source, table],
        )
        return json.loads(rows[0][0]) if rows else None

    def write_state(self, tx: Transaction, source: str, table: str, state: dict[str, Any]) -> None:
        target = self.qualified(META_SCHEMA, STATE_TABLE)
        tx.execute(f"DELETE FROM {target} WHERE source = $1 AND source_table = $2", [source, table])
        tx.execute(f"INSERT INTO {target} VALUES ($1, $2, $3)", [source, table, json.dumps(state)])

    def delete_state(self, source: str, table: str) -> None:
        self.execute(
            f"DELETE FROM {self.qualified(META_SCHEMA, STATE_TABLE)}"
            " WHERE source = $1 AND source_table = $2",
            [source, table],
        )
