"""SQLite's SQL (the SQLite source reads it)."""

from __future__ import annotations

from datetime import datetime

from gristmill.dialects.base import Dialect


class SQLiteDialect(Dialect):
    NAME = "SQLite"
    SQLGLOT = "sqlite"
    PLACEHOLDER = "?"
    DOUBLE_TYPE = "REAL"

    def bytes_literal(self, value: bytes) -> str:
        return f"X'{value.hex()}'"

    def timestamp_literal(self, value: datetime) -> str:
        # SQLite keeps timestamps as ISO text: compared as text, so written the same way.
        return self.string_literal(value.isoformat(sep=" "))
