"""MySQL's and MariaDB's SQL (sources and the diff read them; they are no warehouse)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from gristmill.dialects.base import CODE_MODULUS, Dialect
from gristmill.errors import BackendError


class MySQLDialect(Dialect):
    NAME = "MySQL"
    SQLGLOT = "mysql"
    TYPED_TEXT_LITERALS = False
    SUPPORTS_INTERVALS = False
    SUPPORTS_ARRAYS = False
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

    # -- normalisation for hashing (checks/diff) ---------------------------------------
    MD5_32_SQL = "CAST(CONV(SUBSTR({md5}, 1, 8), 16, 10) AS UNSIGNED)"

    def ordered_text(self, expr: str) -> str:
        return f"CAST({expr} AS BINARY)"

    def to_bigint(self, expr: str) -> str:
        return f"CAST({expr} AS SIGNED)"

    def int_div(self, left: str, right: str) -> str:
        return f"({left} DIV {right})"

    def strict_concat(self, parts: Sequence[str]) -> str:
        return "CONCAT(" + ", ".join(parts) + ")"  # NULL when a part is NULL

    def trim_decimal_text(self, text: str) -> str:
        return (
            f"CASE WHEN {text} LIKE '%.%' THEN TRIM(TRAILING '.' FROM TRIM(TRAILING '0' FROM {text}))"
            f" ELSE {text} END"
        )

    def decimal_code(self, expr: str, own_scale: int, scale: int, fits_bigint: bool) -> str:
        # DECIMAL arithmetic is exact to 65 digits: each term below stays within them.
        whole = f"TRUNCATE({expr}, 0)"
        code = f"MOD({whole}, {CODE_MODULUS}) * {10**scale % CODE_MODULUS}"
        if own_scale:
            carry = 10 ** (scale - own_scale) % CODE_MODULUS
            code += f" + ({expr} - {whole}) * {10**own_scale} * {carry}"
        return self.to_bigint(f"MOD({code}, {CODE_MODULUS})")

    def float_special_codes(self, x: str, shift: int) -> str:
        return ""  # MySQL has no NaN nor infinities

    def epoch_us(self, expr: str) -> str:
        return f"TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {expr})"

    def date_code(self, expr: str) -> str:
        return f"DATEDIFF({expr}, '1970-01-01')"

    def boolean_code(self, expr: str) -> str:
        return f"({expr} <> 0)"

    def utf8_hex(self, expr: str) -> str:
        return f"lower(hex(CONVERT({expr} USING utf8mb4)))"

    def interval_text(self, expr: str) -> str:
        # MySQL's TIME is a duration (up to +-838:59:59), as gristmill ingests it.
        return self.strict_concat(["'0:0:'", self.to_bigint(f"TIME_TO_SEC({expr}) * 1000000")])
