"""What ingest, the warehouses and the PostgreSQL driver share about types: the names a
table's `column_types` may use, the exact conversion of an Arrow column to another type,
and how an infinite timestamp or date travels in Arrow.

Arrow has no infinite timestamp or date. gristmill uses DuckDB's encoding, so that
DuckDB reads and writes them as its own `infinity` and `-infinity`: the greatest value
of the storage integer for `infinity`, its negation for `-infinity` (INT64_MAX and
-INT64_MAX microseconds, INT32_MAX and -INT32_MAX days).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from gristmill.errors import TypeMappingError

if TYPE_CHECKING:
    import pyarrow as pa

TIMESTAMP_INFINITY = 2**63 - 1
DATE_INFINITY = 2**31 - 1

OVERRIDE_TYPES = (
    "text",
    "json",
    "double",
    "bigint",
    "int",
    "smallint",
    "bool",
    "decimal(p,s)",
    "date",
    "timestamp",
    "timestamptz",
    "bytes",
)
"""What `column_types` may name: a small vocabulary every source can read its columns as."""
_DECIMAL = re.compile(r"decimal\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)")
MAX_OVERRIDE_PRECISION = 76


def check_override(name: str) -> str:
    """`name` normalised, or a ValueError saying what `column_types` accepts."""
    normal = name.strip().lower()
    if normal in OVERRIDE_TYPES and normal != "decimal(p,s)":
        return normal
    if match := _DECIMAL.fullmatch(normal):
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 1 <= precision <= MAX_OVERRIDE_PRECISION or scale > precision:
            raise ValueError(
                f"'{name}': a decimal needs 1 <= precision <= {MAX_OVERRIDE_PRECISION} and "
                "scale <= precision"
            )
        return f"decimal({precision},{scale})"
    import difflib

    close = difflib.get_close_matches(normal, OVERRIDE_TYPES, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ValueError(f"unknown type '{name}'.{hint} Types: {', '.join(OVERRIDE_TYPES)}")


def override_type(name: str) -> pa.DataType:
    """The Arrow type of a `column_types` name (already checked)."""
    import pyarrow as pa

    if match := _DECIMAL.fullmatch(name):
        precision, scale = int(match.group(1)), int(match.group(2))
        return (pa.decimal128 if precision <= 38 else pa.decimal256)(precision, scale)
    types: dict[str, pa.DataType] = {
        "text": pa.string(),
        "json": pa.json_(pa.string()),
        "double": pa.float64(),
        "bigint": pa.int64(),
        "int": pa.int32(),
        "smallint": pa.int16(),
        "bool": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "bytes": pa.binary(),
    }
    return types[name]


def type_name(dtype: pa.DataType) -> str:
    """How messages name an Arrow type: the `column_types` word where there is one."""
    import pyarrow as pa

    if pa.types.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    for name in OVERRIDE_TYPES:
        if name != "decimal(p,s)" and override_type(name) == dtype:
            return name
    return str(dtype)


def is_numeric_text(dtype: pa.DataType) -> bool:
    """Whether `dtype` is a PostgreSQL NUMERIC carried as its exact text: unconstrained
    (`numeric`), or wider than any Arrow decimal (`numeric(100,50)`)."""
    import pyarrow as pa

    return (
        isinstance(dtype, pa.OpaqueType)
        and dtype.vendor_name == "PostgreSQL"
        and dtype.type_name.startswith("numeric")
    )


def cast_exact(
    column: pa.Array | pa.ChunkedArray,
    dtype: pa.DataType,
    name: str,
    overrides: tuple[str, ...] = ("text",),
    where: str = "",
) -> Any:
    """`column` as `dtype`, every value kept exactly; else a TypeMappingError naming the
    first value that does not convert (Arrow's safe cast refuses rounding, overflow and
    text that does not parse). `where` ends the message (" in the DuckDB warehouse")."""
    import pyarrow as pa

    if column.type == dtype:
        return column
    try:
        return column.cast(dtype)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        reason = str(exc).split("\n")[0]
        bad = _first_unconvertible(column, dtype)
        value = f"the value {bad!r}" if bad is not None else "a value"
        problem = f"{value} cannot be kept exactly as {type_name(dtype)}{where} ({reason})"
        raise TypeMappingError(name, problem, overrides) from None


def conform(
    batch: pa.RecordBatch, schema: pa.Schema, overrides: tuple[str, ...], where: str
) -> pa.RecordBatch:
    """`batch` with `schema`'s types (same names), every value converted exactly."""
    import pyarrow as pa

    if batch.schema.types == schema.types:
        return batch
    columns = [
        cast_exact(column, f.type, f.name, overrides, where)
        for column, f in zip(batch.columns, schema, strict=True)
    ]
    return pa.record_batch(columns, schema=schema)


def _first_unconvertible(column: pa.Array | pa.ChunkedArray, dtype: pa.DataType) -> Any:
    import pyarrow as pa

    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        for i in range(len(chunk)):
            try:
                chunk.slice(i, 1).cast(dtype)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                value = chunk.slice(i, 1)
                storage = value.storage if isinstance(value, pa.ExtensionArray) else value
                try:
                    return storage.to_pylist()[0]
                except (ValueError, OverflowError):
                    return None
    return None
