"""Cursor values: as JSON, so that sync state round-trips them with their Python type, and
stepped back by a table's `lookback`."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from gristmill.durations import parse_duration

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "decimal": Decimal,
    "int": int,
    "float": float,
    "str": str,
}

Lookback = timedelta | int | float | Decimal
"""How far before the last cursor value each read begins: a duration for a date or
timestamp cursor, a number of cursor values for a numeric one."""


def encode_cursor(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        # An instant is kept in UTC, whatever zone the warehouse handed it back in.
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return {"kind": "datetime", "value": value.isoformat()}
    if isinstance(value, date):
        return {"kind": "date", "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"kind": "decimal", "value": str(value)}
    if isinstance(value, bool | int):
        return {"kind": "int", "value": int(value)}
    if isinstance(value, float):
        return {"kind": "float", "value": value}
    return {"kind": "str", "value": str(value)}


def decode_cursor(encoded: dict[str, Any] | None) -> Any:
    if encoded is None:
        return None
    return _DECODERS[encoded["kind"]](encoded["value"])


def parse_lookback(value: str | float, cursor_type: pa.DataType) -> Lookback:
    """The `lookback` of gristmill.toml for a cursor column of `cursor_type`; ValueError
    saying what to write instead when the two do not fit."""
    if pa.types.is_timestamp(cursor_type) or pa.types.is_date(cursor_type):
        if isinstance(value, str):
            return parse_duration(value)
        raise ValueError(f'it is a {cursor_type} column: give a duration, such as lookback = "10m"')
    numeric = (
        pa.types.is_integer(cursor_type)
        or pa.types.is_decimal(cursor_type)
        or pa.types.is_floating(cursor_type)
    )
    if not numeric:
        raise ValueError(
            f"it is a {cursor_type} column, neither a time nor a number: a lookback cannot"
            " step back from it"
        )
    if isinstance(value, str):
        raise ValueError(
            f"it is a {cursor_type} column: give a number of cursor values, such as lookback = 1000"
        )
    if pa.types.is_integer(cursor_type):
        if isinstance(value, float) and not value.is_integer():
            raise ValueError(f"it is a {cursor_type} column: give a whole number")
        return int(value)
    if pa.types.is_decimal(cursor_type):
        return Decimal(str(value))
    return float(value)


def step_back(value: Any, lookback: Lookback) -> Any:
    """`value` less `lookback`, the least value of its type where that would underflow."""
    if isinstance(value, datetime):
        assert isinstance(lookback, timedelta)
        try:
            return value - lookback
        except OverflowError:
            return datetime.min.replace(tzinfo=value.tzinfo)
    if isinstance(value, date):
        assert isinstance(lookback, timedelta)
        # A date cursor steps back whole days: every day the duration touches.
        days = math.ceil(lookback / timedelta(days=1))
        try:
            return value - timedelta(days=days)
        except OverflowError:
            return date.min
    assert not isinstance(lookback, timedelta)
    if isinstance(value, Decimal):
        return value - Decimal(str(lookback))
    return value - lookback
