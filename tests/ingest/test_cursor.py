"""Cursor values: their JSON form in the sync state, and a lookback stepped back from them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from gristmill.ingest.cursor import decode_cursor, encode_cursor, parse_lookback, step_back


@pytest.mark.parametrize(
    "value",
    [
        7,
        Decimal("12345678901234567890.123456789"),
        1.5,
        "b",
        date(2024, 2, 29),
        datetime(2024, 1, 1, 0, 0, 0, 1),
        datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    ],
)
def test_cursor_values_round_trip_with_their_type(value: Any) -> None:
    decoded = decode_cursor(encode_cursor(value))
    assert decoded == value and type(decoded) is type(value)


def test_an_instant_is_kept_in_utc_whatever_zone_it_came_in() -> None:
    tokyo = datetime(2024, 1, 1, 19, 0, tzinfo=timezone(timedelta(hours=9)))
    encoded = encode_cursor(tokyo)
    assert encoded == {"kind": "datetime", "value": "2024-01-01T10:00:00+00:00"}
    assert decode_cursor(encoded) == tokyo


@pytest.mark.parametrize(
    ("value", "lookback", "expected"),
    [
        (datetime(2024, 1, 1, 0, 5), timedelta(minutes=10), datetime(2023, 12, 31, 23, 55)),
        # A date steps back every day the duration touches.
        (date(2024, 3, 1), timedelta(hours=1), date(2024, 2, 29)),
        (date(2024, 3, 1), timedelta(days=1), date(2024, 2, 29)),
        (date(2024, 3, 1), timedelta(days=1, seconds=1), date(2024, 2, 28)),
        (date(1, 1, 2), timedelta(days=30), date.min),
        (datetime(1, 1, 1, 0, 1, tzinfo=UTC), timedelta(hours=1), datetime.min.replace(tzinfo=UTC)),
        (100, 1000, -900),
        (Decimal("1.05"), Decimal("0.1"), Decimal("0.95")),
        (2.5, 1.0, 1.5),
    ],
)
def test_step_back(value: Any, lookback: Any, expected: Any) -> None:
    assert step_back(value, lookback) == expected


@pytest.mark.parametrize(
    ("value", "dtype", "expected"),
    [
        ("10m", pa.timestamp("us", tz="UTC"), timedelta(minutes=10)),
        ("2d", pa.date32(), timedelta(days=2)),
        (1000, pa.int64(), 1000),
        (1000.0, pa.int32(), 1000),
        (0.5, pa.decimal128(12, 2), Decimal("0.5")),
        (2, pa.float64(), 2.0),
    ],
)
def test_a_lookback_in_the_cursors_terms(value: Any, dtype: pa.DataType, expected: Any) -> None:
    parsed = parse_lookback(value, dtype)
    assert parsed == expected and type(parsed) is type(expected)


@pytest.mark.parametrize(
    ("value", "dtype", "says"),
    [
        (10, pa.timestamp("us"), 'lookback = "10m"'),
        ("10m", pa.int64(), "lookback = 1000"),
        (1.5, pa.int64(), "whole number"),
        ("10m", pa.string(), "neither a time nor a number"),
    ],
)
def test_a_lookback_that_does_not_fit_says_what_does(
    value: Any, dtype: pa.DataType, says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        parse_lookback(value, dtype)
