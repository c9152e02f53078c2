"""DuckDB: a table of the project's DuckDB warehouse."""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from gristmill.checks.diff.base import DiffEndpoint
from gristmill.checks.diff.normalise import ColumnType, Kind

if TYPE_CHECKING:
    from gristmill.project import Project
    from gristmill.warehouse.duckdb import DuckDBWarehouse

_INTEGERS = {
    "TINYINT": 2**7,
    "SMALLINT": 2**15,
    "INTEGER": 2**31,
    "BIGINT": 2**63,
    "HUGEINT": 2**127,
    "UTINYINT": 2**8,
    "USMALLINT": 2**16,
    "UINTEGER": 2**32,
    "UBIGINT": 2**64,
    "UHUGEINT": 2**128,
}
"""Integer types and a bound on their absolute values."""
_KINDS: dict[str, Kind] = {
    "DOUBLE": "float",
    "FLOAT": "float",
    "REAL": "float",
    "VARCHAR": "text",
    "BLOB": "bytes",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP_S": "timestamp",
    "TIMESTAMP_MS": "timestamp",
    "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "BOOLEAN": "boolean",
    "UUID": "uuid",
    "JSON": "json",
    "INTERVAL": "interval",
}
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")
_REGISTERING = threading.Lock()


def column_type(name: str, data_type: str, nullable: bool = True) -> ColumnType:
    upper = data_type.upper()
    if upper in _INTEGERS:
        return ColumnType(name, data_type, "integer", nullable=nullable, max_abs=_INTEGERS[upper])
    decimal = _DECIMAL.fullmatch(upper)
    if decimal:
        precision, scale = int(decimal.group(1)), int(decimal.group(2))
        return ColumnType(
            name,
            data_type,
            "decimal",
            scale=scale,
            nullable=nullable,
            max_abs=10 ** (precision - scale),
        )
    if upper.endswith("[]"):
        element = column_type(name, upper.removesuffix("[]"))
        return ColumnType(name, data_type, "array", nullable=nullable, element=element.kind)
    kind = _KINDS.get(upper, "other")
    return ColumnType(name, data_type, kind, single=upper in ("FLOAT", "REAL"), nullable=nullable)


class DuckDBEndpoint(DiffEndpoint):
    NAME = "DuckDB"
    DIALECT = "duckdb"

    def __init__(self, label: str, warehouse: DuckDBWarehouse, schema: str, table: str) -> None:
        import duckdb

        super().__init__(label, schema, table)
        self._cursor = warehouse.cursor()
        # Timestamps with time zone print in UTC (in arrays), whatever the process's TZ.
        self._cursor.execute("SET TimeZone = 'UTC'")
        self._error = duckdb.Error
        _register_functions(self._cursor)
        self._hashed: dict[str, str] = {}
        """Text expressions of the checksum query being built -> the alias of their hashes."""

    @classmethod
    def for_warehouse(cls, project: Project, label: str, schema: str, table: str) -> DiffEndpoint:
        from gristmill.warehouse.duckdb import DuckDBWarehouse

        warehouse = project.warehouse
        assert isinstance(warehouse, DuckDBWarehouse)
        return cls(label, warehouse, schema, table)

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            rows: list[tuple[Any, ...]] = self._cursor.execute(sql).fetchall()
        except self._error as exc:
            raise self.rejected(sql, str(exc)) from None
        return rows

    def _describe(self) -> list[ColumnType]:
        rows = self._fetch(
            "SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns"
            f" WHERE table_schema = {self.literal(self.schema)}"
            f" AND table_name = {self.literal(self.table)} ORDER BY ordinal_position"
        )
        return [column_type(name, data_type, nullable) for name, data_type, nullable in rows]

    def _tables(self) -> list[str]:
        rows = self._fetch(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables"
        )
        return [r[0] for r in rows]

    def close(self) -> None:
        self._cursor.close()

    def text_code(self, text: str) -> str:
        if self.text_hash != "hashtext":
            return super().text_code(text)
        # The function runs in Python: hash each distinct value once (see checksum_source).
        alias = self._hashed.setdefault(text, f"gm_h{len(self._hashed)}")
        return f"{alias}._gm_hash"

    def checksum_source(self, where: str) -> str:
        hashtext = self.dialect.HASHTEXT_SQL.format(text="_gm_text")
        joins = "".join(
            f" LEFT JOIN (SELECT _gm_text, {hashtext} AS _gm_hash FROM"
            f" (SELECT DISTINCT {text} AS _gm_text FROM {self.ref} WHERE {where}) AS d)"
            f" AS {alias} ON {alias}._gm_text = {text}"
            for text, alias in self._hashed.items()
        )
        self._hashed.clear()
        return self.ref + joins


def _register_functions(cursor: Any) -> None:
    """PostgreSQL's hashtext and jsonb rendering as Python functions, under the names the
    DuckDB dialect spells. Functions live in the database's catalog: the first endpoint
    of a database registers them for every later one."""
    from gristmill.checks.diff.canonical_json import jsonb_text
    from gristmill.checks.diff.hashtext import hashtext
    from gristmill.dialects import dialect
    from gristmill.dialects.duckdb import DuckDBDialect

    functions = {
        DuckDBDialect.HASHTEXT_FUNCTION: (hashtext, "BIGINT"),
        DuckDBDialect.JSONB_TEXT_FUNCTION: (jsonb_text, "VARCHAR"),
    }
    register: Any = cursor.create_function  # its stubs miss arrow functions
    with _REGISTERING:
        present = {
            r[0]
            for r in cursor.execute(
                "SELECT function_name FROM duckdb_functions() WHERE"
                f" {dialect('duckdb').in_list('function_name', list(functions))}"
            ).fetchall()
        }
        for name, (function, returns) in functions.items():
            if name not in present:
                register(name, function, ["VARCHAR"], returns, type="arrow")
