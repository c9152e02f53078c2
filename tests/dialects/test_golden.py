"""Golden tests: the SQL each engine's dialect emits, pinned in golden/<engine>.sql.

A change to what an engine is sent shows up as a diff of those files. After a deliberate
change, regenerate them with `GRISTMILL_UPDATE_GOLDEN=1 pytest tests/dialects` and review
the diff like code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import pyarrow as pa
import pytest

from gristmill.checks.spec import CheckSpec
from gristmill.dialects import Dialect, dialect

GOLDEN = Path(__file__).parent / "golden"
ENGINES = ("duckdb", "postgres", "mysql", "sqlite")
WAREHOUSES = ("duckdb", "postgres")

LITERALS = {
    "null": None,
    "true": True,
    "int": -42,
    "bigint_max": 2**63 - 1,
    "beyond_bigint": 2**64,
    "float": 0.1,
    "tiny_float": 1e-300,
    "nan": float("nan"),
    "infinity": float("inf"),
    "minus_infinity": float("-inf"),
    "decimal": Decimal("-1234.5600"),
    "tiny_decimal": Decimal("1E-30"),
    "text_with_quotes": 'it\'s a "test" \\ ok',
    "unicode": "héllo 世界 🚀",
    "bytes": b"\x00\xde\xad",
    "date": date(2024, 2, 29),
    "timestamp": datetime(2024, 1, 2, 3, 4, 5, 123456),
    "timestamptz": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=3))),
    "time": time(23, 59, 59, 999999),
    "interval": timedelta(days=1, microseconds=5),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "array": [1, None, 3],
    "json": {"a": [1, "b"]},
}

TYPES = {
    "bool": pa.bool_(),
    "int8": pa.int8(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "string": pa.string(),
    "binary": pa.binary(),
    "decimal": pa.decimal128(12, 2),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "time": pa.time64("us"),
    "duration": pa.duration("us"),
    "json": pa.json_(pa.string()),
    "uuid": pa.uuid(),
    "list": pa.list_(pa.int32()),
    "nested_list": pa.list_(pa.list_(pa.string())),
    "struct": pa.struct([("a", pa.int64()), ("b", pa.string())]),
}

CHECKS = {
    "accepted_values": CheckSpec(
        kind="accepted_values", column="status", values=("ok", "it's", 1, True, 2.5)
    ),
    "unique": CheckSpec(kind="unique", columns=("user_id", "day")),
    "relationships": CheckSpec(
        kind="relationships", column="user_id", to="raw.Users", to_field="id"
    ),
}


def _render(engine: Dialect, name: str, make: Callable[[], str]) -> str:
    try:
        return make()
    except Exception as exc:  # an engine that refuses a value is pinned as refusing it
        return f"error: {type(exc).__name__}: {exc}"


def _lines(name: str) -> list[str]:
    engine = dialect(name)
    weird, relation = 'we"ird', '"t"'
    lines = [f"quote: {engine.quote(weird)}", f"qualified: {engine.qualified('raw', 'T')}"]
    lines += [
        f"literal {key}: {_render(engine, key, lambda v=value: engine.literal(v))}"  # type: ignore[misc]
        for key, value in LITERALS.items()
    ]
    if name in WAREHOUSES:
        lines += [
            f"type {key}: {_render(engine, key, lambda t=dtype: engine.column_type(t))}"  # type: ignore[misc]
            for key, dtype in TYPES.items()
        ]
        lines += [
            f"check {key}: {check.failing_rows_sql(relation, engine)}"
            for key, check in CHECKS.items()
        ]
        lines.append(f"utc timestamp: {engine.UTC_TIMESTAMP_SQL.format(x=engine.quote('at'))}")
    return lines


@pytest.mark.parametrize("name", ENGINES)
def test_dialect_sql_is_pinned(name: str) -> None:
    path = GOLDEN / f"{name}.sql"
    rendered = "\n".join(_lines(name)) + "\n"
    if os.environ.get("GRISTMILL_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.exists(), f"{path} is missing: run with GRISTMILL_UPDATE_GOLDEN=1"
    assert rendered == path.read_text(encoding="utf-8")


def test_a_timestamptz_literal_names_the_instant_in_utc() -> None:
    moment = datetime(2024, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=3)))
    for name in ENGINES:
        assert "2023-12-31 21:30:00" in dialect(name).literal(moment)
    assert dialect("duckdb").literal(moment.astimezone(UTC)) == dialect("duckdb").literal(moment)
