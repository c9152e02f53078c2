"""MySQL's and MariaDB's SQL (sources and the diff read them; they are no warehouse)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from gristmill.dialects.base import Dialect
from gristmill.errors import BackendError


class MySQLDialect(Dialect):
    NAME = "MySQL"
    SQLGLOT = "mysql"
    QUOTE = "`"
    TEXT_TYPE = "CHAR"
    DOUBLE_TYPE = "DOUBLE"
    MAX_DECIMAL_PRECISION = 65

    def string_literal(self, value: str) -> str:
        # Backslash is an escape character in MySQL strings unless NO_BACKSLASH_ESCAPES.
        return "'" + value.replace("\\", "\\\\").replace("'", "''").replace("\x00", "\\0") + "'"

    def float_literal(self, value: float) -> str:
        if not math.isfinite(value):
            raise BackendError(f"MySQL has no floating-point value {value}.")
        return repr(value)

    def bytes_literal(self, value: bytes) -> str:
        return f"X'{value.hex()}'"

    def timestamp_literal(self, value: datetime) -> str:
        # gristmill's sessions run with time_zone = '+00:00': an instant is written in UTC.
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"

    def uuid_literal(self, value: UUID) -> str:
        return self.string_literal(str(value))

    def json_literal(self, text: str) -> str:
        # MariaDB's JSON is LONGTEXT with a check: no cast to JSON.
        return self.string_literal(text)

    def interval_literal(self, value: timedelta) -> str:
        return self.unsupported(value)

    def array_literal(self, values: list[Any]) -> str:
        return self.unsupported(values)
