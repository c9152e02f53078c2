"""SQLite's SQL (the SQLite source reads it).

SQLite has no date, time or timestamp type: they are ISO text, compared as text, so
they are written as text, timestamps with a zone as the UTC instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal

from gristmill.dialects.base import Dialect


class SQLiteDialect(Dialect):
    NAME = "SQLite"
    SQLGLOT = "sqlite"
    TYPED_TEXT_LITERALS = False
    SUPPORTS_INTERVALS = False
    SUPPORTS_ARRAYS = False
    DOUBLE_TYPE = "REAL"

    def bytes_literal(self, value: bytes) -> str:
        return f"X'{value.hex()}'"

    def date_literal(self, value: date) -> str:
        return self.string_literal(value.isoformat())

    def time_literal(self, value: time) -> str:
        return self.string_literal(value.isoformat())

    def timestamp_literal(self, value: datetime) -> str:
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return self.string_literal(value.isoformat(sep=" "))

    def decimal_literal(self, value: Decimal) -> str:
        # A CAST to DECIMAL has NUMERIC affinity: the number as written says the same.
        if not value.is_finite():
            return self.unsupported(value)
        return f"{value:f}"
