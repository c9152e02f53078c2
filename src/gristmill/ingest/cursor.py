"""Cursor values as JSON, so that sync state round-trips them with their Python type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "decimal": Decimal,
    "int": int,
    "float": float,
    "str": str,
}


def encode_cursor(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, datetime):
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
