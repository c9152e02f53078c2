"""SQLite databases, read with the standard library's sqlite3 module.

SQLite stores values by affinity, not by declared type, so the declared type decides
the Arrow type and values are converted column by column, exactly or not at all:
decimals from SQLite's own text of them, timestamps and dates from their ISO text; a
value its declared type cannot hold (5 in a BOOLEAN, 0.125 in a DECIMAL(12,2)) stops
the table, naming the column_types override that reads it.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa

from gristmill.config import SourceConfig
from gristmill.errors import ConfigError, ConnectionFailedError, TypeMappingError
from gristmill.ingest.sources.base import SourceTable, SqlSource
from gristmill.types import cast_exact, type_name

_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


def arrow_type(declared: str) -> pa.DataType:
    """The Arrow type for a SQLite declared column type."""
    decl = declared.upper().strip()
    if match := _DECIMAL.match(decl):
        return pa.decimal128(int(match.group(1)), int(match.group(2) or 0))
    if "BOOL" in decl:
        return pa.bool_()
    if "INT" in decl:
        return pa.int64()
    if decl.startswith("JSON"):
        return pa.json_(pa.string())
    if "TIMESTAMPTZ" in decl or "WITH TIME ZONE" in decl:
        return pa.timestamp("us", tz="UTC")
    if "DATETIME" in decl or "TIMESTAMP" in decl:
        return pa.timestamp("us")
    if decl == "DATE":
        return pa.date32()
    if decl == "TIME":
        return pa.time64("us")
    if any(word in decl for word in ("REAL", "FLOA", "DOUB")) or decl.startswith("NUMERIC"):
        return pa.float64()
    if "BLOB" in decl:
        return pa.binary()
    return pa.string()


class SQLiteSource(SqlSource):
    KIND = "sqlite"
    DIALECT = "sqlite"
    SUPPORTS_PARALLEL_STREAMS = False

    def __init__(self, name: str, config: SourceConfig, root: Path) -> None:
        super().__init__(name, config, root)
        if not config.path:
            raise ConfigError(f"Source '{name}' (sqlite) needs path = \"app.sqlite\".")
        path = Path(config.path)
        self.path = path if path.is_absolute() else root / path
        if not self.path.is_file():
            raise ConnectionFailedError(f"Source '{name}': no SQLite database at {self.path}.")
        self._db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)

    def list_tables(self) -> list[str]:
        """The database's tables; views are synced only when named."""
        rows = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name"
        ).fetchall()
        return [r[0] for r in rows]

    def describe(self, table: str) -> SourceTable:
        info = self._db.execute(f"PRAGMA table_info({self.quote(table)})").fetchall()
        if not info:
            raise self.missing_table(table)
        fields = [pa.field(row[1], arrow_type(row[2] or ""), nullable=not row[3]) for row in info]
        key = tuple(row[1] for row in sorted(info, key=lambda r: r[5]) if row[5])
        return SourceTable(table, pa.schema(fields), key)

    def column_sql(self, name: str, dtype: pa.DataType) -> str:
        column = self.quote(name)
        if pa.types.is_decimal(dtype):
            # SQLite's own text of the number: converted exactly, or the table stops.
            return f"CAST({column} AS TEXT) AS {column}"
        return column

    def stream(
        self, sql: str, params: Sequence[Any], schema: pa.Schema, setup: Sequence[str] = ()
    ) -> Iterator[pa.RecordBatch]:
        for statement in setup:
            self._db.execute(statement)
        cursor = self._db.execute(sql, [_to_sqlite(p) for p in params])
        while rows := cursor.fetchmany(self.BATCH_ROWS):
            columns = list(zip(*rows, strict=True))
            yield pa.record_batch(
                [_column(values, f) for values, f in zip(columns, schema, strict=True)],
                schema=schema,
            )

    def close(self) -> None:
        self._db.close()


def _to_sqlite(value: Any) -> Any:
    if isinstance(value, datetime):
        # The shortest ISO form compares <= every longer spelling of the same instant, which
        # SQLite keeps in UTC.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        text = value.isoformat(sep=" ")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # As text, which the column's numeric affinity reads as it reads its own values.
        return f"{value:f}"
    return value


def _column(values: Sequence[Any], f: pa.Field) -> pa.Array:
    dtype = f.type
    if isinstance(dtype, pa.BaseExtensionType):
        return pa.ExtensionArray.from_storage(dtype, pa.array(values, dtype.storage_type))
    if pa.types.is_boolean(dtype) and all(v in (None, 0, 1) for v in values):
        return pa.array(values, pa.int64()).cast(dtype)
    parsed = pa.types.is_boolean(dtype) or pa.types.is_decimal(dtype) or pa.types.is_temporal(dtype)
    if parsed or (
        not (pa.types.is_string(dtype) or pa.types.is_binary(dtype))
        and any(isinstance(v, str) for v in values)
    ):
        # From text: SQLite's own for numbers, ISO for times, or a column read as text.
        text = [None if v is None else str(v) for v in values]
        return cast_exact(pa.array(text, pa.string()), dtype, f.name)
    try:
        return pa.array(values, dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        bad = next(v for v in values if not _converts(v, dtype))
        raise TypeMappingError(
            f.name, f"it is declared {type_name(dtype)} but holds the value {bad!r}"
        ) from None


def _converts(value: Any, dtype: pa.DataType) -> bool:
    try:
        pa.array([value], dtype)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return False
    return True
