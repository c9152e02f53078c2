"""Golden SQL: text compared by its bytes, the order DuckDB and Python give it."""

from __future__ import annotations

import pytest

from gristmill.dialects import dialect


@pytest.mark.parametrize(
    ("engine", "sql"),
    [
        ("duckdb", '"city"'),
        ("sqlite", '"city"'),
        ("postgres", '"city" COLLATE "C"'),
    ],
)
def test_bytewise(engine: str, sql: str) -> None:
    spoken = dialect(engine)
    assert spoken.bytewise(spoken.quote("city")) == sql
