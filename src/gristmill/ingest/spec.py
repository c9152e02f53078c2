"""Which columns of a source table a sync reads, under which names, keyed how: the
table's description checked against its entry in gristmill.toml."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from gristmill.config import TableConfig
from gristmill.errors import ConfigError, NotFoundError, did_you_mean
from gristmill.ingest.cursor import Lookback, parse_lookback, step_back
from gristmill.ingest.sources.base import ReadRequest, Source, SourceTable
from gristmill.types import override_type


@dataclass(frozen=True)
class TableSpec:
    """A source table, resolved against the source's description and the config."""

    source: str
    table: SourceTable
    config: TableConfig
    target: str
    columns: list[str]
    """Source column names to read, in order."""
    names: list[str]
    """Their names in the warehouse."""
    primary_key: list[str]
    """Warehouse names of the key columns."""
    lookback: Lookback | None = None
    """The config's lookback, in the cursor's terms."""

    @property
    def schema(self) -> pa.Schema:
        fields = [self.table.schema.field(c) for c in self.columns]
        return pa.schema([f.with_name(n) for f, n in zip(fields, self.names, strict=True)])

    def renamed(self, column: str | None) -> str | None:
        return None if column is None else self.config.rename.get(column, column)

    @property
    def keys_unique(self) -> bool:
        """Whether one read holds at most one row per key: the key is the primary key the
        source itself enforces (a file promises nothing, nor does a key that gristmill.toml
        sets on other columns)."""
        declared = [self.config.rename.get(k, k) for k in self.table.primary_key]
        return bool(declared) and declared == self.primary_key

    def read_from(self, cursor: Any) -> Any:
        """Where a read after the last cursor value `cursor` begins (inclusive): at it, or
        `lookback` before it. None: the whole table."""
        if cursor is None or not self.lookback:
            return cursor
        return step_back(cursor, self.lookback)

    def read_request(self, cursor: Any, files_done: dict[str, Any] | None = None) -> ReadRequest:
        """What to ask the source for: the rows from the last cursor value `cursor` on (see
        `read_from`), or the files not in `files_done`."""
        return ReadRequest(
            table=self.table,
            columns=self.columns,
            cursor=self.config.cursor,
            cursor_from=self.read_from(cursor),
            streams=self.config.parallel,
            path=self.config.path,
            files_done=files_done or {},
        )


def resolve_spec(source: Source, name: str, config: TableConfig) -> TableSpec:
    table = source.describe(name)
    available = table.schema.names
    where = f"source '{source.name}', table '{name}'"

    def check(column: str, role: str) -> None:
        if column not in available:
            raise NotFoundError(
                f"{where}: {role} column '{column}' does not exist."
                f"{did_you_mean(column, available)}"
            )

    for column in config.columns or []:
        check(column, "selected")
    for column in config.exclude:
        check(column, "excluded")
    for column in config.rename:
        check(column, "renamed")
    for column in config.column_types:
        check(column, "typed (column_types)")
    if config.column_types:
        table = SourceTable(
            table.name,
            pa.schema(
                [
                    f.with_type(override_type(config.column_types[f.name]))
                    if f.name in config.column_types
                    else f
                    for f in table.schema
                ]
            ),
            table.primary_key,
            dict(config.column_types),
        )
    columns = [c for c in (config.columns or available) if c not in set(config.exclude)]
    key = config.primary_key or list(table.primary_key)
    for column in key:
        check(column, "primary key")
    for role, optional in (("cursor", config.cursor), ("soft delete", config.soft_delete_column)):
        if optional:
            check(optional, role)
    needed = [*key, *(c for c in (config.cursor, config.soft_delete_column) if c)]
    for column in needed:
        if column not in columns:
            raise ConfigError(f"{where}: column '{column}' is excluded but the sync needs it.")
    if config.mode == "merge" and not key:
        raise ConfigError(
            f"{where}: mode 'merge' needs a primary key, and the table declares none. "
            "Set primary_key = [...] in its table entry."
        )
    if config.mode == "cdc":
        if not source.CAPTURES_CHANGES:
            raise ConfigError(
                f"{where}: mode 'cdc' reads PostgreSQL's logical replication, which a"
                f" {source.KIND} source does not have. Use mode 'merge' with a cursor."
            )
        if not key:
            raise ConfigError(
                f"{where}: mode 'cdc' needs a primary key to apply updates and deletes by,"
                " and the table declares none. Set primary_key = [...] in its table entry."
            )
    if config.detect_deletes and not key:
        raise ConfigError(f"{where}: detect_deletes needs a primary key; set primary_key.")
    lookback = None
    if config.lookback is not None and config.cursor:
        if source.READS_FILES:
            raise ConfigError(
                f"{where}: lookback applies to database tables; each file is loaded once."
            )
        try:
            lookback = parse_lookback(config.lookback, table.schema.field(config.cursor).type)
        except ValueError as exc:
            raise ConfigError(
                f"{where}: lookback = {config.lookback!r} does not fit cursor "
                f"'{config.cursor}': {exc}."
            ) from None
    names = [config.rename.get(c, c) for c in columns]
    return TableSpec(
        source=source.name,
        table=table,
        config=config,
        target=config.target or table.name.split(".")[-1],
        columns=columns,
        names=names,
        primary_key=[config.rename.get(k, k) for k in key],
        lookback=lookback,
    )
