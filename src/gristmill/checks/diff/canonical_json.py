"""JSON text as PostgreSQL's jsonb prints it, computed in Python, so that a DuckDB JSON
column and a PostgreSQL json or jsonb column render one document the same way.

jsonb keeps the last of duplicate keys, orders object keys by length (in UTF-8 bytes),
then bytewise; it prints `{"a": 1, "b": [1, 2]}` (one space after ':' and ','), numbers
as PostgreSQL's numeric prints them (`2e2` as 200, `1.50` as 1.50, `-0` as 0) and
strings with only '"', '\\' and control characters escaped (\\b \\f \\n \\r \\t, others as
\\u00xx). The DuckDB diff endpoint runs `jsonb_text` as a vectorised function over the
distinct values of a column; equality with PostgreSQL is tested on random documents.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pyarrow as pa


class _Number:
    """A JSON number as written, printed as PostgreSQL's numeric prints it."""

    __slots__ = ("text",)

    def __init__(self, literal: str) -> None:
        value = Decimal(literal)
        if value.is_zero():
            value = abs(value)  # numeric has no negative zero
        self.text = f"{value:f}"


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return dict(pairs)  # the last of duplicate keys wins, as in jsonb


def _render(value: Any) -> str:
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ", ".join(f"{_string(k)}: {_render(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, _Number):
        return value.text
    if value is True:
        return "true"
    if value is False:
        return "false"
    return "null"


def _string(text: str) -> str:
    # json.dumps escapes exactly what PostgreSQL's escape_json does when non-ASCII text
    # stays as it is: '"', '\\', \b \f \n \r \t, and other control characters as \u00xx.
    return json.dumps(text, ensure_ascii=False)


def canonical(document: str) -> str:
    """`document` (JSON text) as jsonb prints it."""
    parsed = json.loads(
        document,
        object_pairs_hook=_pairs,
        parse_int=_Number,
        parse_float=_Number,
        parse_constant=_invalid,
    )
    return _render(parsed)


def _invalid(name: str) -> Any:
    raise ValueError(f"{name} is no JSON value")


def jsonb_text(documents: pa.Array) -> pa.Array:
    """`canonical` over an Arrow array of JSON texts (NULL stays NULL)."""
    return pa.array(
        [None if d is None else canonical(d) for d in documents.to_pylist()], pa.string()
    )
