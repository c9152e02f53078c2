"""DuckDB: a table of the project's DuckDB warehouse."""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING, Any

from gristmill.checks.diff.base import (
    CODE_MODULUS,
    FLOAT_DIGITS,
    REAL_DIGITS,
    ColumnType,
    DiffEndpoint,
    Kind,
)

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
}
_FUNCTIONS = itertools.count()
_DECIMAL = re.compile(r"DECIMAL\((\d+),\s*(\d+)\)")


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
    kind = _KINDS.get(upper, "other")
    digits = REAL_DIGITS if upper in ("FLOAT", "REAL") else FLOAT_DIGITS
    return ColumnType(name, data_type, kind, digits=digits, nullable=nullable)


class DuckDBEndpoint(DiffEndpoint):
    NAME = "DuckDB"
    TEXT_TYPE = "VARCHAR"
    TEXT_HASHES = ("hashtext", "md5")
    MD5_32 = "CAST('0x' || substr({md5}, 1, 8) AS BIGINT)"

    def __init__(self, label: str, warehouse: DuckDBWarehouse, schema: str, table: str) -> None:
        import duckdb

        from gristmill.checks.diff.hashtext import hashtext

        super().__init__(label, schema, table)
        self._cursor = warehouse.cursor()
        # Functions live in the database's catalog: each endpoint registers its own name,
        # as the two sides of a diff may be tables of one database.
        self._hashtext = f"gm_pg_hashtext_{next(_FUNCTIONS)}"
        register: Any = self._cursor.create_function  # its stubs miss arrow functions
        register(self._hashtext, hashtext, ["VARCHAR"], "BIGINT", type="arrow")
        self._error = duckdb.Error
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

    def decimal_text(self, column: str, own: ColumnType, scale: int) -> str:
        if own.kind == "integer" or own.scale == scale:
            return self.text(column)
        return self.text(f"CAST({column} AS DECIMAL(38,{scale}))")

    def float_text(self, column: str, digits: int) -> str:
        x = f"CAST({column} AS DOUBLE)"
        return (
            f"CASE WHEN isnan({x}) THEN 'NaN' WHEN {x} = 'inf'::DOUBLE THEN 'Infinity'"
            f" WHEN {x} = '-inf'::DOUBLE THEN '-Infinity'"
            f" ELSE printf('% .{digits - 1}e', {x}) END"
        )

    def epoch_us(self, column: str, own: ColumnType) -> str:
        return f"epoch_us({column})"

    def text_code(self, text: str) -> str:
        if self.text_hash != "hashtext":
            return super().text_code(text)
        # The function runs in Python: hash each distinct value once (see checksum_source).
        alias = self._hashed.setdefault(text, f"gm_h{len(self._hashed)}")
        return f"{alias}._gm_hash"

    def checksum_source(self, where: str) -> str:
        joins = "".join(
            f" LEFT JOIN (SELECT _gm_text, {self._hashtext}(_gm_text) AS _gm_hash FROM"
            f" (SELECT DISTINCT {text} AS _gm_text FROM {self.ref} WHERE {where}) AS d)"
            f" AS {alias} ON {alias}._gm_text = {text}"
            for text, alias in self._hashed.items()
        )
        self._hashed.clear()
        return self.ref + joins

    def decimal_code(self, column: str, scale: int, fits_bigint: bool) -> str:
        exact = f"CAST({column} AS DECIMAL(38,{scale}))"
        return f"CAST(CAST({exact} * {10**scale} AS HUGEINT) % {CODE_MODULUS} AS BIGINT)"

    def bytes_text(self, column: str) -> str:
        return f"lower(hex({column}))"

    def to_bigint(self, expr: str) -> str:
        return f"CAST({expr} AS BIGINT)"

    def int_div(self, left: str, right: str) -> str:
        return f"({left} // {right})"
