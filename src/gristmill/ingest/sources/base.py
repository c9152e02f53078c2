"""The Source interface, and the shared base of the SQL database sources.

A source describes its tables as Arrow schemas with faithful types and reads them as
streams of Arrow record batches. It never writes: the sync engine decides what to read
(a cursor lower bound, the files not yet loaded) and how to load it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from gristmill.config import SourceConfig
from gristmill.dialects import Dialect, dialect
from gristmill.errors import ConfigError, NotFoundError, did_you_mean

if TYPE_CHECKING:
    from gristmill.ingest.cdc.base import ChangeLog


@dataclass(frozen=True)
class SourceTable:
    """A source table as the source describes it."""

    name: str
    schema: pa.Schema
    primary_key: tuple[str, ...] = ()
    overrides: Mapping[str, str] = field(default_factory=dict)
    """Columns read as another type than their own (`column_types`): column -> type name;
    `schema` holds the type they are read as."""


@dataclass
class ReadRequest:
    """What the sync engine asks a source to read."""

    table: SourceTable
    columns: list[str]
    cursor: str | None = None
    cursor_from: Any = None
    """Read only rows whose cursor is >= this value: inclusive, so that ties are never lost,
    and as far before the last synced value as the table's lookback says."""
    streams: int = 1
    path: str | None = None
    files_done: dict[str, Any] = field(default_factory=dict)
    snapshot: Snapshot | None = None
    """Read in this state of the database (the one a change-capture slot was created at)
    instead of the current one; the caller ends it."""


@dataclass
class RejectedRow:
    """A malformed input row, kept aside instead of loaded."""

    file: str
    line: int | None
    error: str
    raw: str | None = None


@dataclass
class Snapshot:
    """A state of a source database that connections other than the reading one can
    share: every range of a split read sees the same rows (PostgreSQL's exported
    snapshots)."""

    setup: tuple[str, ...]
    """The statements a connection runs first to read in the snapshot."""
    close: Callable[[], None]
    """Ends the exporting transaction: once every connection has taken the snapshot."""


@dataclass
class Extract:
    """The result of a read: disjoint batch streams that may be consumed in parallel."""

    streams: list[Iterator[pa.RecordBatch]]
    files: dict[str, Any] | None = None
    """For file sources: every file loaded once this extract is committed."""
    rejects: list[RejectedRow] = field(default_factory=list)
    pending_from: Any = None
    """The least cursor value that a transaction open during the read may still commit,
    where the source can tell (PostgreSQL, for time cursors): the sync's cursor stops
    there, so that the next read takes such changes. None: the source cannot tell."""
    on_close: Callable[[], None] | None = None
    keys_unique: bool = True
    """Whether the read holds at most one version of a row: not so when its ranges were
    read at different moments (no shared snapshot), and a row changed in between."""

    def close(self) -> None:
        """End the read: a stream left unfinished (the load failed) releases its query and
        connection now, not whenever it is garbage-collected."""
        for stream in self.streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if self.on_close is not None:
            self.on_close()


class Source(ABC):
    KIND: ClassVar[str]
    SUPPORTS_PARALLEL_STREAMS: ClassVar[bool] = False
    SUPPORTS_CURSOR: ClassVar[bool] = True
    SUPPORTS_KEY_LISTING: ClassVar[bool] = True
    READS_FILES: ClassVar[bool] = False
    READS_ON_WORKERS: ClassVar[bool] = False
    """Whether Dask workers can read ranges of its tables, each opening the source from
    its config (a database server they reach, not a file beside the driver)."""
    SHARES_SNAPSHOTS: ClassVar[bool] = False
    """Whether `export_snapshot` gives other connections one state of the database."""
    CAPTURES_CHANGES: ClassVar[bool] = False
    """Whether its tables can sync with mode = "cdc" (a log of changes: `change_log`)."""

    def __init__(self, name: str, config: SourceConfig, root: Path) -> None:
        self.name = name
        self.config = config
        self.root = root

    @abstractmethod
    def list_tables(self) -> list[str]: ...

    @abstractmethod
    def describe(self, table: str) -> SourceTable:
        """The table's columns and key; NotFoundError naming close matches if it is missing."""

    @abstractmethod
    def extract(self, request: ReadRequest) -> Extract: ...

    @abstractmethod
    def read_keys(self, table: SourceTable, keys: Sequence[str]) -> Iterator[pa.RecordBatch]:
        """Every current value of the key columns, for detecting hard deletes."""

    def change_log(self, table: SourceTable, project: str) -> ChangeLog:
        """The table's log of changes, for mode = "cdc" (where CAPTURES_CHANGES)."""
        raise ConfigError(
            f"Source '{self.name}' ({self.KIND}) has no change log: mode 'cdc' reads"
            " PostgreSQL's logical replication. Use mode 'merge' with a cursor."
        )

    def typed_rows(
        self, table: SourceTable, columns: Sequence[str], rows: str
    ) -> Iterator[pa.RecordBatch]:
        """`rows` of the change log (a JSON array of objects of column -> text) in the
        types a read of `table` gives (where CAPTURES_CHANGES)."""
        raise NotImplementedError(f"{self.KIND} sources have no change log")

    def close(self) -> None:  # noqa: B027 - sources without a connection have nothing to close
        pass

    def missing_table(self, table: str) -> NotFoundError:
        return NotFoundError(
            f"Source '{self.name}' has no table '{table}'.{did_you_mean(table, self.list_tables())}"
        )


class SqlSource(Source):
    """A relational database read with one SELECT per stream."""

    PLACEHOLDER: ClassVar[str] = "?"
    """The driver's first positional parameter."""
    BATCH_ROWS: ClassVar[int] = 100_000
    INLINES_CURSOR: ClassVar[bool] = False
    """Whether the cursor's lower bound is written as the dialect's literal instead of
    bound: the server then plans with the value (PostgreSQL uses the cursor's index, where
    a parameter made it scan the whole table), and the value is exact where the driver's
    escaping is not (MySQL: an instant in the session's UTC, a decimal with every digit)."""
    DIALECT: ClassVar[str]

    @cached_property
    def dialect(self) -> Dialect:
        return dialect(self.DIALECT)

    def quote(self, identifier: str) -> str:
        return self.dialect.quote(identifier)

    def table_ref(self, table: str) -> str:
        return ".".join(self.quote(part) for part in table.split("."))

    def column_sql(self, name: str, dtype: pa.DataType) -> str:
        """The select-list expression for a column; backends override it to transfer a type
        in a cheaper or more faithful form."""
        return self.quote(name)

    def override_sql(self, name: str, dtype: pa.DataType) -> str:
        """The select-list expression for a column read as another type (`column_types`):
        as a double where asked (an approximation by choice), else as its text, which the
        source converts to `dtype` exactly or not at all; a cast in SQL would round a
        decimal, or cut a timestamp to its date, without a word."""
        column = self.quote(name)
        target = self.dialect.DOUBLE_TYPE if pa.types.is_floating(dtype) else self.dialect.TEXT_TYPE
        return f"{self.dialect.cast(column, target)} AS {column}"

    def select_list(self, table: SourceTable, columns: Sequence[str]) -> str:
        """The select list that reads `columns` of `table` in their described types."""
        return ", ".join(
            (self.override_sql if c in table.overrides else self.column_sql)(
                c, table.schema.field(c).type
            )
            for c in columns
        )

    def select_sql(self, request: ReadRequest, where: Sequence[str] = ()) -> tuple[str, list[Any]]:
        select = self.select_list(request.table, request.columns)
        conditions = list(where)
        params: list[Any] = []
        if request.cursor and request.cursor_from is not None:
            condition, values = self.cursor_condition(request.cursor, request.cursor_from)
            conditions.append(condition)
            params.extend(values)
        sql = f"SELECT {select} FROM {self.table_ref(request.table.name)}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        return sql, params

    def cursor_condition(self, cursor: str, value: Any) -> tuple[str, list[Any]]:
        """The condition selecting rows at or after the last synced cursor value."""
        if self.INLINES_CURSOR:
            return f"{self.quote(cursor)} >= {self.dialect.literal(value)}", []
        return f"{self.quote(cursor)} >= {self.PLACEHOLDER}", [value]

    @abstractmethod
    def stream(
        self, sql: str, params: Sequence[Any], schema: pa.Schema, setup: Sequence[str] = ()
    ) -> Iterator[pa.RecordBatch]:
        """Run `sql` (after the `setup` statements, on the same connection) and yield record
        batches cast to `schema`."""

    def pending_from(self, cursor_type: pa.DataType) -> Any:
        """The least value of a cursor of `cursor_type` that a transaction open now may
        still commit; None where the source cannot tell (see `Extract.pending_from`)."""
        return None

    def export_snapshot(self) -> Snapshot | None:
        """The database's current state, for other connections to read in; None where
        the database cannot share one."""
        return None

    def extract(self, request: ReadRequest) -> Extract:
        sql, params = self.select_sql(request)
        schema = pa.schema([request.table.schema.field(c) for c in request.columns])
        return Extract(streams=[self.stream(sql, params, schema)])

    def read_keys(self, table: SourceTable, keys: Sequence[str]) -> Iterator[pa.RecordBatch]:
        request = ReadRequest(table=table, columns=list(keys))
        sql, params = self.select_sql(request)
        return self.stream(sql, params, pa.schema([table.schema.field(k) for k in keys]))
